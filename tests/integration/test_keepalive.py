"""Connection reuse: keep-alive, pipelining, HEAD, Connection: close, HTTP/1.0."""

import json

from harness import IS_DAPHNE, build_request, chunked, sha256, skip_server


def test_keepalive_several_requests_one_connection(echo_server):
    with echo_server.connect() as conn:
        client_port = conn.sock.getsockname()[1]
        for i in range(6):
            resp = conn.request("GET", f"/ka/{i}?n={i}")
            assert resp.status == 200
            assert resp.version == "HTTP/1.1"
            assert (resp.header("connection") or "").lower() != "close"
            scope = resp.json()["scope"]
            assert scope["path"] == f"/ka/{i}"
            assert scope["query_string"] == f"n={i}".encode()
            assert list(scope["client"]) == ["127.0.0.1", client_port]
        # mix in requests with bodies and a hello that has its own Content-Length
        resp = conn.request("POST", "/ka/post", body=b"p" * 5000)
        assert resp.json()["body_len"] == 5000
        resp = conn.request("GET", "/hello")
        assert resp.body == b"Hello, world!\n"
        assert conn.is_open_idle(0.2)


def test_pipelining_responses_in_order(echo_server):
    reqs = [
        build_request("GET", "/pipe/1"),
        build_request("POST", "/pipe/2", body=b"second-body"),
        build_request("GET", "/hello"),
        build_request("GET", "/pipe/4?x=4"),
        build_request("PUT", "/pipe/5", body=chunked(b"chunk-a", b"chunk-bb"),
                      headers=[("Transfer-Encoding", "chunked")]),
    ]
    with echo_server.connect() as conn:
        conn.send(b"".join(reqs))
        r1 = conn.read_response()
        r2 = conn.read_response()
        r3 = conn.read_response()
        r4 = conn.read_response()
        r5 = conn.read_response()
        assert r1.json()["scope"]["path"] == "/pipe/1"
        d2 = r2.json()
        assert d2["scope"]["path"] == "/pipe/2" and d2["body_sha256"] == sha256(b"second-body")
        assert r3.body == b"Hello, world!\n"
        assert r4.json()["scope"]["query_string"] == b"x=4"
        d5 = r5.json()
        assert d5["scope"]["method"] == "PUT"
        assert d5["body_sha256"] == sha256(b"chunk-achunk-bb")
        assert conn.is_open_idle(0.2)


def test_pipelining_slow_first_response_keeps_order(echo_server):
    """The first request is slow; the later ones must still be answered after it."""
    reqs = [build_request("GET", "/sleep/first?s=0.4"),
            build_request("GET", "/fast/second"),
            build_request("GET", "/fast/third")]
    with echo_server.connect() as conn:
        conn.send(b"".join(reqs))
        paths = [conn.read_response().json()["scope"]["path"] for _ in range(3)]
    assert paths == ["/sleep/first", "/fast/second", "/fast/third"]


def test_pipelined_requests_in_separate_small_writes(echo_server):
    data = build_request("GET", "/split/a") + build_request("GET", "/split/b")
    with echo_server.connect() as conn:
        for i in range(0, len(data), 7):
            conn.send(data[i:i + 7])
        assert conn.read_response().json()["scope"]["path"] == "/split/a"
        assert conn.read_response().json()["scope"]["path"] == "/split/b"


def test_head_has_length_but_no_body_then_next_request(echo_server):
    with echo_server.connect() as conn:
        resp = conn.request("HEAD", "/hello")
        assert resp.status == 200
        assert resp.header("content-length") == str(len(b"Hello, world!\n"))
        # the next response must start right away: no stray body bytes in between
        resp2 = conn.request("GET", "/hello")
        assert resp2.status == 200
        assert resp2.body == b"Hello, world!\n"
        assert conn.is_open_idle(0.2)


def test_head_then_pipelined_get(echo_server):
    with echo_server.connect() as conn:
        conn.send(build_request("HEAD", "/hello") + build_request("GET", "/after-head"))
        r1 = conn.read_response("HEAD")
        r2 = conn.read_response()
        assert r1.status == 200
        assert r2.json()["scope"]["path"] == "/after-head"


def test_connection_close_request_header(echo_server):
    with echo_server.connect() as conn:
        resp = conn.request("GET", "/hello", headers=[("Connection", "close")])
        assert resp.status == 200
        assert resp.body == b"Hello, world!\n"
        assert conn.wait_closed(5), "server kept the connection open after Connection: close"


def test_http10_gets_response_and_connection_closes(echo_server):
    with echo_server.connect() as conn:
        resp = conn.request("GET", "/hello", version="HTTP/1.0")
        assert resp.status == 200
        assert resp.body == b"Hello, world!\n"
        assert not resp.chunked
        assert conn.wait_closed(5), "HTTP/1.0 request without keep-alive: connection must close"


@skip_server("uvicorn", reason="uvicorn 0.17 (httptools) sends chunked responses to HTTP/1.0 clients")
def test_http10_streamed_response_is_not_chunked(echo_server):
    total, chunk = 30000, 4096
    with echo_server.connect() as conn:
        resp = conn.request("GET", f"/stream?total={total}&chunk={chunk}", version="HTTP/1.0")
        assert resp.status == 200
        assert not resp.chunked, "chunked transfer-encoding is not allowed in an HTTP/1.0 response"
        assert resp.close_delimited or resp.header("content-length") == str(total)
        assert len(resp.body) == total
        assert conn.wait_closed(5)


def test_http10_without_host_header(echo_server):
    with echo_server.connect() as conn:
        conn.send(b"GET /nohost HTTP/1.0\r\n\r\n")
        resp = conn.read_response()
        assert resp.status == 200
        assert json.loads(resp.body)["scope"]["path"] == "/nohost"


def test_idle_keepalive_connection_does_not_block_others(echo_server):
    with echo_server.connect() as idle:
        idle.send(b"GET /hel")  # an incomplete request
        for i in range(3):
            status, _, body = echo_server.request("GET", "/hello")
            assert status == 200
        idle.send(b"lo HTTP/1.1\r\nHost: x\r\n\r\n")
        assert idle.read_response().body == b"Hello, world!\n"


def test_many_sequential_connections(echo_server):
    for i in range(50):
        status, _, body = echo_server.request("GET", "/hello")
        assert status == 200
    if not IS_DAPHNE:
        assert echo_server.rss_kb() > 0


@skip_server("daphne", reason="daphne sends the body of a HEAD response without Content-Length")
def test_head_on_streamed_response(echo_server):
    with echo_server.connect() as conn:
        resp = conn.request("HEAD", "/stream?total=5000&chunk=1000")
        assert resp.status == 200
        resp2 = conn.request("GET", "/hello")
        assert resp2.status == 200 and resp2.body == b"Hello, world!\n", \
            "bytes of the HEAD response body leaked into the connection"


@skip_server("uvicorn", "daphne", reason="uvicorn 0.17 and daphne put the whole URL into path")
def test_absolute_form_request_target(echo_server):
    with echo_server.connect() as conn:
        conn.send(b"GET http://example.test/abs/p%C3%A5th?q=1 HTTP/1.1\r\nHost: example.test\r\n\r\n")
        resp = conn.read_response()
    assert resp.status == 200
    scope = resp.json()["scope"]
    assert scope["path"] == "/abs/p\u00e5th"
    assert scope["query_string"] == b"q=1"
