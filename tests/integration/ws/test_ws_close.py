"""Closing: client-initiated, app-initiated, TCP drops, and sends after the end."""

import signal
import socket
import struct
import time

import pytest
import websockets

from harness import IS_BAYLEAF, MB, bayleaf_only, wait_until

from .ws_support import (APP as APP_SPEC, OP_BINARY, OP_CLOSE, OP_TEXT, WSConn, check_echo, close_payload,
                         events, frame, open_ws, outq, run, tcp_queued_bytes, url, wait_event)


# --------------------------------------------------------------------------
# the client closes
# --------------------------------------------------------------------------

def test_client_close_code_and_reason_reach_app(ws_server, tmp_path):
    out = tmp_path / "app.jsonl"

    async def go():
        ws = await websockets.connect(url(ws_server, "/echo" + outq(out)), ping_interval=None)
        await ws.send("x")
        assert await ws.recv() == "x"
        await ws.close(4001, "bye now ✓")
        assert ws.close_code == 4001  # the server echoed our code
    run(go())
    rec = wait_event(out, "disconnect")
    assert rec["code"] == 4001 and rec["reason"] == "bye now ✓", rec


@pytest.mark.parametrize("code, reason", [(1000, b""), (1001, b"going"), (3000, b"x" * 123), (4999, b"")])
def test_client_close_raw_echoed_and_tcp_closed(ws_server, tmp_path, code, reason):
    out = tmp_path / "app.jsonl"
    with open_ws(ws_server, "/echo" + outq(out)) as ws:
        ws.send_close(code, reason)
        f = ws.expect_close(5)
        # RFC 6455 5.5.1: the endpoint typically echoes the status code it received
        assert f.close_code == code, f
        assert ws.wait_closed(5), "the server must close the TCP connection after the close handshake"
    rec = wait_event(out, "disconnect")
    assert (rec["code"], rec["reason"]) == (code, reason.decode()), rec


def test_client_close_without_code_is_1005(ws_server, tmp_path):
    out = tmp_path / "app.jsonl"
    with open_ws(ws_server, "/echo" + outq(out)) as ws:
        ws.send_frame(OP_CLOSE, b"")
        f = ws.expect_close(5)
        assert f.close_code in (None, 1000), f
        assert ws.wait_closed(5)
    rec = wait_event(out, "disconnect")
    assert rec["code"] == 1005, rec


def test_messages_after_client_close_are_not_delivered(ws_server, tmp_path):
    out = tmp_path / "app.jsonl"
    with open_ws(ws_server, "/echo" + outq(out, log=1)) as ws:
        ws.send(frame(OP_TEXT, "one") + frame(OP_CLOSE, close_payload(1000)) + frame(OP_TEXT, "ghost"))
        while ws.recv_frame(5).opcode != OP_CLOSE:
            pass
        assert ws.wait_closed(5)
    wait_event(out, "disconnect")
    texts = [e["message"].get("text") for e in events(out) if e["event"] == "received"]
    assert "ghost" not in texts and texts[0] == "one", texts


def read_until_close(ws, timeout=30):
    """(data payload bytes, the close frame): everything the server sent, in order."""
    got = 0
    while True:
        f = ws.recv_frame(timeout)
        if f.opcode == OP_CLOSE:
            return got, f
        assert f.opcode == OP_BINARY, f
        got += len(f.payload)


def wait_backlog(server):
    """Until the kernel holds over 1 MB for a client that reads nothing: our
    output is queued behind it."""
    wait_until(lambda: tcp_queued_bytes(server.port) > MB, 30, message="a backlog toward the client")


@bayleaf_only
def test_client_close_while_our_output_is_queued(start_server, tmp_path):
    """The client closes, then reads: all the data queued for it arrives, then
    our close reply. (The closing deadline started at 0, so the connection was
    cut a millisecond after the close arrived and the reply never went out.)"""
    server = start_server(APP_SPEC)
    out = tmp_path / "app.jsonl"
    chunk = 65536
    with open_ws(server, "/push" + outq(out, total=256 * MB, chunk=chunk)) as ws:
        wait_backlog(server)
        ws.send_close(1000, b"enough")
        rec = wait_event(out, "push-failed", timeout=10)  # the server has taken the close
        got, f = read_until_close(ws)
        assert (f.close_code, f.close_reason) == (1000, b"enough"), f
        # whole messages, at least the backlog seen before closing: over 1 MiB on
        # the wire is at least 16 frames of 64 KiB (sends the app made after our
        # close reached the I/O thread are dropped)
        assert got >= MB and got % chunk == 0, (got, rec)
        assert ws.wait_closed(10)
    check_echo(server)


@bayleaf_only
def test_sends_during_server_close_do_not_wait(start_server, tmp_path):
    """Our close (here: 1001 at SIGTERM) goes out while the app pushes: the
    sends after it are dropped and must count as gone, or the app's send()
    waits for a WRITABLE that never comes (until the closing handshake times
    out). The client reads everything but never answers the close."""
    server = start_server(APP_SPEC)
    out = tmp_path / "app.jsonl"
    with open_ws(server, "/push" + outq(out, total=64 * MB, chunk=65536)) as ws:
        wait_backlog(server)
        server.proc.send_signal(signal.SIGTERM)
        got, f = read_until_close(ws)
        assert f.close_code == 1001, f
        # we hold the connection without answering: the app must finish its
        # pushing (its sends dropped and released), not hang in send()
        rec = wait_until(lambda: next((e for e in events(out) if e["event"] in ("pushed", "push-failed")),
                                      None), 30, message="the app's push to end")
        assert rec == {"event": "pushed", "bytes": 64 * MB}, rec
        assert "accounting error" not in server.stderr


# --------------------------------------------------------------------------
# the app closes
# --------------------------------------------------------------------------

def test_app_close_seen_by_websockets_client(ws_server, tmp_path):
    out = tmp_path / "app.jsonl"

    async def go():
        async with websockets.connect(url(ws_server, "/close" + outq(out, code=4002, reason="done ✓")),
                                      ping_interval=None) as ws:
            with pytest.raises(websockets.exceptions.ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 4002
            assert ws.close_reason == "done ✓"
    run(go())
    rec = wait_event(out, "after-close")
    assert rec["message"]["type"] == "websocket.disconnect", rec


def test_app_close_handshake_completed_by_server(ws_server, tmp_path):
    """Server sends close, waits for the client's close, then closes TCP."""
    out = tmp_path / "app.jsonl"
    with open_ws(ws_server, "/close" + outq(out, code=4003, reason="bye")) as ws:
        f = ws.expect_close(5, skip_data=False)
        assert (f.close_code, f.close_reason) == (4003, b"bye"), f
        # the server waits for our close frame: the connection stays open meanwhile
        assert ws.raw.is_open_idle(0.3), "server closed TCP before the client's close frame"
        t0 = time.monotonic()
        ws.send_close(4003, b"bye")
        assert ws.wait_closed(5)
        # on our close frame, not by the 5 s closing timeout (started before t0)
        assert time.monotonic() - t0 < 4.0
    rec = wait_event(out, "after-close")
    assert rec["message"]["type"] == "websocket.disconnect", rec
    if IS_BAYLEAF:
        assert rec["message"]["code"] == 4003, rec


def test_app_close_default_code_1000(ws_server):
    with open_ws(ws_server, "/close") as ws:
        f = ws.expect_close(5)
        assert f.close_code == 1000, f
        ws.send_close(1000)
        assert ws.wait_closed(5)


@bayleaf_only
def test_app_close_client_never_answers(ws_server, tmp_path):
    """A client that ignores the server's close frame is dropped (bayleaf: 5 s)."""
    out = tmp_path / "app.jsonl"
    with open_ws(ws_server, "/close" + outq(out, code=1000)) as ws:
        ws.expect_close(5)
        t0 = time.monotonic()
        # by the closing timeout: not at once, and surely (a generous deadline)
        assert ws.wait_closed(20)
        assert time.monotonic() - t0 >= 1.0
    rec = wait_event(out, "after-close")
    assert rec["message"]["type"] == "websocket.disconnect", rec


def test_app_close_then_client_keeps_sending(ws_server, tmp_path):
    """Data frames after the server's close are discarded; the client's close ends it."""
    out = tmp_path / "app.jsonl"
    with open_ws(ws_server, "/close" + outq(out, code=1000)) as ws:
        ws.expect_close(5)
        ws.send_frame(OP_TEXT, "late")
        ws.send_close(1000)
        assert ws.wait_closed(5)
    rec = wait_event(out, "after-close")
    assert rec["message"]["type"] == "websocket.disconnect", rec


# --------------------------------------------------------------------------
# TCP drops
# --------------------------------------------------------------------------

def test_tcp_drop_is_1006(ws_server, tmp_path):
    out = tmp_path / "app.jsonl"
    ws = open_ws(ws_server, "/echo" + outq(out))
    ws.send_text("ping")
    assert ws.recv_text(5) == "ping"
    ws.close()
    rec = wait_event(out, "disconnect")
    assert rec["code"] == 1006, rec
    check_echo(ws_server)


def test_tcp_reset_is_1006(ws_server, tmp_path):
    out = tmp_path / "app.jsonl"
    ws = open_ws(ws_server, "/echo" + outq(out))
    ws.raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    ws.close()
    rec = wait_event(out, "disconnect")
    assert rec["code"] == 1006, rec


def test_tcp_drop_mid_frame_is_1006(ws_server, tmp_path):
    out = tmp_path / "app.jsonl"
    ws = open_ws(ws_server, "/echo" + outq(out, log=1))
    ws.send(frame(OP_TEXT, "x" * 1000)[:500])
    time.sleep(0.05)
    ws.close()
    rec = wait_event(out, "disconnect")
    assert rec["code"] == 1006, rec
    assert [e for e in events(out) if e["event"] == "received"][0]["message"]["type"] == "websocket.disconnect"


def test_tcp_drop_before_accept(ws_server, tmp_path):
    """The client leaves while the app still decides: the app's receive() says so."""
    out = tmp_path / "app.jsonl"
    ws = WSConn(ws_server.connect())
    ws.raw.send(("GET /never%s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
                 % outq(out)).encode())
    wait_event(out, "connected")
    ws.close()
    rec = wait_event(out, "never-answered", timeout=5)
    assert rec["message"]["type"] == "websocket.disconnect", rec
    check_echo(ws_server)


# --------------------------------------------------------------------------
# sending after the end
# --------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["close-frame", "tcp-drop"])
def test_send_after_disconnect_raises_oserror(ws_server, tmp_path, how):
    out = tmp_path / "app.jsonl"
    ws = open_ws(ws_server, "/after" + outq(out))
    if how == "close-frame":
        ws.send_close(1000)
        ws.expect_close(5)
    ws.close()
    rec = wait_event(out, "late-send")
    assert rec["exc"] is not None, "websocket.send after websocket.disconnect did not raise"
    assert rec["is_oserror"], rec
    if IS_BAYLEAF:
        assert rec["exc"] == "ClientDisconnected", rec


# --------------------------------------------------------------------------
# ordering and the codes an app may close with
# --------------------------------------------------------------------------

def test_messages_before_app_close_arrive_first(ws_server):
    with open_ws(ws_server, "/close?before=50&code=4000") as ws:
        for i in range(50):
            assert ws.recv_text(5) == f"msg {i}"
        f = ws.expect_close(5, skip_data=False)
        assert f.close_code == 4000
        ws.send_close(4000)
        assert ws.wait_closed(5)


def test_app_returning_after_sends_flushes_then_closes_1000(ws_server):
    with open_ws(ws_server, "/send-return?n=300") as ws:
        for i in range(300):
            op, data = ws.recv_message(5)
            assert data.startswith(b"%d:" % i) and len(data) == len(b"%d:" % i) + 1000
        f = ws.expect_close(5, skip_data=False)
        assert f.close_code == 1000
        ws.send_close(1000)
        assert ws.wait_closed(5)


def _close_codes_seen(server, tmp_path, codes, wait=4.0):
    """Open one /close?code=C per code at once; return {code: (close frame code or
    None, seconds until it arrived or the connection ended, what the app reported)}."""
    conns = {}
    for c in codes:
        out = tmp_path / f"close-{c}.jsonl"
        conns[c] = (open_ws(server, "/close" + outq(out, code=c)), out)
    result = {}
    t0 = time.monotonic()
    try:
        for c, (ws, out) in conns.items():
            left = max(0.05, t0 + wait - time.monotonic())
            try:
                f = ws.recv_frame(timeout=left)
                seen = f.close_code if f.opcode == OP_CLOSE else f"opcode {f.opcode}"
            except TimeoutError:
                seen = "nothing (timeout)"
            except EOFError:
                seen = "TCP closed without a close frame"
            result[c] = (seen, round(time.monotonic() - t0, 2), events(out))
    finally:
        for ws, _ in conns.values():
            ws.close()
    return result


@bayleaf_only
def test_app_close_with_registered_codes_1012_to_1014(ws_server, tmp_path):
    seen = _close_codes_seen(ws_server, tmp_path, [1012, 1013, 1014])
    assert {c: s[0] for c, s in seen.items()} == {1012: 1012, 1013: 1013, 1014: 1014}, seen


@bayleaf_only
def test_app_close_with_unsendable_code_fails_fast(ws_server, tmp_path):
    """A code the server cannot send either makes websocket.close raise in the app
    (which then fails: 1011) or goes out as some valid close frame: never a silent
    hang until the close-handshake timeout."""
    codes = [1004, 1005, 1006, 1015, 2000]
    seen = _close_codes_seen(ws_server, tmp_path, codes)
    for c in codes:
        frame_code, elapsed, reports = seen[c]
        # before the 5 s closing timeout (started before the clock here) could end it
        assert isinstance(frame_code, int) and elapsed < 4.0, seen
        raised = any(r["event"] == "close-raised" for r in reports)
        if IS_BAYLEAF:
            assert raised and frame_code == 1011, seen


def test_app_close_with_code_out_of_range_raises(ws_server, tmp_path):
    out = tmp_path / "app.jsonl"
    with open_ws(ws_server, "/close" + outq(out, code=999)) as ws:
        rec = wait_event(out, "close-raised")
        assert rec["exc"] == "ValueError", rec
        f = ws.expect_close(5)  # the app failed: 1011
        assert f.close_code == 1011, f


# --------------------------------------------------------------------------
# --application-close-timeout
# --------------------------------------------------------------------------

@bayleaf_only
@pytest.mark.parametrize("mode", ["receive", "sleep"])
def test_app_outliving_its_client_is_cancelled(start_server, tmp_path, mode):
    server = start_server(APP_SPEC, "--application-close-timeout", "1")
    out = tmp_path / "app.jsonl"
    ws = open_ws(server, "/linger" + outq(out, mode=mode))
    wait_event(out, "accepted")
    t0 = time.monotonic()
    ws.close()
    if mode == "receive":
        rec = wait_event(out, "received")
        assert rec["message"]["type"] == "websocket.disconnect"
    rec = wait_event(out, "cancelled", timeout=30)
    elapsed = time.monotonic() - t0
    # not before the 1 s given (timer granularity aside), and by it, well before
    # the default 10 s: generous for a loaded, sanitized run
    assert 0.8 <= elapsed < 9, (elapsed, rec)
    check_echo(server)
