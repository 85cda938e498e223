"""--workers N: a supervisor (no Python) and N workers sharing its listeners;
restarts with back-off; the in-memory channel layer warning."""

import os
import re
import signal
import time

import pytest

from harness import bayleaf_only, free_port, wait_until
from proc_support import (DJANGO_APP, get_pid, group_members, http_get, pid_alive,
                          thread_count)

pytestmark = bayleaf_only


def pids_seen(target, want, attempts=400):
    """Pids answering /pid on fresh connections until `want` distinct ones were seen."""
    seen = set()
    for _ in range(attempts):
        seen.add(get_pid(target))
        if len(seen) >= want:
            break
    return seen


def test_two_workers_share_the_listeners(procs, sdir):
    port = free_port()
    path = os.path.join(sdir, "w.sock")
    p = procs.start(["-p", port, "-u", path, "--workers", "2"], port=port)
    workers = set(p.wait_workers(2))
    assert p.pid not in workers
    assert pids_seen(port, 2) == workers, "requests must land on both workers"
    assert pids_seen(path, 1) <= workers
    # the supervisor runs no I/O thread and no Python: one thread
    assert thread_count(p.pid) == 1
    assert p.stderr.count("Listening on 127.0.0.1:%d (worker " % port) == 2
    rc, killed = p.stop()
    assert rc == 0 and not killed, p.describe()
    assert not os.path.exists(path), "the supervisor unlinks the socket file it created"


def test_killed_worker_is_restarted_with_backoff(procs, sdir):
    path = os.path.join(sdir, "k.sock")
    p = procs.start(["-u", path, "--workers", "1"], unix=path)
    (first,) = p.wait_workers(1)
    assert get_pid(path) == first
    os.kill(first, signal.SIGKILL)
    p.wait_for_text(rf"Worker {first} was killed by signal 9 \(SIGKILL\); restarting it in 0\.1 s")
    second = wait_until(lambda: [w for w in p.workers() if w != first], 10, message="a new worker")[0]
    wait_until(lambda: get_pid(path) == second, 10, message="the new worker to serve")
    # dying again soon after: the delay doubles
    os.kill(second, signal.SIGKILL)
    p.wait_for_text(rf"Worker {second} was killed by signal 9 \(SIGKILL\); restarting it in 0\.2 s")
    wait_until(lambda: get_pid(path) not in (first, second), 10, message="a third worker to serve")
    # the socket file stayed in place the whole time (owned by the supervisor)
    assert os.path.exists(path)


def test_worker_exit_status_is_logged(procs, sdir):
    path = os.path.join(sdir, "x.sock")
    p = procs.start(["-u", path, "--workers", "2"], unix=path)
    victim = p.wait_workers(2)[0]
    os.kill(victim, signal.SIGTERM)  # a worker stopped from outside drains and exits 0
    p.wait_for_text(rf"Worker {victim} exited with status 0; restarting it in 0\.1 s")
    wait_until(lambda: len(p.workers()) == 2 and victim not in p.workers(), 10, message="a replacement")


def test_worker_that_cannot_start_stops_the_supervisor(procs, sdir):
    path = os.path.join(sdir, "f.sock")
    t0 = time.monotonic()
    p = procs.start(["-u", path, "--workers", "2"], app="procapp:no_such_app", wait=False)
    rc = p.wait_exit(15)
    assert rc == 1, p.describe()
    assert time.monotonic() - t0 < 15
    assert "no_such_app" in p.stderr
    assert re.search(r"Worker \d+ exited with status 1 before it was ready: stopping", p.stderr)
    assert group_members(p.pid) == []
    assert not os.path.exists(path)


def test_in_memory_channel_layer_warning(procs):
    port = free_port()
    p = procs.start(["-p", port, "--workers", "2"], app=DJANGO_APP, port=port)
    p.wait_workers(2)
    wait_until(lambda: p.stderr.count("InMemoryChannelLayer") >= 2, 10, message="a warning per worker")
    line = next(l for l in p.stderr.splitlines() if "InMemoryChannelLayer" in l)
    assert "WARNING" in line and "channels_redis" in line, line


@pytest.mark.parametrize("args", [[], ["--workers", "1"]], ids=["single", "one-worker"])
def test_no_in_memory_warning_with_one_process(procs, args):
    port = free_port()
    p = procs.start(["-p", port] + args, app=DJANGO_APP, port=port)
    assert http_get(port, "/pid")[0] == 200
    assert "InMemoryChannelLayer" not in p.stderr


def test_workers_leave_when_the_supervisor_dies(procs, sdir):
    path = os.path.join(sdir, "o.sock")
    p = procs.start(["-u", path, "--workers", "2"], unix=path)
    workers = p.wait_workers(2)
    os.kill(p.pid, signal.SIGKILL)
    p.wait_exit(5)

    wait_until(lambda: not any(pid_alive(w) for w in workers), 15,
               message="the orphaned workers to exit")
