"""receive() and send() are safe to cancel (issue #11, section 1), and an app's
sys.exit() ends only its own request or WebSocket (section 4).

A receive() cancelled while it waits (asyncio.wait_for, asyncio.timeout,
Starlette's is_disconnected() polling) takes nothing: every byte the client sent
reaches the app exactly once and in order. Several tasks may wait in receive()
and send() at once. The app is tests/integration/apps/cancel_app.py.
"""

import hashlib
import json
import threading
import time

import pytest

from harness import IS_BAYLEAF, build_request, qs, read_json_lines, wait_until
from ws.ws_support import (OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, check_echo, open_ws, outq,
                           wait_event)

pytestmark = pytest.mark.bayleaf_only

APP = "cancel_app:app"


@pytest.fixture(params=["uvloop", "asyncio"])
def server(request, start_server):
    """The two loops order a wake-up and a timeout firing together differently."""
    if request.param == "uvloop":
        pytest.importorskip("uvloop")
    return start_server(APP, "--loop", request.param)


def trickled_body(n=200):
    """n pieces of different sizes and contents: a reordering or a loss shows."""
    return [bytes([(i * 7 + j) % 251 for j in range(1 + (i * 37) % 97)]) for i in range(n)]


def send_trickle(conn, pieces, chunked):
    for i, piece in enumerate(pieces):
        conn.send(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
        if i % 10 < 5:
            time.sleep(0.002)  # pacing only: the app's timeouts fire in between; or bursts
    if chunked:
        conn.send(b"0\r\n\r\n")


def post_trickle(server, tmp_path, path, chunked, zero=False):
    out = tmp_path / "events.jsonl"
    pieces = trickled_body()
    body = b"".join(pieces)
    headers = [("Transfer-Encoding", "chunked")] if chunked else [("Content-Length", str(len(body)))]
    with server.connect() as conn:
        conn.send(build_request("POST", path + qs(out=out, zero=int(zero)), headers=headers))
        # The body starts only once the app has already given up on a receive().
        wait_event(out, "timeout", timeout=10)
        send_trickle(conn, pieces, chunked)
        resp = conn.read_response(timeout=30)
    assert resp.status == 200, (resp, resp.body[:500], server.stderr[-3000:])
    got = json.loads(resp.body)
    assert got["length"] == len(body), (got, len(body))
    assert got["sha256"] == hashlib.sha256(body).hexdigest(), "body bytes lost, repeated or reordered"
    assert got["timeouts"] >= 1
    assert "already being awaited" not in server.stderr
    return got


@pytest.mark.parametrize("zero", [False, True], ids=["1ms", "0-and-1ms"])
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_http_body_through_wait_for_timeouts(server, tmp_path, chunked, zero):
    """wait_for(receive(), 1 ms) times out again and again while the body trickles
    in; with every other call's timeout 0, wait_for cancels receive() before it
    ever runs, whether a chunk is at hand or not."""
    post_trickle(server, tmp_path, "/poll-body", chunked, zero)
    server.assert_serving("/ok")


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_http_body_with_is_disconnected_polling(server, tmp_path, chunked):
    """One task reads the body while another polls receive() under a 1 ms timeout
    (Starlette's is_disconnected()): two concurrent receive() calls, nothing lost."""
    post_trickle(server, tmp_path, "/two-readers", chunked)
    server.assert_serving("/ok")


def next_frame(ws, deadline):
    """The next frame other than a ping or pong, before an overall deadline (the
    server's pings would renew a per-frame timeout for ever)."""
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, "the app sent nothing in time"
        f = ws.recv_frame(timeout=remaining)
        if f.opcode == OP_PING:
            ws.send_frame(OP_PONG, f.payload)
        elif f.opcode != OP_PONG:
            return f


def ws_trickle(server, readers, zero=False):
    texts = [f"{i}:" + "m" * (i % 13) for i in range(300)]
    with open_ws(server, f"/poll?readers={readers}&zero={int(zero)}") as ws:
        for i, t in enumerate(texts):
            if i % 3 == 2:
                ws.send_frame(OP_BINARY, t.encode())
            else:
                ws.send_text(t)
            if i % 10 < 5:
                time.sleep(0.002)  # pacing only; the other half arrives in bursts
        ws.send_text("end")
        deadline = time.monotonic() + 30
        f = next_frame(ws, deadline)
        assert f.opcode == OP_TEXT and f.fin, f
        got = json.loads(f.payload)
        f = next_frame(ws, deadline)
        assert f.opcode == OP_CLOSE and f.close_code == 1000, f
    return texts, got


@pytest.mark.parametrize("zero", [False, True], ids=["1ms", "0-and-1ms"])
def test_ws_messages_through_wait_for_timeouts(server, zero):
    texts, got = ws_trickle(server, readers=1, zero=zero)
    assert got["messages"] == texts, "messages lost, repeated or reordered"
    assert got["timeouts"] >= 1
    check_echo(server)


def test_ws_messages_with_two_polling_readers(server):
    """Two tasks poll receive() under asyncio.timeout(1 ms): each message is taken
    once, by one of them, in the order the client sent it."""
    texts, got = ws_trickle(server, readers=2)
    assert got["messages"] == texts, "messages lost, repeated or reordered"
    assert got["timeouts"] >= 1
    check_echo(server)


def test_http_send_wait_for_under_backpressure(server, tmp_path):
    """wait_for(send(...), 10 ms) times out while the client does not read; the
    app goes on sending; once the client reads, the whole body arrives in order."""
    out = tmp_path / "events.jsonl"
    n, size = 160, 65536  # 10 MiB: more than the kernel buffers hold (4 MiB send buffer at most)
    s = server.socket(timeout=30)
    try:
        s.sendall(build_request("GET", "/send-timeout" + qs(out=out, n=n, size=size)))
        wait_event(out, "timeout", timeout=20)  # the client reads nothing until now
        data = bytearray()
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            data += chunk
            if b"\r\n\r\n" in data and len(data) - data.index(b"\r\n\r\n") - 4 >= n * size:
                break
    finally:
        s.close()
    head, _, body = bytes(data).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), (head, server.stderr[-3000:])
    expected = b"".join(bytes([i % 256]) * size for i in range(n))
    assert len(body) == len(expected), (len(body), len(expected), read_json_lines(out))
    assert body == expected
    assert wait_event(out, "done", timeout=20)
    assert not [e for e in read_json_lines(out) if e["event"] == "send-failed"], read_json_lines(out)
    server.assert_serving("/ok")


def test_ws_two_tasks_send_to_a_slow_client(server, tmp_path):
    """The handler and a background task both send to a client that reads slowly
    (the background one through wait_for): no RuntimeError, every message arrives,
    in order per sender."""
    out = tmp_path / "events.jsonl"
    n, size = 40, 65536
    with open_ws(server, "/two-senders" + outq(out, n=n, size=size), rcvbuf=16384, timeout=30) as ws:
        seen = {"main": [], "bg": []}
        deadline = time.monotonic() + 60
        while True:
            f = next_frame(ws, deadline)
            if f.opcode == OP_CLOSE:
                assert f.close_code == 1000, (f, read_json_lines(out), server.stderr[-3000:])
                break
            assert f.opcode == OP_BINARY and f.fin, f
            assert len(f.payload) == size
            tag, i, _ = f.payload.split(b":", 2)
            seen[tag.decode()].append(int(i))
    assert seen == {"main": list(range(n)), "bg": list(range(n))}, seen
    assert wait_event(out, "done", timeout=10)
    assert "send-failed" not in json.dumps(read_json_lines(out))
    check_echo(server)


# ---- receive() after the disconnect must not starve the loop ------------------


def test_receive_loop_after_disconnect_does_not_starve_the_loop(server, tmp_path):
    """An app that loops on receive() once its response is over gets
    http.disconnect at once each time, yet other requests are still served."""
    out = tmp_path / "events.jsonl"
    status, _, body = server.get("/spin" + qs(out=out), timeout=30)
    assert status == 200 and body == b"spinning"
    wait_event(out, "spinning", timeout=10)
    status, _, body = server.get("/stop-spin", timeout=30)
    assert status == 200 and body == b"stopped"
    stopped = wait_event(out, "stopped", timeout=30)
    assert stopped["stopped"] is True, stopped
    assert stopped["types"] == ["http.disconnect"], stopped
    assert stopped["calls"] > 1
    server.assert_serving("/ok")


# ---- sys.exit() in an app ---------------------------------------------------------


def test_sys_exit_in_a_view_is_a_500_and_the_server_serves_on(server):
    with open_ws(server, "/echo") as side:
        side.send_text("before")
        assert side.recv_text(timeout=10) == "before"
        status, _, _ = server.get("/exit", timeout=30)
        assert status == 500
        server.wait_for_text(r"SystemExit", timeout=10)
        assert server.alive(), server.describe()
        # The WebSocket on the side was not closed (no 1001 to everyone).
        side.send_text("after")
        assert side.recv_text(timeout=10) == "after"
        server.assert_serving("/ok")
        side.send_close(1000)
        assert side.expect_close(10).close_code == 1000


def test_sys_exit_in_a_consumer_closes_1011(server):
    with open_ws(server, "/echo") as side, open_ws(server, "/exit") as ws:
        ws.send_text("bye")
        f = ws.expect_close(10)
        assert f.close_code == 1011, f
        side.send_text("still here")
        assert side.recv_text(timeout=10) == "still here"
    assert server.alive(), server.describe()
    check_echo(server)


def test_cancelled_waiters_do_not_pile_up(server, tmp_path):
    """Thousands of receive() and send() calls cancelled while they wait leave no
    queue of dead waiters behind (a client that sends and reads nothing)."""
    out = tmp_path / "events.jsonl"
    with open_ws(server, "/churn" + outq(out, n=5000), rcvbuf=16384, timeout=60):
        got = wait_event(out, "receive-churn", timeout=60)
        assert got["receivers"] <= 1 and got["cancelled_futures"] <= 1, got
        got = wait_event(out, "send-churn", timeout=60)
        assert got["timeouts"] >= 2500, got  # they did wait (and were cancelled)
        assert got["receivers"] <= 1 and got["cancelled_futures"] <= 1, got
    check_echo(server)
