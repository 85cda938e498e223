"""Request bodies (chunked, streamed, huge) and response bodies (chunked, Content-Length,
backpressure), Expect: 100-continue."""

import hashlib
import os
import threading
import time

from harness import (MB, RssSampler, assert_rss_growth, build_request, chunked, expected_stream, sha256,
                     skip_server)

# A server that buffered a whole 50 MiB upload would grow by ~50 MiB, so the upload bound
# is tighter than the streaming one (uvicorn stays within ~2 MiB on both).
UPLOAD_RSS_GROWTH_LIMIT_KB = 32 * 1024
RSS_GROWTH_LIMIT_KB = 60 * 1024


# -- request bodies ---------------------------------------------------------

def test_chunked_request_body_reassembled(echo_server):
    pieces = [b"hello ", b"x" * 5000, b"", b"\r\n0\r\n", os.urandom(70000), b"end"]
    body = b"".join(pieces)
    with echo_server.connect() as conn:
        conn.send(build_request("POST", "/body", headers=[("Transfer-Encoding", "chunked")])
                  + chunked(*pieces))
        resp = conn.read_response()
        assert resp.status == 200
        info = resp.json()
        assert info["length"] == len(body)
        assert info["sha256"] == sha256(body)
        # the connection is still usable afterwards
        assert conn.request("GET", "/hello").body == b"Hello, world!\n"


def test_chunked_request_with_extensions_lowercase_hex_and_trailers(echo_server):
    raw = (b"1a;name=value\r\n" + b"A" * 26 + b"\r\n"
           b"3\r\nxyz\r\n"
           b"0\r\nX-Trailer: yes\r\n\r\n")
    with echo_server.connect() as conn:
        conn.send(build_request("POST", "/body", headers=[("Transfer-Encoding", "chunked")]) + raw)
        info = conn.read_response().json()
        assert info["length"] == 29
        assert info["sha256"] == sha256(b"A" * 26 + b"xyz")
        assert conn.request("GET", "/hello").status == 200


def test_chunked_request_sent_slowly(echo_server):
    pieces = [bytes([65 + i]) * (1000 * (i + 1)) for i in range(6)]
    with echo_server.connect() as conn:
        conn.send(build_request("POST", "/body", headers=[("Transfer-Encoding", "chunked")]))
        for p in pieces:
            conn.send(b"%x\r\n%s\r\n" % (len(p), p))
            time.sleep(0.03)
        conn.send(b"0\r\n\r\n")
        info = conn.read_response().json()
    assert info["sha256"] == sha256(b"".join(pieces))
    assert info["last_more"] is False


def test_empty_body_is_one_message(echo_server):
    with echo_server.connect() as conn:
        info = conn.request("GET", "/body").json()
        assert info == {**info, "length": 0, "messages": 1, "more_true": 0, "last_more": False}
        info = conn.request("POST", "/body", headers=[("Content-Length", "0")]).json()
        assert info["length"] == 0 and info["messages"] == 1


def test_request_body_streamed_in_several_messages(echo_server):
    piece = os.urandom(512 * 1024)
    n = 8
    with echo_server.connect() as conn:
        conn.send(build_request("POST", "/body", headers=[("Content-Length", str(len(piece) * n))]))
        for _ in range(n):
            conn.send(piece)
            time.sleep(0.03)
        info = conn.read_response().json()
    assert info["length"] == len(piece) * n
    assert info["sha256"] == hashlib.sha256(piece * n).hexdigest()
    assert info["messages"] >= 2, "a 4 MiB body arriving over time should reach the app in several messages"
    assert info["more_true"] == info["messages"] - 1
    assert info["last_more"] is False


@skip_server("daphne", reason="daphne buffers the whole request body before starting the app")
def test_large_upload_sha_and_bounded_memory(start_server):
    """50 MB upload to an app that consumes it slowly: hash matches, server RSS stays bounded
    (the server must stop reading the socket while the app is behind)."""
    server = start_server("echo:app")
    server.assert_serving()
    baseline = server.rss_kb()
    block = os.urandom(MB)
    total_mb = 50
    expected = hashlib.sha256(block * total_mb).hexdigest()
    conn = server.connect(timeout=60)
    errors = []

    def upload():
        try:
            conn.send(build_request("POST", "/body?delay_per_mb=0.04",
                                    headers=[("Content-Length", str(total_mb * MB))]))
            for _ in range(total_mb):
                conn.send(block)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    t = threading.Thread(target=upload, daemon=True)
    with RssSampler(server.pid) as rss:
        t.start()
        try:
            resp = conn.read_response(timeout=60)
        finally:
            t.join(30)
            conn.close()
    assert not errors, errors
    assert resp.status == 200, resp
    info = resp.json()
    assert info["length"] == total_mb * MB
    assert info["sha256"] == expected
    growth = rss.peak_kb - baseline
    print(f"upload: baseline {baseline} kB, peak {rss.peak_kb} kB, growth {growth} kB")
    assert_rss_growth(growth, UPLOAD_RSS_GROWTH_LIMIT_KB,
                      f"during a {total_mb} MiB upload to a slow consumer (baseline {baseline // 1024} MiB): "
                      "the server does not stop reading while the app is behind")
    server.assert_serving()


# -- response bodies --------------------------------------------------------

def test_streamed_response_without_length_is_chunked(echo_server):
    total, chunk = 100000, 7000
    with echo_server.connect() as conn:
        resp = conn.request("GET", f"/stream?total={total}&chunk={chunk}")
        assert resp.status == 200
        assert resp.chunked, resp
        assert resp.header("content-length") is None
        assert resp.body == expected_stream(total, chunk)
        # inline last chunk (more_body=False on the last data message)
        resp = conn.request("GET", f"/stream?total={total}&chunk={chunk}&inline_last=1")
        assert resp.chunked and resp.body == expected_stream(total, chunk)
        assert conn.is_open_idle(0.2)


def test_content_length_from_app_is_kept(echo_server):
    total, chunk = 100000, 7000
    with echo_server.connect() as conn:
        resp = conn.request("GET", f"/stream?total={total}&chunk={chunk}&cl=1")
        assert resp.status == 200
        assert resp.header("content-length") == str(total)
        assert not resp.chunked
        assert "chunked" not in (resp.header("transfer-encoding") or "")
        assert resp.body == expected_stream(total, chunk)
        assert conn.request("GET", "/hello").body == b"Hello, world!\n"


def test_empty_streamed_response(echo_server):
    with echo_server.connect() as conn:
        resp = conn.request("GET", "/stream?total=0")
        assert resp.status == 200
        assert resp.body == b""
        assert conn.request("GET", "/hello").status == 200


@skip_server("daphne", reason="daphne buffers response data without backpressure")
def test_streaming_response_to_slow_reader_bounded_memory(start_server):
    """200 MiB streamed in 64 KiB chunks to a client that reads slowly at first:
    `await send()` must apply backpressure, so the server's RSS stays bounded."""
    server = start_server("echo:app")
    server.assert_serving()
    baseline = server.rss_kb()
    total = 200 * MB
    sock = server.socket(timeout=30)
    try:
        sock.sendall(build_request("GET", f"/stream?total={total}&chunk=65536"))
        early = []
        with RssSampler(server.pid) as rss:
            slow_until = time.monotonic() + 2.0
            while time.monotonic() < slow_until:  # ~1.6 MB/s
                early.append(sock.recv(16384))
                time.sleep(0.01)
            slow_peak = rss.peak_kb
            from harness import RawConn
            conn = RawConn(sock, 60)
            conn.buf = b"".join(early)
            counted = [0]
            resp = conn.read_response(sink=lambda d: counted.__setitem__(0, counted[0] + len(d)))
    finally:
        sock.close()
    assert resp.status == 200
    assert counted[0] == total
    growth = slow_peak - baseline
    print(f"stream: baseline {baseline} kB, slow-phase peak {slow_peak} kB, overall peak {rss.peak_kb} kB")
    assert_rss_growth(growth, RSS_GROWTH_LIMIT_KB,
                      f"while the client read slowly (baseline {baseline // 1024} MiB): "
                      "send() does not apply backpressure")
    assert_rss_growth(rss.peak_kb - baseline, RSS_GROWTH_LIMIT_KB, "over the whole 200 MiB response")
    server.assert_serving()


# -- Expect: 100-continue ---------------------------------------------------

@skip_server("daphne", reason="twisted answers 100 Continue before the app runs")
def test_expect_100_sent_only_when_app_reads_body(echo_server):
    body = os.urandom(20000)
    with echo_server.connect() as conn:
        conn.send(build_request("POST", "/body?wait=0.6", headers=[
            ("Content-Length", str(len(body))), ("Expect", "100-continue")]))
        # the app sleeps before its first receive(): nothing may be sent yet
        assert conn.is_open_idle(0.35), "100 Continue sent before the app asked for the body"
        head = conn.read_head(timeout=5)
        assert head.status == 100, head
        assert head.version == "HTTP/1.1"
        conn.send(body)
        resp = conn.read_response(allow_interim=False)
        assert resp.status == 200
        assert resp.json()["sha256"] == sha256(body)
        assert conn.request("GET", "/hello").status == 200


@skip_server("daphne", reason="twisted answers 100 Continue before the app runs")
def test_expect_100_not_sent_when_app_ignores_body(echo_server):
    with echo_server.connect() as conn:
        conn.send(build_request("POST", "/hello", headers=[
            ("Content-Length", "50000"), ("Expect", "100-continue")]))
        resp = conn.read_response(allow_interim=False)
        assert resp.status == 200
        assert resp.body == b"Hello, world!\n"
    echo_server.assert_serving()


def test_expect_100_with_body_sent_anyway(echo_server):
    """A client that does not wait for 100 Continue: everything stays in sync."""
    body = b"eager-client-body" * 100
    with echo_server.connect() as conn:
        conn.send(build_request("POST", "/body", body=body, headers=[("Expect", "100-continue")]))
        resp = conn.read_response()
        assert resp.status == 200
        assert all(r.status == 100 for r in resp.interim)
        assert resp.json()["sha256"] == sha256(body)
        resp = conn.request("GET", "/hello")
        assert resp.status == 200 and not resp.interim
