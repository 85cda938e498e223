"""Helpers of the Django integration tests (fixtures are in conftest.py): the
tiny Channels project in project/ ("bayleaf" in INSTALLED_APPS) and
`manage.py runserver` in a copy of it.

runserver runs in its own session (so a test can Ctrl-C its whole process
group as a terminal would); bayleaf, started by it in a session of its own, is
found through /proc: a process running the bayleaf binary in the project's
directory.  Whatever a test leaves running is killed at teardown.
"""

import asyncio
import http.client
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from harness import BAYLEAF, REPO, sanitizer_report, server_env, wait_until

HERE = Path(__file__).resolve().parent
PROJECT_SRC = HERE / "project"
PYAPP = REPO / "pyapp"
START_TIMEOUT = 30.0


def project_env(extra=None):
    env = server_env({"PYTHONPATH": str(PYAPP), "BAYLEAF_BIN": str(BAYLEAF)})
    for name in ("DJANGO_SETTINGS_MODULE", "RUN_MAIN", "SITEPROJ_DEBUG"):
        env.pop(name, None)
    if extra:
        env.update(extra)
    return env


def _exe_of(pid):
    try:
        target = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None
    # a binary rebuilt while it runs shows as "PATH (deleted)"
    return os.path.realpath(target.removesuffix(" (deleted)"))


def bayleaf_pids(directory):
    """Live bayleaf processes whose working directory is `directory`."""
    binary = os.path.realpath(BAYLEAF)
    directory = os.path.realpath(directory)
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.path.realpath(f"/proc/{entry}/cwd") != directory:
                continue
            with open(f"/proc/{entry}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and _exe_of(entry) == binary:
            found.append(int(entry))
    return sorted(found)


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def http_get(port, path, timeout=10.0, host="127.0.0.1"):
    """(status, headers with lower-case names, body) of one GET."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def ws_exchange(port, path, send=None, timeout=10.0):
    """Connect a WebSocket, optionally send one text message, return the first message."""
    import websockets

    async def talk():
        async with websockets.connect(f"ws://127.0.0.1:{port}{path}", open_timeout=timeout,
                                      close_timeout=2) as ws:
            if send is not None:
                await ws.send(send)
            return await asyncio.wait_for(ws.recv(), timeout)

    return asyncio.run(talk())


def open_websocket(port, path, timeout=10.0):
    """A raw socket on which a WebSocket handshake succeeded (left open)."""
    import base64
    import socket

    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        sock.close()
        raise AssertionError(f"WebSocket handshake refused: {head[:200]!r}")
    return sock


class RunServer:
    """One `python manage.py runserver ...` process (group)."""

    def __init__(self, proc, port, project, out_path, err_path):
        self.proc = proc
        self.port = port
        self.project = project
        self.out_path = out_path
        self.err_path = err_path

    @property
    def stdout(self):
        return self.out_path.read_text(errors="replace")

    @property
    def stderr(self):
        return self.err_path.read_text(errors="replace")

    def describe(self):
        return (f"returncode: {self.proc.poll()}\n--- stdout ---\n{self.stdout[-3000:]}"
                f"\n--- stderr ---\n{self.stderr[-4000:]}")

    def alive(self):
        return self.proc.poll() is None

    def get(self, path, **kw):
        return http_get(self.port, path, **kw)

    def wait_serving(self, path="/hello/", timeout=START_TIMEOUT):
        """Wait until `path` answers (any status); returns (status, headers, body)."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                pytest.fail("runserver exited during startup\n" + self.describe())
            try:
                return self.get(path, timeout=5)
            except (OSError, http.client.HTTPException):
                if time.monotonic() > deadline:
                    pytest.fail(f"runserver not serving after {timeout}s\n" + self.describe())
                time.sleep(0.1)

    def bayleaf_pids(self):
        return bayleaf_pids(self.project)

    def signal_group(self, sig):
        """As a terminal's Ctrl-C does: the signal goes to every process of the group."""
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"runserver still running {timeout}s after being stopped\n" + self.describe())

    def sanitizer_report(self):
        return sanitizer_report(self.stderr)

    def kill_all(self):
        if self.proc.poll() is None:
            self.signal_group(signal.SIGKILL)
            self.proc.wait(timeout=10)
        else:
            self.signal_group(signal.SIGKILL)  # the reloader's child may outlive its parent
        for pid in self.bayleaf_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


RELOADING = "changed, reloading"


def touch_until(server, path, predicate, timeout=45.0, message="the change to be picked up"):
    """Give `path` a newer mtime until the autoreloader reacts, then wait for predicate().

    Django's StatReloader records a file's mtime when it first sees it (at its
    once-a-second tick), so a change made right after the module was imported
    can go unnoticed: touch again every 3 s until a restart shows in the log,
    and no more after that (a restart takes a while on a busy machine)."""
    deadline = time.monotonic() + timeout
    restarts = server.stderr.count(RELOADING)
    bump, next_touch = 0, 0.0
    while True:
        now = time.monotonic()
        if next_touch is not None and now >= next_touch:
            bump += 2
            stamp = time.time() + bump
            os.utime(path, (stamp, stamp))
            next_touch = now + 3.0
        value = predicate()
        if value:
            return value
        if next_touch is not None and server.stderr.count(RELOADING) > restarts:
            next_touch = None  # it noticed: now let it restart
        if now > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}\n"
                                 + server.describe())
        time.sleep(0.1)


def assert_no_bayleaf_left(directory, timeout=8.0):
    """Every bayleaf started in `directory` has exited within `timeout` seconds."""
    try:
        wait_until(lambda: not bayleaf_pids(directory), timeout, interval=0.05,
                   message="the bayleaf processes to exit")
    except AssertionError:
        raise AssertionError(f"bayleaf processes left running: {bayleaf_pids(directory)}") from None
