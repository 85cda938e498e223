"""SIGHUP under load behind nginx (examples/deploy/nginx.conf as shipped): with
--workers 2, the supervisor replaces the workers one by one while nginx keeps
sending requests, GETs and POSTs; not one may fail.

Skipped while the build has no worker processes (--workers parsed but not yet
served by a supervisor): it passes once they are."""

import http.client
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from harness import bayleaf_only, wait_until

from .nginx_support import needs_nginx
from .support import APP, DEPLOY_APPS

pytestmark = [bayleaf_only, needs_nginx]

LOAD_THREADS = 4
RELOAD_DEADLINE = 60.0


def children(pid):
    """Pids of the process's children (from /proc)."""
    out = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, split after its ")"
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            out.add(int(entry))
    return out


class Load:
    """Threads sending requests through nginx until stopped; every failure is kept."""

    def __init__(self, port):
        self.port = port
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.ok = 0
        self.failures = []
        self.pids_seen = []  # (time, pid)
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(LOAD_THREADS)]

    def _run(self):
        conn = None
        n = 0
        while not self.stop_flag.is_set():
            n += 1
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                # POSTs too: nginx retries a failed GET on another connection, never a POST
                if n % 2:
                    conn.request("GET", "/sleep?s=0.02")
                else:
                    conn.request("POST", "/sleep?s=0.02", body=b"x" * 200)
                r = conn.getresponse()
                body = r.read()
                if r.status != 200:
                    raise AssertionError(f"status {r.status}: {body[:200]!r}")
                with self.lock:
                    self.ok += 1
                    self.pids_seen.append((time.monotonic(), int(body)))
            except Exception as e:  # noqa: BLE001 - every failure counts
                with self.lock:
                    self.failures.append(repr(e))
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        for t in self.threads:
            t.join(15)


def test_sighup_under_load_through_nginx(start_server, nginx, sock_path):
    server = start_server(APP, "--workers", "2", "--proxy-headers", unix=sock_path, cwd=DEPLOY_APPS)
    try:
        before = wait_until(lambda: len(children(server.pid)) >= 2 and children(server.pid), 5,
                            message="two worker processes")
    except AssertionError:
        pytest.skip("this build runs no worker processes for --workers 2 (the supervisor is not there yet)")
    ng = nginx("nginx.conf", sock_path)

    with Load(ng.port) as load:
        wait_until(lambda: load.ok >= 20, 10, message="requests flowing before the reload")
        os.kill(server.pid, signal.SIGHUP)

        def replaced():
            now = children(server.pid)
            return len(now) >= 2 and not (now & before) and now

        after = wait_until(replaced, RELOAD_DEADLINE, interval=0.1, message="both workers replaced")
        replaced_at = time.monotonic()
        settled = load.ok
        wait_until(lambda: load.ok >= settled + 20, 10, message="requests flowing after the reload")

    assert server.alive(), server.describe()
    assert not load.failures, f"{len(load.failures)} failed requests (of {load.ok + len(load.failures)}): " \
                              f"{load.failures[:10]}"
    # once the old workers are gone, only new ones answer (a request in flight may end late)
    late = {pid for t, pid in load.pids_seen if t > replaced_at + 1.0}
    assert late <= after, (late, after)
    served_by_new = {pid for _, pid in load.pids_seen} & after
    assert served_by_new, "no request was served by a new worker"
    errors = ng.errors()
    assert not errors, "nginx logged errors:\n" + "\n".join(errors[-20:])
