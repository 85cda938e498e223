"""Churn leak test: 100,000 HTTP requests (half on keep-alive connections,
half one connection each) and 50,000 WebSocket sessions (handshake, echo,
closing handshake), driven by churn.c. After a warm-up round, the server's
RSS, its Python object count (gc.collect(); len(gc.get_objects())) and its
open fds must be flat: whatever a request or a session allocates is freed.

BAYLEAF_CHURN_SCALE scales the counts (default 1: the full size, ~15 s on
2 cores; 0.1 under sanitizers, which are ~10x slower)."""

import os
import shutil
import subprocess
import time

import pytest

from faults_support import fd_count, get_json, wait_for
from harness import SANITIZED, assert_rss_growth

HERE = os.path.dirname(os.path.abspath(__file__))
SCALE = float(os.environ.get("BAYLEAF_CHURN_SCALE", "0.1" if SANITIZED else "1"))
HTTP_KEEPALIVE = int(50_000 * SCALE)
HTTP_CLOSE = int(50_000 * SCALE)
WEBSOCKETS = int(50_000 * SCALE)


@pytest.fixture(scope="module")
def churn_bin(tmp_path_factory):
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.skip("no C compiler for churn.c")
    out = tmp_path_factory.mktemp("churn") / "churn"
    subprocess.run([cc, "-O2", "-Wall", "-o", str(out), os.path.join(HERE, "churn.c")], check=True)
    return str(out)


def churn(bin_path, srv, mode, total, conns=32, path="/hello"):
    if total <= 0:
        return
    cmd = [bin_path, "--port", str(srv.port), "--mode", mode, "--total", str(total), "--conns", str(conns),
           "--path", path, "--per-conn", "100", "--timeout", "300"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=330)
    assert r.returncode == 0, f"{' '.join(cmd)}\n{r.stdout}{r.stderr}\n{srv.describe()}"
    return r.stdout.strip()


def snapshot(srv, sessions, max_fds=None):
    """Counts once every WebSocket session so far has ended in the app (its
    disconnect counted) and, if given, the server is back to max_fds: events,
    not a fixed settle time (a loaded, sanitized run is slow)."""
    wait_for(lambda: get_json(srv, "/stats")["disconnects"] >= sessions, 120,
             what=f"{sessions} WebSocket sessions to end")
    if max_fds is not None:
        wait_for(lambda: fd_count(srv.pid) <= max_fds, 60, what=f"the server back to {max_fds} fds")
    objects = get_json(srv, "/gc")["objects"]
    return {"rss": srv.rss_kb(), "objects": objects, "fds": fd_count(srv.pid)}


def one_round(bin_path, srv, scale):
    out = [churn(bin_path, srv, "http-keepalive", int(HTTP_KEEPALIVE * scale)),
           churn(bin_path, srv, "http-close", int(HTTP_CLOSE * scale)),
           churn(bin_path, srv, "ws", int(WEBSOCKETS * scale), path="/echo")]
    return [o for o in out if o]


def test_churn_leaves_no_leaks(fault_server, churn_bin):
    # A 1 s close timeout: each finished session is otherwise held for 10 s
    # (see test_finished_sessions_are_released_promptly).
    srv = fault_server("--application-close-timeout", "1")
    one_round(churn_bin, srv, 0.2)  # warm-up: caches, allocator arenas, lazily opened fds
    before = snapshot(srv, int(WEBSOCKETS * 0.2))
    t0 = time.monotonic()
    results = one_round(churn_bin, srv, 1.0)
    took = time.monotonic() - t0
    after = snapshot(srv, int(WEBSOCKETS * 0.2) + WEBSOCKETS, max_fds=before["fds"] + 2)
    report = (f"{HTTP_KEEPALIVE + HTTP_CLOSE} requests + {WEBSOCKETS} websockets in {took:.1f}s; "
              f"before {before}, after {after}\n" + "\n".join(results))
    print(report)
    assert srv.alive(), srv.describe()
    assert after["fds"] <= before["fds"] + 2, report
    assert after["objects"] - before["objects"] < 5000, report
    assert_rss_growth(after["rss"] - before["rss"], 32 * 1024, "over the churn run")


def test_finished_sessions_are_released_promptly(fault_server, churn_bin):
    srv = fault_server()  # default --application-close-timeout 10
    n = max(int(5000 * SCALE), 100)
    churn(churn_bin, srv, "ws", n // 5, path="/echo")
    before = snapshot(srv, n // 5)
    churn(churn_bin, srv, "ws", n, path="/echo")
    after = snapshot(srv, n // 5 + n)
    assert after["objects"] - before["objects"] < n, f"{n} finished sessions: {before} -> {after}"
