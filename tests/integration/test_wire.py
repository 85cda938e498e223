"""What goes on the wire: an app's own framing headers are refused (500,
logged, the app's send() raises) rather than sent ambiguous; Connection is a
token list; Date is IMF-fixdate whatever locale the app sets; obs-text in a
request header reaches the app byte for byte."""

import re
import shutil
import subprocess
import time

import pytest

from harness import bayleaf_only, build_request, wait_until

pytestmark = bayleaf_only

IMF_FIXDATE = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
                         r"\d{4} \d\d:\d\d:\d\d GMT$")
DAPHNE_DATE = re.compile(r"\[\d\d/(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)/\d{4}:\d\d:\d\d:\d\d\]")


@pytest.fixture(scope="module")
def wire_server(module_server_factory):
    return module_server_factory("wire_app:app")


REFUSED = ["status-100", "status-101", "status-199", "cl-and-te", "te-and-cl", "two-cl",
           "cl-space-negative", "cl-negative", "cl-plus", "cl-space", "cl-list", "cl-overflow", "cl-2^64",
           "te-empty"]


@pytest.mark.parametrize("case", REFUSED)
def test_ambiguous_app_framing_is_refused(wire_server, case):
    """On a kept-alive connection: one 500, then the connection ends; never
    the app's head. The app's send() raised, and the server logged why."""
    before = wire_server.stderr.count("response refused")
    with wire_server.connect() as conn:
        conn.send(build_request("GET", "/frame?case=" + case))
        resp = conn.read_response(allow_interim=False, timeout=10)
        assert resp.status == 500, (resp.status, resp.raw_head)
        assert conn.wait_closed(timeout=10)
    wait_until(lambda: wire_server.stderr.count("response refused") > before, 10,
               message="the refusal in the server log")
    assert "ValueError: http.response.start:" in wire_server.stderr


def test_same_content_length_twice_is_sent_once(wire_server):
    with wire_server.connect() as conn:
        conn.send(build_request("GET", "/frame?case=cl-same-twice"))
        resp = conn.read_response(timeout=10)
        assert resp.status == 200 and resp.body == b"hello"
        assert resp.header_all("content-length") == ["5"], resp.raw_head
        # still in sync, still open
        assert conn.request("GET", "/frame?case=cl-same-twice", timeout=10).body == b"hello"


def test_connection_value_is_a_token_list(wire_server):
    """"closed" is not "close": the connection stays open."""
    with wire_server.connect() as conn:
        conn.send(build_request("GET", "/frame?case=connection-closed"))
        resp = conn.read_response(timeout=10)
        assert resp.status == 200 and resp.body == b"hello"
        conn.send(build_request("GET", "/frame?case=connection-closed"))
        assert conn.read_response(timeout=10).body == b"hello"


@pytest.mark.parametrize("case", ["connection-close-list", "connection-close-upper"])
def test_connection_close_anywhere_in_the_list_closes(wire_server, case):
    """"keep-alive, close" (and "CLOSE") end the connection after the response,
    as the client reading the app's header expects."""
    with wire_server.connect() as conn:
        conn.send(build_request("GET", "/frame?case=" + case))
        resp = conn.read_response(timeout=10)
        assert resp.status == 200 and resp.body == b"hello"
        assert conn.wait_closed(timeout=10)


def test_date_is_imf_fixdate(wire_server):
    with wire_server.connect() as conn:
        conn.send(build_request("GET", "/frame?case=cl-same-twice"))
        assert IMF_FIXDATE.match(conn.read_response(timeout=10).header("date"))
        conn.send(b"GET / HTTP/1.1\r\n\r\n")  # no Host: bayleaf's own 400
        resp = conn.read_response(timeout=10)
        assert resp.status == 400 and IMF_FIXDATE.match(resp.header("date")), resp.raw_head


@pytest.fixture(scope="module")
def german_locale(tmp_path_factory):
    """A de_DE.UTF-8 locale built into a directory for LOCPATH (none needs to
    be installed); skips where localedef or its sources are missing."""
    if shutil.which("localedef") is None:
        pytest.skip("no localedef")
    d = tmp_path_factory.mktemp("locales")
    r = subprocess.run(["localedef", "-i", "de_DE", "-f", "UTF-8", str(d / "de_DE.UTF-8")],
                       capture_output=True, text=True, timeout=120)
    if not (d / "de_DE.UTF-8").exists():
        pytest.skip(f"localedef could not build de_DE.UTF-8: {r.stderr[-300:]}")
    return d


def test_date_ignores_the_locale_the_app_sets(start_server, german_locale, tmp_path):
    """An app that calls setlocale(LC_ALL, "de_DE.UTF-8") changes the whole
    process's C locale: Date and the access log keep English names."""
    log = tmp_path / "access.log"
    server = start_server("wire_app:app", "--access-log", str(log), env={"LOCPATH": str(german_locale)})
    with server.connect() as conn:
        conn.send(build_request("GET", "/locale?name=de_DE.UTF-8"))
        assert conn.read_response(timeout=10).status == 200
        # German day names ("Fr") never match; month names mostly differ too.
        for _ in range(2):
            conn.send(build_request("GET", "/frame?case=cl-same-twice"))
            resp = conn.read_response(timeout=10)
            assert IMF_FIXDATE.match(resp.header("date")), resp.header("date")
    wait_until(lambda: log.exists() and log.read_text().count("\n") >= 3, 10, message="three access log lines")
    lines = log.read_text().splitlines()
    assert all(DAPHNE_DATE.search(line) for line in lines), lines


def test_obs_text_in_a_header_value_reaches_the_app(shared_server):
    """RFC 9110 5.5 allows obs-text (0x80-0xFF) in a field value; ASGI headers
    are bytes: the app sees the exact bytes (as with uvicorn/h11)."""
    server = shared_server("echo:app")
    with server.connect() as conn:
        conn.send(build_request("GET", "/scope", headers=[("X-Obs", "a\x85b\xffc")]))
        resp = conn.read_response(timeout=10)
        assert resp.status == 200
        headers = resp.json()["scope"]["headers"]
        assert [b"x-obs", b"a\x85b\xffc"] in [list(h) for h in headers], headers
