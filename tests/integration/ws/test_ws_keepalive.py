"""Server pings (--ping-interval/--ping-timeout) and the maximum age (--websocket_timeout)."""

import time

import pytest
import websockets

from harness import IncompleteResponse, bayleaf_only

from .ws_support import APP, OP_CLOSE, OP_PING, OP_PONG, check_echo, open_ws, outq, run, url, wait_event

pytestmark = bayleaf_only


@pytest.fixture
def ping_server(shared_server):
    # a 2 s ping timeout: time for a loaded machine's client to answer
    return shared_server(APP, "--ping-interval", "1", "--ping-timeout", "2")


def read_frames_for(ws, seconds, answer):
    """Read frames for `seconds`; returns (pings seen, time of EOF or None)."""
    pings = []
    t0 = time.monotonic()
    deadline = t0 + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return pings, None
        try:
            f = ws.recv_frame(timeout=left)
        except TimeoutError:
            return pings, None
        except IncompleteResponse:
            return pings, time.monotonic() - t0
        assert f.opcode in (OP_PING, OP_PONG), f
        if f.opcode == OP_PING:
            pings.append(time.monotonic() - t0)
            if answer:
                ws.send_frame(OP_PONG, f.payload)


def test_client_answering_pings_stays_connected(ping_server, tmp_path):
    out = tmp_path / "app.jsonl"
    with open_ws(ping_server, "/echo" + outq(out)) as ws:
        # a fixed window for a negative check: past interval + timeout twice over
        pings, eof = read_frames_for(ws, 6.0, answer=True)
        assert eof is None, f"connection dropped after {eof:.1f}s although every ping was answered"
        assert len(pings) >= 2, pings  # idle for 1 s -> ping, answered -> idle again...
        assert pings[0] >= 0.8, pings
        ws.send_text("alive")
        assert ws.recv_text(5) == "alive"


def test_websockets_client_stays_connected(ping_server):
    """python3-websockets answers pings by itself (its own pings are off)."""
    async def go():
        async with websockets.connect(url(ping_server, "/echo"), ping_interval=None) as ws:
            import asyncio
            await asyncio.sleep(4.5)  # past interval + timeout (3 s)
            await ws.send("still")
            assert await ws.recv() == "still"
    run(go())


def test_client_ignoring_pings_is_dropped(ping_server, tmp_path):
    out = tmp_path / "app.jsonl"
    with open_ws(ping_server, "/echo" + outq(out)) as ws:
        pings, eof = read_frames_for(ws, 20.0, answer=False)
        # not before the 1 s interval, nor dropped before interval + 2 s timeout
        # (timer granularity aside); upper bounds generous for a loaded, sanitized
        # run, yet below the defaults (20 s, 30 s)
        assert pings and 0.8 <= pings[0] <= 10, pings
        assert eof is not None, "a client that never answers pings was not dropped"
        assert 2.7 <= eof <= 20, eof
    rec = wait_event(out, "disconnect")
    assert rec["code"] == 1006, rec
    check_echo(ping_server)


def test_traffic_counts_as_alive(ping_server):
    """A client that keeps sending is not pinged out even if it ignores pings."""
    with open_ws(ping_server, "/echo") as ws:
        t0 = time.monotonic()
        # a fixed window for a negative check, past interval + timeout (3 s)
        while time.monotonic() - t0 < 5.0:
            ws.send_text("tick")
            op, data = ws.recv_message(5, answer_pings=False)
            assert data == b"tick"
            time.sleep(0.3)


def test_websocket_timeout_closes_with_1000(start_server, tmp_path):
    server = start_server(APP, "--websocket_timeout", "2", "--ping-interval", "1", "--ping-timeout", "5")
    out = tmp_path / "app.jsonl"
    with open_ws(server, "/echo" + outq(out)) as ws:
        t0 = time.monotonic()
        while True:
            f = ws.recv_frame(timeout=30)
            if f.opcode == OP_PING:
                ws.send_frame(OP_PONG, f.payload)
                continue
            break
        elapsed = time.monotonic() - t0
        assert f.opcode == OP_CLOSE and f.close_code == 1000, f
        # not before the 2 s age (timer granularity aside); generous upper bound
        assert 1.7 <= elapsed <= 20, elapsed
        ws.send_close(1000)
        assert ws.wait_closed(5)
    rec = wait_event(out, "disconnect")
    assert rec["code"] == 1000, rec


def test_websocket_timeout_hyphen_spelling_and_never(start_server):
    server = start_server(APP, "--websocket-timeout", "-1", "--ping_interval", "0.5", "--ping_timeout", "2")
    with open_ws(server, "/echo") as ws:
        pings, eof = read_frames_for(ws, 2.0, answer=True)
        assert eof is None and len(pings) >= 2, (pings, eof)
