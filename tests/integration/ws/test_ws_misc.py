"""WebSocket odds and ends: HTTP before the upgrade on one connection, lifespan
state, many clients at once, shutdown with open sockets, the handshake's
HTTP-level requirements, and a slow app with a live client."""

import asyncio
import json
import signal
import time

import pytest
import websockets

from harness import bayleaf_only, build_request, unjson

from .ws_support import (APP, OP_BINARY, OP_PING, OP_PONG, WSConn, accept_for, check_echo, frame,
                         make_key, open_ws, outq, run, url, wait_event)


def test_upgrade_after_http_request_on_same_connection(ws_server):
    """A keep-alive connection that served HTTP can then be upgraded."""
    with WSConn(ws_server.connect()) as ws:
        resp = ws.raw.request("GET", "/hello")
        assert resp.status == 200 and resp.body == b"hello"
        resp = ws.handshake("/echo")
        assert resp.status == 101, resp
        assert resp.header("sec-websocket-accept") == accept_for(ws.key)
        ws.send_text("upgraded")
        assert ws.recv_text(5) == "upgraded"


def test_pipelined_http_then_upgrade(ws_server):
    key = make_key()
    upgrade = (f"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
    with WSConn(ws_server.connect()) as ws:
        ws.send(build_request("GET", "/hello") + upgrade + frame(0x1, "pipelined"))
        r1 = ws.raw.read_response()
        assert r1.status == 200 and r1.body == b"hello"
        r2 = ws.raw.read_head()
        assert r2.status == 101 and r2.header("sec-websocket-accept") == accept_for(key)
        assert ws.recv_text(5) == "pipelined"


def test_upgrade_needs_http11(ws_server):
    with WSConn(ws_server.connect()) as ws:
        ws.send(b"GET /echo HTTP/1.0\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        resp = ws.raw.read_head()
        assert resp.status != 101, resp
        assert 400 <= resp.status < 500 or resp.status == 200, resp


def test_upgrade_without_host_400(ws_server):
    with WSConn(ws_server.connect()) as ws:
        resp = ws.handshake("/echo", headers=[("Host", None)])
        assert resp.status == 400, resp
    check_echo(ws_server)


@bayleaf_only
def test_lifespan_state_in_websocket_scope(ws_server):
    with open_ws(ws_server, "/scope") as ws:
        scope = unjson(json.loads(ws.recv_text(5)))
    assert scope.get("state", {}).get("from_lifespan") == "ws_app", scope.get("state")


def test_many_concurrent_clients(ws_server):
    n, rounds = 100, 20

    async def client(i):
        async with websockets.connect(url(ws_server, f"/echo?c={i}"), ping_interval=None) as ws:
            for r in range(rounds):
                msg = f"{i}:{r}" if r % 2 else f"{i}:{r}".encode() * 100
                await ws.send(msg)
                assert await ws.recv() == msg
        return i

    async def go():
        done = await asyncio.gather(*(client(i) for i in range(n)))
        assert sorted(done) == list(range(n))
    run(go(), timeout=60)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_shutdown_closes_open_websockets_with_1001(start_server, tmp_path, sig):
    server = start_server(APP)
    outs = [tmp_path / f"app{i}.jsonl" for i in range(3)]
    conns = [open_ws(server, "/echo" + outq(o)) for o in outs]
    try:
        for ws in conns:
            ws.send_text("before")
            assert ws.recv_text(5) == "before"
        t0 = time.monotonic()
        server.send_signal(sig)
        for ws in conns:
            f = ws.expect_close(5)
            assert f.close_code == 1001, f  # going away
            ws.send_close(1001)
        for ws in conns:
            assert ws.wait_closed(5)
            ws.close()
        rc = server.wait_exit(30)
        assert rc == 0, server.describe()
        # once every session closed, not by a timeout: generous for a loaded run
        assert time.monotonic() - t0 < 20
    finally:
        for ws in conns:
            ws.close()
    for o in outs:
        rec = wait_event(o, "disconnect", timeout=10)
        assert rec["code"] in (1001, 1000), rec


@bayleaf_only
def test_shutdown_with_client_ignoring_close(start_server, tmp_path):
    """A client that never completes the close handshake does not hold shutdown hostage."""
    server = start_server(APP, "--graceful-timeout", "3")
    ws = open_ws(server, "/echo")
    try:
        t0 = time.monotonic()
        server.send_signal(signal.SIGTERM)
        f = ws.expect_close(10)
        assert f.close_code == 1001
        rc = server.wait_exit(60)
        assert rc is not None, "server still running 60 s after SIGTERM"
        # bounded by the 3 s graceful timeout: generous for a loaded, sanitized run
        assert time.monotonic() - t0 < 20
    finally:
        ws.close()


@bayleaf_only
def test_slow_app_does_not_get_a_live_client_dropped(start_server, tmp_path):
    """While the app is behind, the server stops reading; a client that answers
    every ping must not be dropped for a pong the server did not read."""
    # a 2 s ping timeout: a loaded machine has time to answer; a server that
    # does not read pongs while paused still drops it within the window
    server = start_server(APP, "--ping-interval", "0.5", "--ping-timeout", "2")
    out = tmp_path / "app.jsonl"
    with open_ws(server, "/slow" + outq(out, delay=1.5)) as ws:
        # 1 MiB in 16 messages: the app (1.5 s a message) stays > 256 KiB behind for 20 s
        payload = b"s" * 65536
        ws.send(b"".join(frame(OP_BINARY, payload, key=b"\0\0\0\0") for _ in range(16)))
        t0 = time.monotonic()
        dropped = None
        # a fixed window for a negative check (a slow machine only pings less)
        while time.monotonic() - t0 < 6.0:
            try:
                f = ws.recv_frame(timeout=0.5)
            except TimeoutError:
                continue
            except EOFError:
                dropped = round(time.monotonic() - t0, 2)
                break
            if f.opcode == OP_PING:
                ws.send_frame(OP_PONG, f.payload)
            else:
                dropped = f"unexpected frame {f!r}"
                break
        assert dropped is None, f"connection ended after {dropped}s although every ping was answered"


@pytest.fixture
def no_compression(shared_server):
    return shared_server(APP, "--ws-compression", "off")


def test_permessage_deflate_offer_declined(no_compression):
    """--ws-compression off: no extension is accepted, and RSV1 stays illegal
    (test_ws_deflate.py covers the extension itself)."""
    with open_ws(no_compression, "/echo", headers=[
            ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits")]) as ws:
        assert ws.response.header("sec-websocket-extensions") is None, ws.response
        ws.send_text("plain")
        assert ws.recv_text(5) == "plain"
        ws.send_frame(0x1, b"\xf2H\xcd\xc9\xc9\x07\x00", rsv=4)  # "Hello" deflated
        assert ws.expect_close(5).close_code == 1002


def test_websockets_client_with_compression_offer(no_compression):
    async def go():
        async with websockets.connect(url(no_compression, "/echo"), ping_interval=None,
                                      compression="deflate") as ws:
            assert "Sec-WebSocket-Extensions" not in ws.response_headers
            await ws.send("x" * 10000)
            assert await ws.recv() == "x" * 10000
    run(go())


def test_app_sending_unencodable_text_gets_an_exception(ws_server):
    with open_ws(ws_server, "/bad-text") as ws:
        reply = ws.recv_text(5)
        assert reply.startswith("raised "), reply
        ws.send_text("still open")
        assert ws.recv_text(5) == "still open"
