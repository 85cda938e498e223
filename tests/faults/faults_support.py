"""Helpers for tests/faults (a uniquely named module: conftest.py is not importable
from tests when several suites run in one pytest session)."""

import json
import os
import time
import urllib.request


def get_json(server, path, timeout=10):
    with urllib.request.urlopen(f"http://{server.host}:{server.port}{path}", timeout=timeout) as r:
        return json.loads(r.read())


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def wait_for(predicate, timeout, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
