"""Protocol errors and misbehaving apps; the server must survive all of them."""

import time
import uuid

import pytest

from harness import IS_BAYLEAF, IS_DAPHNE, IncompleteResponse, build_request, skip_server


@pytest.fixture
def errors_server(shared_server):
    return shared_server("errors:app")


def tag():
    return uuid.uuid4().hex[:12]


@pytest.mark.parametrize("raw", [
    b"THIS IS NOT HTTP\r\n\r\n",
    b"GET / HTTP/1.1 trailing-garbage\r\nHost: x\r\n\r\n",
    b"GET / HTXP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost x\r\n\r\n",
    b"\x00\x01\x02\x03binary\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
], ids=["not-http", "extra-token", "bad-version", "header-no-colon", "binary", "bad-content-length"])
def test_malformed_request_gets_400_and_close(errors_server, raw):
    with errors_server.connect() as conn:
        conn.send(raw)
        resp = conn.read_response()
        assert resp.status == 400, resp
        assert conn.wait_closed(5), "connection must be closed after a 400"
    errors_server.assert_serving("/ok")


def test_malformed_second_request_after_good_one(errors_server):
    with errors_server.connect() as conn:
        conn.send(build_request("GET", "/ok") + b"BROKEN\x01 REQUEST\r\n\r\n")
        first = conn.read_response()
        assert first.status == 200 and first.body == b"ok"
        second = conn.read_response()
        assert second.status == 400
        assert conn.wait_closed(5)
    errors_server.assert_serving("/ok")


@skip_server("uvicorn", "daphne", reason="no header size limit in the reference servers")
def test_oversized_headers_get_431_and_close(errors_server):
    head = b"GET /ok HTTP/1.1\r\nHost: x\r\n" + b"".join(
        b"X-Filler-%d: %s\r\n" % (i, b"v" * 1000) for i in range(100)) + b"\r\n"
    with errors_server.connect() as conn:
        try:
            conn.send(head)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may stop reading once the limit is exceeded
        resp = conn.read_response()
        assert resp.status == 431, resp
        assert conn.wait_closed(5)
    errors_server.assert_serving("/ok")


def test_exception_before_response_start_gives_500_and_traceback(errors_server):
    t = tag()
    with errors_server.connect() as conn:
        resp = conn.request("GET", f"/raise-before?tag={t}")
        assert resp.status == 500
    text = errors_server.wait_for_text(f"boom-before-{t}", timeout=5)
    assert text
    stderr = errors_server.stderr
    assert "Traceback" in stderr
    assert "RuntimeError" in stderr
    errors_server.assert_serving("/ok")


@pytest.mark.parametrize("cl", ["0", "1"], ids=["chunked", "content-length"])
def test_exception_after_response_start_closes_connection(errors_server, cl):
    t = tag()
    with errors_server.connect() as conn:
        conn.send(build_request("GET", f"/raise-after?tag={t}&cl={cl}"))
        with pytest.raises(IncompleteResponse) as info:
            conn.read_response(timeout=10)
        resp = info.value.response
        assert resp.status == 200
        assert info.value.partial.startswith(b"partial-body") or info.value.partial == b""
        assert conn.wait_closed(5)
    errors_server.wait_for_text(f"boom-after-{t}", timeout=5)
    errors_server.assert_serving("/ok")


def test_app_returning_without_response_gives_500(errors_server):
    with errors_server.connect() as conn:
        resp = conn.request("GET", "/no-response")
        assert resp.status == 500
    errors_server.assert_serving("/ok")


@skip_server("uvicorn", reason="uvicorn has no http timeout")
def test_http_timeout_gives_503(start_server):
    server = start_server("errors:app", "-t", "1")
    server.assert_serving("/ok")
    with server.connect() as conn:
        t0 = time.monotonic()
        resp = conn.request("GET", "/sleep?s=3", timeout=10)
        elapsed = time.monotonic() - t0
    assert resp.status == 503, resp
    assert 0.8 <= elapsed < 2.8, f"503 came after {elapsed:.2f}s with -t 1"
    server.assert_serving("/ok")
    time.sleep(2.5)  # the app wakes up and tries to send on the timed-out request
    server.assert_serving("/ok")


def test_server_survives_a_mix_of_errors(errors_server):
    for path in ["/raise-before", "/no-response", "/raise-before", "/ok"]:
        try:
            with errors_server.connect() as conn:
                conn.request("GET", path)
        except (IncompleteResponse, OSError):
            pass
    with errors_server.connect() as conn:
        conn.send(b"\xff\xfe garbage\r\n\r\n")
        conn.read_to_close(5)
    for _ in range(3):
        errors_server.assert_serving("/ok")


def test_client_closing_mid_request_does_not_hurt(errors_server):
    for partial in [b"GET /ok HT", b"POST /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc"]:
        conn = errors_server.connect()
        conn.send(partial)
        time.sleep(0.05)
        conn.close()
    errors_server.assert_serving("/ok")
