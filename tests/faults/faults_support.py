"""Helpers for tests/faults (a uniquely named module: conftest.py is not importable
from tests when several suites run in one pytest session). Polling and JSON requests
are the integration harness's; these names only keep the fault tests' spelling."""

import os

from harness import wait_until


def get_json(server, path, timeout=10):
    return server.get_json(path, timeout=timeout)


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def wait_for(predicate, timeout, interval=0.05, what="condition"):
    return wait_until(predicate, timeout, interval=interval, message=what)
