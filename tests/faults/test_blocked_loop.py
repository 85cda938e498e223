"""An app that blocks the event loop (time.sleep inside an async consumer)
stalls Python, not the server: the I/O thread keeps pinging WebSockets,
drops the ones whose pings go unanswered, and keeps accepting and closing
connections. Once Python is back, everything queued is served."""

import os
import re
import socket
import subprocess
import threading
import time

import pytest

from conformance_ws import OP_PING, OP_PONG, OP_TEXT, Closed, connect
from faults_support import fd_count, wait_for
from harness import BAYLEAF

WAIT = 60.0  # generous deadline for events (a loaded, sanitized run)
PING_ARGS = ("--ping-interval", "0.5", "--ping-timeout", "1")


def start_block(srv, release):
    """A /block session told to block the loop until the file `release` exists
    (the test creates it); returns the ws once Python is asleep."""
    blocker = connect(srv, "/block")
    blocker.send_text("ready?")
    assert blocker.recv_message() == (OP_TEXT, b"ready?")
    blocker.send_text(f"block-until {release}")
    wait_for(lambda: os.path.exists(f"{release}.blocked"), WAIT, what="Python to block")
    return blocker


def test_io_thread_pings_and_drops_while_python_is_blocked(fault_server, tmp_path):
    srv = fault_server(*PING_ARGS)
    answering = connect(srv, "/echo")
    silent = connect(srv, "/echo")
    release = tmp_path / "release"
    blocker = start_block(srv, release)
    try:
        result = {}

        def blocker_waits():
            # a well-behaved client waiting for its answer: answers pings
            try:
                result["blocker"] = blocker.recv_message(timeout=WAIT)
            except Exception as exc:  # noqa: BLE001 - reported below
                result["blocker"] = repr(exc)

        def watch_silent():
            # never answers pings: the I/O thread must drop it
            try:
                while True:
                    silent.recv_frame(timeout=WAIT)
            except Closed:
                result["dropped"] = True
            except Exception as exc:  # noqa: BLE001 - reported below
                result["error"] = repr(exc)

        th = threading.Thread(target=watch_silent, daemon=True)
        th.start()
        tb = threading.Thread(target=blocker_waits, daemon=True)
        tb.start()
        pings = 0
        deadline = time.monotonic() + WAIT
        # Python stays blocked until `release` exists: whatever happens here is
        # the I/O thread's doing
        while (pings < 2 or th.is_alive()) and time.monotonic() < deadline:
            f = answering.recv_frame(timeout=WAIT)
            assert f.opcode == OP_PING, f"unexpected {f!r} while Python sleeps"
            answering.send(OP_PONG, f.payload)
            pings += 1
        assert pings >= 2, f"only {pings} pings while Python was blocked"
        assert "dropped" in result, f"silent client not dropped: {result}"
        assert "blocker" not in result, f"Python woke up before the release: {result}"
        # Python wakes up: the blocker gets its answer, the answering client was kept
        release.touch()
        tb.join(WAIT)
        assert result.get("blocker") == (OP_TEXT, b"unblocked"), result
        answering.send_text("still here")
        assert answering.recv_message(timeout=5) == (OP_TEXT, b"still here")
    finally:
        for ws in (answering, silent, blocker):
            ws.close()


def test_connections_accepted_and_closed_while_python_is_blocked(fault_server, tmp_path):
    srv = fault_server()
    release = tmp_path / "release"
    blocker = start_block(srv, release)
    base = fd_count(srv.pid)  # after the first connection: Python opens some fds lazily
    try:
        socks = []
        for _ in range(30):
            s = socket.create_connection((srv.host, srv.port), timeout=2)
            socks.append(s)
        # accepted by the I/O thread: the server holds one more fd per client
        wait_for(lambda: fd_count(srv.pid) >= base + 30, WAIT, what="30 accepted connections")
        socks[0].sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")  # answered later
        for s in socks[1:]:
            s.close()
        wait_for(lambda: fd_count(srv.pid) <= base + 2, WAIT,
                 what=f"closed connections to be released (base {base}, now {fd_count(srv.pid)})")
        # Python is still blocked (until `release` exists): the request is not answered yet
        socks[0].setblocking(False)
        try:
            early = socks[0].recv(4096)
        except BlockingIOError:
            early = None
        assert early is None, f"answered while Python was blocked: {early!r}"
        release.touch()
        socks[0].settimeout(WAIT)
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


def test_watchdog_reports_a_blocked_event_loop(fault_server, tmp_path):
    """--loop-watchdog 1: a stall of the loop is logged once, with the stack of
    the loop thread (where the app sleeps)."""
    if not _has_watchdog():
        pytest.xfail("this binary has no --loop-watchdog (event-loop watchdog not built in)")
    srv = fault_server("--loop-watchdog", "1")
    release = tmp_path / "release"
    blocker = start_block(srv, release)
    try:
        srv.wait_for_text(r"Event loop blocked for \d+ s", timeout=WAIT)
        srv.wait_for_text(r"time\.sleep|in block", timeout=WAIT)
        release.touch()
        assert blocker.recv_message(timeout=WAIT) == (OP_TEXT, b"unblocked")
    finally:
        blocker.close()
    assert len(re.findall(r"Event loop blocked", srv.stderr)) == 1, "one warning per stall"
