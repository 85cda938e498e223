"""Server-added response headers: Date and Server."""

import email.utils
from datetime import datetime, timezone

import pytest

from harness import IS_BAYLEAF, bayleaf_only, skip_server


@skip_server("daphne", reason="daphne sends no Date header")
def test_date_header(echo_server):
    status, headers, _ = echo_server.get("/hello")
    assert status == 200
    assert "date" in headers
    assert headers["date"].endswith(" GMT")
    when = email.utils.parsedate_to_datetime(headers["date"])
    now = datetime.now(timezone.utc)
    assert abs((now - when).total_seconds()) < 60


def test_app_headers_passed_through(echo_server):
    status, headers, body = echo_server.get("/hello")
    assert headers["content-type"] == "text/plain"
    assert headers["content-length"] == "14"


@skip_server("daphne", reason="daphne sends no Date header")
def test_single_date_and_server_header(echo_server):
    with echo_server.connect() as conn:
        resp = conn.request("GET", "/hello")
    assert len(resp.header_all("date")) == 1
    assert len(resp.header_all("server")) <= 1


@bayleaf_only
def test_default_server_name(echo_server):
    status, headers, _ = echo_server.get("/hello")
    assert headers.get("server") == "bayleaf"


@skip_server("uvicorn", reason="uvicorn has no -s option")
def test_custom_server_name(start_server):
    server = start_server("echo:app", "-s", "custom")
    status, headers, _ = server.get("/hello")
    assert headers.get("server") == "custom"
    status, headers, _ = server.get("/streamed-scope")
    assert headers.get("server") == "custom"


@skip_server("uvicorn", reason="uvicorn spells it --no-server-header")
def test_no_server_name(start_server):
    server = start_server("echo:app", "--no-server-name")
    status, headers, _ = server.get("/hello")
    assert status == 200
    assert "server" not in headers
    if IS_BAYLEAF:
        assert "date" in headers


def test_error_responses_have_date(echo_server):
    with echo_server.connect() as conn:
        conn.send(b"NOT HTTP AT ALL\r\n\r\n")
        resp = conn.read_response()
    assert resp.status == 400
    if IS_BAYLEAF:
        assert resp.header("date")


@pytest.mark.parametrize("code", [201, 302, 404, 418, 503, 599])
def test_status_codes_passed_through(shared_server, code):
    server = shared_server("errors:misbehaving")
    with server.connect() as conn:
        resp = conn.request("GET", f"/status/{code}")
        assert resp.status == code
        assert resp.body == b""
        assert conn.request("GET", "/ok").body == b"ok"


def test_many_and_repeated_response_headers(shared_server):
    server = shared_server("errors:misbehaving")
    with server.connect() as conn:
        resp = conn.request("GET", "/many-headers")
    assert resp.status == 200
    assert resp.header_all("set-cookie") == [f"c{i}=v{i}; Path=/" for i in range(5)]
    for i in range(60):
        assert resp.header(f"x-resp-{i}") == "w" * 500
    assert resp.header("x-latin1") == "caf\xe9"
    assert resp.body == b"many"
