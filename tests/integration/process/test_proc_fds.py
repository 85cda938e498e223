"""Descriptors: no listening socket leaks into the app's child processes; the soft
RLIMIT_NOFILE is raised to the hard one at start-up; near the limit, accepting
pauses with a rate-limited log line and resumes once connections close."""

import json
import os
import socket
import time

import pytest

from harness import bayleaf_only, free_port, short_tmpdir, wait_until
from proc_support import http_get

pytestmark = bayleaf_only


def _nofile(pid):
    """(soft, hard) 'Max open files' of a process, from /proc."""
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return int(soft), int(hard)
    raise AssertionError("no Max open files line")


@pytest.mark.parametrize("workers", [[], ["--workers", "1"]], ids=["lone", "worker"])
def test_no_listening_socket_reaches_a_child_process(procs, workers):
    d = short_tmpdir()
    path = os.path.join(d, "c.sock")
    port = free_port()
    p = procs.start(["-p", port, "-u", path] + workers, port=port)
    status, body = http_get(port, "/child-fds")
    assert status == 200, body
    assert json.loads(body) == [], "listening sockets inherited by the app's child: %s" % body


def test_soft_fd_limit_is_raised_to_the_hard_one(procs):
    port = free_port()
    p = procs.start(["-p", port], port=port, sh='ulimit -S -n 100 && exec "$0" "$@"')
    soft, hard = _nofile(p.pid)
    assert hard > 100, "the test needs a hard limit above 100"
    assert soft == hard, (soft, hard)


def test_fd_limit_pauses_accepting_with_one_log_line_and_recovers(procs):
    port = free_port()
    p = procs.start(["-p", port], port=port, sh='ulimit -n 64 && exec "$0" "$@"')
    assert _nofile(p.pid) == (64, 64)
    t0 = time.monotonic()
    clients = []
    try:
        for _ in range(100):  # the kernel's backlog takes those the server does not
            clients.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        p.wait_for_text(r"Near the file-descriptor limit \(64\): \d+ connection\(s\) open",
                        timeout=30)
    finally:
        for c in clients:
            c.close()
    # once they are gone the server serves again, the waiting connections included
    wait_until(lambda: _serves(port), 60, interval=0.2, message="the server to serve again")
    # rate limited: at most one line a second, not one per connection
    lines = p.stderr.count("Near the file-descriptor limit")
    assert lines <= 1 + time.monotonic() - t0, p.stderr[-3000:]
    assert "Accept on" not in p.stderr, p.stderr[-3000:]
    assert p.alive()


def _serves(port):
    try:
        return http_get(port, "/pid", timeout=5)[0] == 200
    except OSError:
        return False
