"""Stopping a supervisor: SIGTERM drains every worker (WebSocket close 1001, the
consumer's disconnect runs), leftovers are killed after the deadline, a second
SIGINT kills at once."""

import os
import signal
import threading
import time

from harness import bayleaf_only, free_port, wait_until
from proc_support import (DJANGO_APP, group_members, http_get, ws_connect_raw, ws_read_frame,
                          ws_send_close, ws_send_text, ws_wait_close)

pytestmark = bayleaf_only


def test_sigterm_drains_websockets_in_every_worker(procs, tmp_path):
    marker = tmp_path / "disconnects.txt"
    port = free_port()
    p = procs.start(["-p", port, "--workers", "2"], app=DJANGO_APP, env={"PROC_MARKER": str(marker)},
                    port=port)
    workers = set(p.wait_workers(2))
    conns, served_by = [], set()
    try:
        # enough connections that both workers hold some
        for _ in range(40):
            c = ws_connect_raw(port)
            conns.append(c)
            ws_send_text(c, "who")
            opcode, payload = ws_read_frame(c)
            served_by.add(int(payload))
            if served_by == workers and len(conns) >= 4:
                break
        assert served_by == workers
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        for c in conns:
            assert ws_wait_close(c, timeout=10) == 1001
            ws_send_close(c, 1001)
        rc = p.wait_exit(60)
        assert rc == 0, p.describe()
        assert time.monotonic() - t0 < 30  # well before the 30 s graceful timeout
    finally:
        for c in conns:
            c.close()
    lines = marker.read_text().split("\n")
    records = [l.split() for l in lines if l]
    assert len(records) == len(conns), records
    assert {int(pid) for pid, _ in records} == workers
    assert {code for _, code in records} == {"1001"}
    assert group_members(p.pid) == []


def test_workers_killed_after_the_deadline(procs):
    """A worker whose lifespan shutdown hangs is killed after --graceful-timeout,
    --application-close-timeout and a margin; the supervisor still exits 0."""
    port = free_port()
    p = procs.start(["-p", port, "--workers", "1", "--graceful-timeout", "1",
                     "--application-close-timeout", "1"], env={"PROC_SHUTDOWN_HANG": "60"}, port=port)
    (worker,) = p.wait_workers(1)
    t0 = time.monotonic()
    p.send_signal(signal.SIGTERM)
    rc = p.wait_exit(60)
    elapsed = time.monotonic() - t0
    assert rc == 0, p.describe()
    assert elapsed > 5, elapsed  # it waited for the deadline (an upper bound is the machine's)
    assert f"Worker {worker} did not exit in time: killing it" in p.stderr
    assert f"Worker {worker} was killed by signal 9 (SIGKILL)" in p.stderr
    assert group_members(p.pid) == []


def _slow_request(port, seconds, results):
    def run():
        try:
            results.append(http_get(port, f"/slow?t={seconds}", timeout=seconds + 60))
        except OSError as e:
            results.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_second_sigint_kills_at_once(procs):
    """Ctrl-C twice in a terminal: SIGINT reaches the whole process group each time."""
    port = free_port()
    p = procs.start(["-p", port, "--workers", "2"], port=port)
    p.wait_workers(2)
    results = []
    t = _slow_request(port, 120, results)
    p.wait_for_text("slow request started", timeout=30)  # in flight: the drain waits for it
    os.killpg(p.pid, signal.SIGINT)
    # every process has taken the first SIGINT: the supervisor, and the worker
    # holding the request (still draining it)
    p.wait_for_text("Received SIGINT: stopping 2 worker", timeout=30)
    p.wait_for_text(r"Received SIGINT, shutting down worker", timeout=30)
    assert p.alive(), "the first SIGINT drains; it does not kill"
    assert len(p.workers()) >= 1, "a worker must not take the group's SIGINT as a second signal"
    t0 = time.monotonic()
    os.killpg(p.pid, signal.SIGINT)
    rc = p.wait_exit(60)
    assert rc == 0, p.describe()
    assert time.monotonic() - t0 < 60  # not the 120 s request, nor the 30 s graceful timeout
    assert "Second signal: killing the workers" in p.stderr
    wait_until(lambda: group_members(p.pid) == [], 5, message="no process left")
    t.join(60)
    assert results and not (isinstance(results[0], tuple) and results[0][0] == 200)


def test_group_wide_sigterm_still_drains(procs):
    """systemd's default KillMode=control-group sends SIGTERM to the workers too:
    the in-flight request still completes."""
    port = free_port()
    p = procs.start(["-p", port, "--workers", "2"], port=port)
    p.wait_workers(2)
    results = []
    t = _slow_request(port, 1.5, results)
    p.wait_for_text("slow request started", timeout=30)
    os.killpg(p.pid, signal.SIGTERM)
    t.join(60)
    assert results and results[0] == (200, b"slow done"), results
    assert p.wait_exit(60) == 0, p.describe()
    assert "second signal" not in p.stderr.lower()
