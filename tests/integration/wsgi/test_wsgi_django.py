"""A Django + Channels site served whole by one bayleaf: Django's WSGI handler
(behind wsgiref.validate) for the pages, a Channels consumer on /ws/."""

import hashlib
from urllib.parse import urlencode

import pytest

from harness import build_request, wait_until
from ws.ws_support import open_ws

from .conftest import APPS, assert_validator_clean

SITE = ("siteproj.asgi:application", "--wsgi", "siteproj.wsgi:validated_application",
        "--wsgi-threads", "4")


@pytest.fixture
def site(start_server):
    started = []

    def start(*args, allow=()):
        s = start_server(*(args or SITE), cwd=APPS)
        started.append((s, allow))
        return s

    yield start
    for s, allow in started:
        assert_validator_clean(s, allow)


def _cookies(resp):
    return "; ".join(v.split(";", 1)[0] for v in resp.header_all("set-cookie"))


def test_session_persists_across_requests(site):
    s = site()
    with s.connect() as c:
        first = c.request("GET", "/count/")
        assert first.json() == {"count": 1}
        cookie = _cookies(first)
        second = c.request("GET", "/count/", headers=[("Cookie", cookie)])
        assert second.json() == {"count": 2}


def test_post_with_csrf(site):
    s = site()
    with s.connect() as c:
        got = c.request("GET", "/form/")
        token, cookie = got.json()["csrf"], _cookies(got)
        body = urlencode({"name": "bayleaf", "csrfmiddlewaretoken": token}).encode()
        ok = c.request("POST", "/form/", body=body, headers=[
            ("Content-Type", "application/x-www-form-urlencoded"), ("Cookie", cookie)])
        assert ok.status == 200 and ok.json()["name"] == "bayleaf"
        refused = c.request("POST", "/form/", body=b"name=x", headers=[
            ("Content-Type", "application/x-www-form-urlencoded")])
        assert refused.status == 403


def _download(s):
    status, headers, body = s.get("/download/")
    assert status == 200
    assert headers["content-disposition"] == 'attachment; filename="data.bin"'
    with open(APPS / "siteproj" / "download.bin", "rb") as f:
        expect = f.read()
    assert headers["content-length"] == str(len(expect))
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(expect).hexdigest()


def test_file_response_download(site):
    _download(site())


def test_file_response_download_real_file_path(site):
    """Without the validator's wrapper the FileResponse reaches the server as
    its wsgi.file_wrapper of a real file: read in large blocks, GIL released."""
    _download(site("siteproj.asgi:application", "--wsgi", "siteproj.wsgi:application"))


def test_streaming_response(site):
    s = site()
    with s.connect() as c:
        resp = c.request("GET", "/stream/?n=5")
    assert resp.header("transfer-encoding") == "chunked"
    assert resp.body == b"".join(b"part %d\n" % i for i in range(5))


def test_view_that_raises(site):
    s = site(allow=("Traceback",))
    assert s.get("/boom/")[0] == 500
    s.wait_for_text(r"Internal Server Error: /boom/")
    s.wait_for_text(r"ValueError: this view fails on purpose")


def test_websocket_consumer_beside_wsgi_pages(site):
    s = site()
    ws = open_ws(s, "/ws/echo/")
    try:
        ws.send_text("ping")
        assert ws.recv_message() == (1, b"ping")
        assert s.get("/hello/")[2] == b"Hello from Django\n"
        ws.send_text("again")
        assert ws.recv_message() == (1, b"again")
    finally:
        ws.close()


def test_blocking_views_do_not_stop_the_consumers(site, tmp_path):
    """Four views block all four WSGI threads; the echo consumer still answers."""
    s = site()
    release = tmp_path / "release"
    conns = []
    for _ in range(4):
        c = s.connect()
        c.send(build_request("GET", f"/hold/?until={release}"))
        conns.append(c)
    wait_until(lambda: s.stderr.count("holding a WSGI thread") == 4, 30, message="4 views held")
    ws = open_ws(s, "/ws/echo/")
    try:
        for i in range(5):
            ws.send_text("echo %d" % i)
            assert ws.recv_message() == (1, b"echo %d" % i)
        assert all(c.is_open_idle(wait=0.01) for c in conns)  # no view answered meanwhile
        release.touch()
        for c in conns:
            resp = c.read_response()
            assert (resp.status, resp.body) == (200, b"released")
    finally:
        release.touch()
        ws.close()
        for c in conns:
            c.close()


def test_django_wsgi_application_detected_alone(site):
    s = site("siteproj.wsgi:application")
    s.wait_for_text(r"siteproj.wsgi:application is a WSGI application")
    assert s.get("/hello/")[2] == b"Hello from Django\n"
    with s.connect() as c:
        from ws.ws_support import WSConn
        resp = WSConn(c).handshake("/ws/echo/")
        assert resp.status == 403
