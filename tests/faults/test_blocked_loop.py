"""An app that blocks the event loop (time.sleep inside an async consumer)
stalls Python, not the server: the I/O thread keeps pinging WebSockets,
drops the ones whose pings go unanswered, and keeps accepting and closing
connections. Once Python is back, everything queued is served."""

import re
import socket
import subprocess
import threading
import time

import pytest

from conformance_ws import OP_PING, OP_PONG, OP_TEXT, Closed, connect
from faults_support import fd_count, wait_for
from harness import BAYLEAF

BLOCK = 6.0  # seconds the app sleeps on the event loop
PING_ARGS = ("--ping-interval", "0.5", "--ping-timeout", "1")


def start_block(srv, seconds=BLOCK):
    """A /block session told to block the loop; returns (ws, time it started)."""
    blocker = connect(srv, "/block")
    blocker.send_text("ready?")
    assert blocker.recv_message() == (OP_TEXT, b"ready?")
    blocker.send_text(f"block {seconds}")
    time.sleep(0.2)  # the message has reached Python, which is now asleep
    return blocker, time.monotonic()


def test_io_thread_pings_and_drops_while_python_is_blocked(fault_server):
    srv = fault_server(*PING_ARGS)
    answering = connect(srv, "/echo")
    silent = connect(srv, "/echo")
    blocker, t0 = start_block(srv)
    try:
        result = {}

        def blocker_waits():
            # a well-behaved client waiting for its answer: answers pings
            try:
                result["blocker"] = blocker.recv_message(timeout=BLOCK + 5)
            except Exception as exc:  # noqa: BLE001 - reported below
                result["blocker"] = repr(exc)

        def watch_silent():
            # never answers pings: the I/O thread must drop it
            try:
                while True:
                    silent.recv_frame(timeout=BLOCK)
            except Closed:
                result["dropped_after"] = time.monotonic() - t0
            except Exception as exc:  # noqa: BLE001 - reported below
                result["error"] = repr(exc)

        th = threading.Thread(target=watch_silent, daemon=True)
        th.start()
        tb = threading.Thread(target=blocker_waits, daemon=True)
        tb.start()
        pings = 0
        while time.monotonic() - t0 < BLOCK - 1.5:
            f = answering.recv_frame(timeout=BLOCK)
            assert f.opcode == OP_PING, f"unexpected {f!r} while Python sleeps"
            answering.send(OP_PONG, f.payload)
            pings += 1
        th.join(BLOCK)
        assert pings >= 2, f"only {pings} pings while Python was blocked"
        assert "dropped_after" in result, f"silent client not dropped: {result}"
        assert result["dropped_after"] < BLOCK - 0.5, "dropped only after Python woke up"
        # Python wakes up: the blocker gets its answer, the answering client was kept
        tb.join(BLOCK + 6)
        assert result.get("blocker") == (OP_TEXT, b"unblocked"), result
        answering.send_text("still here")
        assert answering.recv_message(timeout=5) == (OP_TEXT, b"still here")
    finally:
        for ws in (answering, silent, blocker):
            ws.close()


def test_connections_accepted_and_closed_while_python_is_blocked(fault_server):
    srv = fault_server()
    blocker, t0 = start_block(srv)
    base = fd_count(srv.pid)  # after the first connection: Python opens some fds lazily
    try:
        socks = []
        for _ in range(30):
            s = socket.create_connection((srv.host, srv.port), timeout=2)
            socks.append(s)
        # accepted by the I/O thread: the server holds one more fd per client
        wait_for(lambda: fd_count(srv.pid) >= base + 30, 2, what="30 accepted connections")
        socks[0].sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")  # answered later
        for s in socks[1:]:
            s.close()
        wait_for(lambda: fd_count(srv.pid) <= base + 2, 2,
                 what=f"closed connections to be released (base {base}, now {fd_count(srv.pid)})")
        assert time.monotonic() - t0 < BLOCK - 0.5, "the I/O thread waited for Python"
        socks[0].settimeout(BLOCK + 5)
        assert socks[0].recv(4096).startswith(b"HTTP/1.1 200")
        socks[0].close()
    finally:
        blocker.close()


def _has_watchdog():
    try:
        out = subprocess.run([BAYLEAF, "--help"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "--loop-watchdog" in out


def test_watchdog_reports_a_blocked_event_loop(fault_server):
    """--loop-watchdog 1: a stall of the loop is logged once, with the stack of
    the loop thread (where the app sleeps)."""
    if not _has_watchdog():
        pytest.xfail("this binary has no --loop-watchdog (event-loop watchdog not built in)")
    srv = fault_server("--loop-watchdog", "1")
    blocker, _ = start_block(srv, 3)
    try:
        srv.wait_for_text(r"event loop blocked for \d+ s", timeout=3)
        srv.wait_for_text(r"time\.sleep|in block", timeout=1)
        assert blocker.recv_message(timeout=10) == (OP_TEXT, b"unblocked")
    finally:
        blocker.close()
    assert len(re.findall(r"event loop blocked", srv.stderr)) == 1, "one warning per stall"
