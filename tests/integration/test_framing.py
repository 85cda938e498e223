"""Framing edge cases: unread request bodies, smuggling attempts, limits, many
pipelined requests, odd paths.  Each checks that the connection stays in sync."""

import os
import threading
import time

import pytest

from harness import (IncompleteResponse, RawConn, RssSampler, assert_rss_growth, bayleaf_only, build_request,
                     chunked, sha256, skip_server, wait_until)

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"


def next_is_hello_or_closed(conn):
    """After an exchange where the app ignored the request body, the server may either
    discard the body and keep going, or close the connection.  Never may the body be
    parsed as a request."""
    try:
        conn.send(build_request("GET", "/hello"))
        resp = conn.read_response(timeout=5)
    except (IncompleteResponse, BrokenPipeError, ConnectionResetError):
        return "closed"
    except TimeoutError:
        raise AssertionError("the server neither answered the next request nor closed the connection "
                             "(the unread request body seems to block the connection)") from None
    assert b"/smuggled" not in resp.body, "the request body was parsed as a request!"
    assert resp.status == 200 and resp.body == b"Hello, world!\n", resp
    return "kept"


@pytest.mark.parametrize("size", [100000, 2000000], ids=["100KB", "2MB"])
def test_unread_content_length_body_is_discarded(echo_server, size):
    body = SMUGGLED + b"p" * size
    with echo_server.connect() as conn:
        conn.send(build_request("POST", "/hello", body=body))
        resp = conn.read_response()
        assert resp.status == 200 and resp.body == b"Hello, world!\n"
        next_is_hello_or_closed(conn)
    echo_server.assert_serving()


@pytest.mark.parametrize("size", [50000, 2000000], ids=["50KB", "2MB"])
def test_unread_chunked_body_is_discarded(echo_server, size):
    with echo_server.connect() as conn:
        conn.send(build_request("POST", "/hello", headers=[("Transfer-Encoding", "chunked")])
                  + chunked(SMUGGLED, b"q" * size))
        resp = conn.read_response()
        assert resp.status == 200
        next_is_hello_or_closed(conn)


@skip_server("daphne", reason="twisted answers 100 Continue before the app runs")
def test_expect_100_ignored_then_body_sent_anyway(echo_server):
    """The app answered without reading; the client sends the body anyway (RFC 9110
    allows it).  Those bytes must not be taken as the next request."""
    body = SMUGGLED + b"r" * 1000
    with echo_server.connect() as conn:
        conn.send(build_request("POST", "/hello", headers=[
            ("Content-Length", str(len(body))), ("Expect", "100-continue")]))
        resp = conn.read_response(allow_interim=False)
        assert resp.status == 200
        try:
            conn.send(body)
        except (BrokenPipeError, ConnectionResetError):
            return
        next_is_hello_or_closed(conn)


@skip_server("daphne", reason="daphne never answers the next request either")
def test_early_response_while_body_still_arriving(echo_server):
    with echo_server.connect() as conn:
        conn.send(build_request("POST", "/hello", headers=[("Content-Length", "300000")]))
        resp = conn.read_response()
        assert resp.status == 200
        try:
            for _ in range(3):
                conn.send(b"s" * 100000)
                time.sleep(0.02)
        except (BrokenPipeError, ConnectionResetError):
            return
        next_is_hello_or_closed(conn)


def test_request_split_into_single_bytes(echo_server):
    raw = build_request("POST", "/body", headers=[("Transfer-Encoding", "chunked")]) + chunked(b"abc", b"defgh")
    with echo_server.connect() as conn:
        for i in range(len(raw)):
            conn.send(raw[i:i + 1])
        info = conn.read_response().json()
    assert info["sha256"] == sha256(b"abcdefgh")


def test_many_pipelined_requests(echo_server):
    n = 300
    reqs = b"".join(build_request("GET", f"/p/{i}") for i in range(n))
    with echo_server.connect(timeout=30) as conn:
        conn.send(reqs)
        for i in range(n):
            resp = conn.read_response()
            assert resp.json()["scope"]["path"] == f"/p/{i}"


def test_pipelined_after_connection_close_is_ignored(echo_server):
    with echo_server.connect() as conn:
        conn.send(build_request("GET", "/first", headers=[("Connection", "close")])
                  + build_request("GET", "/second"))
        resp = conn.read_response()
        assert resp.json()["scope"]["path"] == "/first"
        assert conn.wait_closed(5), "a request after Connection: close was answered"


def test_http10_keepalive(echo_server):
    with echo_server.connect() as conn:
        resp = conn.request("GET", "/hello", version="HTTP/1.0", headers=[("Connection", "keep-alive")])
        assert resp.status == 200 and resp.body == b"Hello, world!\n"
        if resp.close_delimited or (resp.header("connection") or "").lower() != "keep-alive":
            # an HTTP/1.0 client only keeps a connection that the reply marks keep-alive
            assert conn.wait_closed(5), "reply not marked keep-alive, so the server must close"
            return
        resp = conn.request("GET", "/hello", version="HTTP/1.0", headers=[("Connection", "keep-alive")])
        assert resp.status == 200


def test_many_tiny_response_chunks(echo_server):
    with echo_server.connect() as conn:
        resp = conn.request("GET", "/stream?total=5000&chunk=1", timeout=30)
        assert len(resp.body) == 5000
        assert resp.body[:3] == b"abc" and resp.body[26:29] == b"abc"


@skip_server("daphne", reason="daphne buffers the whole response")
def test_client_closes_during_large_streamed_response(start_server):
    server = start_server("echo:app")
    server.assert_serving()
    base = server.rss_kb()
    base_fds = len(os.listdir(f"/proc/{server.pid}/fd"))
    for _ in range(3):
        with server.connect() as conn:
            conn.send(build_request("GET", f"/stream?total={100 * 1024 * 1024}&chunk=65536"))
            conn.read_head()
            got = 0
            while got < 1024 * 1024:
                data = conn.read_some()
                assert data
                got += len(data)
    # the server has let the abandoned connections go (their fds are closed)
    wait_until(lambda: len(os.listdir(f"/proc/{server.pid}/fd")) <= base_fds, 30,
               message="the abandoned connections to be closed")
    server.assert_serving()
    assert_rss_growth(server.rss_kb() - base, 60 * 1024, "after clients abandoned 100 MiB responses")


@pytest.mark.parametrize("raw, path", [
    ("/a/../b/./c", "/a/../b/./c"),
    ("/double//slash", "/double//slash"),
    ("/nul%00byte", "/nul\x00byte"),
    ("/semi;param=1", "/semi;param=1"),
])
def test_paths_are_not_normalised(echo_server, raw, path):
    with echo_server.connect() as conn:
        scope = conn.request("GET", raw).json()["scope"]
    assert scope["path"] == path
    assert scope["raw_path"] == raw.encode()


def test_invalid_utf8_percent_escape_does_not_break(echo_server):
    with echo_server.connect() as conn:
        resp = conn.request("GET", "/bad%FFutf8")
        assert resp.status in (200, 400), resp
        if resp.status == 200:
            scope = resp.json()["scope"]
            assert scope["raw_path"] == b"/bad%FFutf8"
            assert scope["path"].startswith("/bad") and scope["path"].endswith("utf8")
    echo_server.assert_serving()


@skip_server("daphne", reason="twisted limits the number of headers to 100")
def test_many_request_headers_within_limits(echo_server):
    headers = [(f"X-H{i}", "v" * 200) for i in range(100)]  # ~20 KB, 100 headers
    with echo_server.connect() as conn:
        scope = conn.request("GET", "/manyheaders", headers=headers).json()["scope"]
    names = [h[0] for h in scope["headers"]]
    assert names.count(b"x-h0") == 1 and b"x-h99" in names


def test_long_url_within_limits(echo_server):
    path = "/long/" + "x" * 8000
    with echo_server.connect() as conn:
        scope = conn.request("GET", path + "?" + "q" * 1000).json()["scope"]
    assert scope["path"] == path and scope["query_string"] == b"q" * 1000


@bayleaf_only
def test_too_many_headers_431(echo_server):
    headers = [(f"X-H{i}", "v") for i in range(300)]
    with echo_server.connect() as conn:
        resp = conn.request("GET", "/toomany", headers=headers)
        assert resp.status == 431
        assert conn.wait_closed(5)
    echo_server.assert_serving()


@bayleaf_only
def test_too_long_url_414(echo_server):
    with echo_server.connect() as conn:
        try:
            conn.send(build_request("GET", "/" + "u" * 40000))
        except (BrokenPipeError, ConnectionResetError):
            pass
        resp = conn.read_response()
        assert resp.status == 414
        assert conn.wait_closed(5)
    echo_server.assert_serving()


def test_binary_request_body_roundtrip(echo_server):
    body = os.urandom(300000)
    with echo_server.connect() as conn:
        info = conn.request("PUT", "/body", body=body).json()
    assert info["sha256"] == sha256(body) and info["length"] == len(body)


@bayleaf_only
def test_large_single_header_within_limit(echo_server):
    with echo_server.connect() as conn:
        scope = conn.request("GET", "/bigcookie", headers=[("Cookie", "c=" + "k" * 50000)]).json()["scope"]
    assert dict((k, v) for k, v in scope["headers"])[b"cookie"] == b"c=" + b"k" * 50000


@skip_server("daphne", reason="daphne buffers responses without backpressure")
def test_pipelined_requests_client_not_reading_bounded_memory(start_server):
    """400 pipelined requests for 256 KiB each, the client does not read for a while:
    the server must not queue ~100 MiB of responses in memory."""
    server = start_server("echo:app")
    server.assert_serving()
    base = server.rss_kb()
    n, size = 400, 256 * 1024
    reqs = b"".join(build_request("GET", f"/stream?total={size}&chunk=65536&i={i}") for i in range(n))
    sock = server.socket(timeout=30)
    errors = []

    def writer():
        try:
            sock.sendall(reqs)
        except OSError as e:
            errors.append(e)

    with RssSampler(server.pid) as rss:
        t = threading.Thread(target=writer, daemon=True)
        t.start()
        # a fixed window for the stalled bound: a slow machine queues less, which
        # only makes it pass more easily
        time.sleep(1.5)
        stalled_peak = rss.peak_kb
        conn = RawConn(sock, 60)
        total = [0]
        for i in range(n):
            conn.read_response(sink=lambda d: total.__setitem__(0, total[0] + len(d)))
        t.join(10)
    sock.close()
    assert not errors, errors
    assert total[0] == n * size
    assert_rss_growth(stalled_peak - base, 60 * 1024, "while a pipelining client was not reading")
    assert_rss_growth(rss.peak_kb - base, 60 * 1024, "over 400 pipelined 256 KiB responses")
