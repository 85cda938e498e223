"""SIGHUP: workers replaced one by one while the supervisor keeps the listeners
open, so a steady stream of requests sees no failure; a replacement that cannot
start leaves the running workers in place."""

import os
import signal
import threading
import time

import pytest

from harness import bayleaf_only, free_port, wait_until
from proc_support import get_pid, http_get

pytestmark = bayleaf_only


class Load:
    """Client threads sending GET /pid on fresh connections until stopped."""

    def __init__(self, target, threads=3):
        self.target = target
        self.ok = 0
        self.failures = []
        self.pids = []  # (time the request started, pid that answered)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self):
        while not self._stop.is_set():
            try:
                started = time.monotonic()
                status, body = http_get(self.target, "/pid", timeout=30)
                with self._lock:
                    if status == 200:
                        self.ok += 1
                        self.pids.append((started, int(body)))
                    else:
                        self.failures.append(status)
            except Exception as e:  # noqa: BLE001 - every failure counts
                with self._lock:
                    self.failures.append(repr(e))

    def started_after(self, t):
        """Pids that answered requests started after t."""
        with self._lock:
            return [pid for started, pid in self.pids if started > t]

    def __enter__(self):
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for t in self._threads:
            t.join(40)


@pytest.mark.parametrize("listener", ["tcp", "unix"])
def test_sighup_under_load_fails_no_request(procs, sdir, listener):
    port = free_port()
    path = os.path.join(sdir, "r.sock")
    args = ["-p", port] if listener == "tcp" else ["-u", path]
    target = port if listener == "tcp" else path
    # a slow lifespan startup: replacements must be waited for
    p = procs.start(args + ["--workers", "2"], env={"PROC_STARTUP_DELAY": "0.3"},
                    port=port if listener == "tcp" else None, unix=path if listener == "unix" else None)
    old = set(p.wait_workers(2))
    # Events, not windows: the load runs from before the SIGHUP until requests
    # started after the reload completed have been answered (a busy machine or a
    # sanitizer build only makes it take longer).
    with Load(target) as load:
        wait_until(lambda: load.ok >= 10, 60, message="requests before the reload")
        p.send_signal(signal.SIGHUP)
        p.wait_for_text("Reload complete", timeout=60)
        t_done = time.monotonic()  # every old worker has exited by then
        wait_until(lambda: len(load.started_after(t_done)) >= 10 or load.failures, 60,
                   message="requests answered after the reload")
    assert load.failures == [], f"{len(load.failures)} failed requests: {load.failures[:5]}"
    new = set(p.workers())
    assert len(new) == 2 and not (new & old), (old, new)
    after = set(load.started_after(t_done))
    assert after and after <= new, (after, new)
    assert p.stderr.count("Started worker") == 4
    assert p.alive()


def test_sighup_twice_in_a_row(procs, sdir):
    path = os.path.join(sdir, "h.sock")
    p = procs.start(["-u", path, "--workers", "2"], unix=path)
    old = set(p.wait_workers(2))
    p.send_signal(signal.SIGHUP)
    time.sleep(0.05)
    p.send_signal(signal.SIGHUP)
    wait_until(lambda: "Reload complete" in p.stderr and len(p.workers()) == 2, 30,
               message="the reload to complete")
    assert not set(p.workers()) & old
    assert get_pid(path) in set(p.workers())


def test_broken_replacement_keeps_running_workers(procs, sdir, tmp_path):
    flag = tmp_path / "fail"
    path = os.path.join(sdir, "b.sock")
    p = procs.start(["-u", path, "--workers", "2"], env={"PROC_FAIL_FILE": str(flag)}, unix=path)
    old = set(p.wait_workers(2))
    flag.write_text("broken deploy")
    p.send_signal(signal.SIGHUP)
    p.wait_for_text(r"before it was ready: reload abandoned, the running workers stay", timeout=20)
    assert set(p.workers()) == old
    assert get_pid(path) in old
    # fixed: the next SIGHUP replaces them
    flag.unlink()
    p.send_signal(signal.SIGHUP)
    p.wait_for_text("Reload complete", timeout=20)
    new = set(p.workers())
    assert len(new) == 2 and not new & old
    rc, killed = p.stop()
    assert rc == 0 and not killed
