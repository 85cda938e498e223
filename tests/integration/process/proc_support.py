"""Helpers of the process tests (listeners, systemd, workers): bayleaf started
with any stdin, inherited descriptors or a /bin/sh wrapper, as its own process
group, and the whole group (workers included) killed at teardown."""

import fcntl
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from harness import (BAYLEAF, IO_TIMEOUT, STOP_GRACE, RawConn, Server, UnixHTTPConnection,
                     exit_problems, server_env, wait_until)

BAYLEAF = os.path.abspath(BAYLEAF)  # the servers run in another directory
HERE = Path(__file__).resolve().parent
APPS = HERE / "apps"
APP = "procapp:app"
DJANGO_APP = "procproj.asgi:application"
START_DEADLINE = 15.0


def listening_socket(family=socket.AF_INET, path=None):
    """A listening socket on a free loopback port (or at path), inheritable."""
    s = socket.socket(family, socket.SOCK_STREAM)
    if family == socket.AF_UNIX:
        s.bind(path)
    else:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
    s.listen(64)
    s.set_inheritable(True)
    return s


def http_get(target, path="/pid", timeout=IO_TIMEOUT, headers=None):
    """GET on a fresh connection: target is a TCP port or a unix socket path -> (status, body)."""
    if isinstance(target, int):
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", target, timeout=timeout)
    else:
        conn = UnixHTTPConnection(str(target), timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def get_pid(target):
    status, body = http_get(target, "/pid")
    assert status == 200, (status, body)
    return int(body)


def get_env(target, name):
    status, body = http_get(target, "/env?name=" + name)
    assert status == 200, (status, body)
    return json.loads(body)


def accepts(target, timeout=1.0):
    try:
        if isinstance(target, int):
            socket.create_connection(("127.0.0.1", target), timeout=timeout).close()
        else:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(timeout)
            try:
                s.connect(str(target))
            finally:
                s.close()
        return True
    except OSError:
        return False


def children(pid):
    """Pids whose parent is pid (from /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(entry))
    return sorted(out)


def group_members(pgid):
    """Live (non-zombie) processes of process group pgid."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            out.append(int(entry))
    return out


def pid_alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def thread_count(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads line")


class Proc(Server):
    """A bayleaf process group; port/unix say where http helpers connect."""

    def workers(self):
        return children(self.pid)

    def wait_workers(self, n, timeout=START_DEADLINE):
        """Once the supervisor has seen its n workers ready: their pids."""
        self.wait_for_text(rf"{n} worker\(s\) ready", timeout=timeout)
        return wait_until(lambda: len(self.workers()) == n and self.workers(), timeout,
                          message=f"{n} workers")

    def log_count(self, text):
        return self.stderr.count(text)


class ProcManager:
    def __init__(self, tmp_factory):
        self._tmp_factory = tmp_factory
        self.procs = []

    def start(self, args, app=APP, env=None, stdin=subprocess.DEVNULL, pass_fds=(), sh=None,
              port=None, unix=None, wait=True, cwd=APPS, fd_map=None):
        """Launch `bayleaf ARGS APP`; sh: a /bin/sh -c script that ends with
        `exec "$0" "$@"` (the command is passed as its arguments); fd_map: {number in
        the child: descriptor here}, e.g. {3: sock.fileno()} for socket activation."""
        workdir = Path(self._tmp_factory())
        preexec = None
        if fd_map:
            pass_fds = tuple(pass_fds) + tuple(fd_map)

            def preexec():
                # via high numbers first, so no source is overwritten before it is moved
                moved = {child: fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for child, fd in fd_map.items()}
                for child, fd in moved.items():
                    os.dup2(fd, child)
                    os.close(fd)
        cmd = [BAYLEAF] + [str(a) for a in args] + ([app] if app else [])
        if sh is not None:
            cmd = ["/bin/sh", "-c", sh] + cmd
        out = open(workdir / "stdout.txt", "wb")
        err = open(workdir / "stderr.txt", "wb")
        try:
            popen = subprocess.Popen(cmd, cwd=str(cwd), env=server_env(env), stdin=stdin, stdout=out,
                                     stderr=err, pass_fds=tuple(pass_fds), start_new_session=True,
                                     preexec_fn=preexec)
        finally:
            out.close()
            err.close()
        proc = Proc(cmd, popen, port, str(unix) if unix is not None else None, workdir)
        self.procs.append(proc)
        if wait:
            target = port if port is not None else unix
            self.wait_serving(proc, target)
        return proc

    def wait_serving(self, proc, target, timeout=START_DEADLINE):
        """Until a request on target gets a 200 (fails at once if the process exits)."""
        def ok():
            if proc.proc.poll() is not None:
                pytest.fail("server exited during startup\n" + proc.describe())
            try:
                return http_get(target, "/pid", timeout=2)[0] == 200
            except OSError:
                return False
        wait_until(ok, timeout, message="the server to answer")

    def close_all(self):
        problems = []
        for p in self.procs:
            if p.proc.poll() is None:
                p.stop(signal.SIGTERM, grace=STOP_GRACE + 5)
            # workers orphaned by a failed test must not outlive it
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            problems += exit_problems(p.proc.returncode, p.stderr, p.describe)
        self.procs.clear()
        return problems


class NotifySocket:
    """A datagram socket standing in for systemd's $NOTIFY_SOCKET; records the
    sender's pid of each message (SO_PASSCRED)."""

    def __init__(self, path=None, abstract=None):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        if abstract is not None:
            self.sock.bind("\0" + abstract)
            self.env = "@" + abstract
        else:
            self.sock.bind(path)
            self.env = path
        self.messages = []  # (sender pid, text)

    def _read(self, timeout):
        self.sock.settimeout(timeout)
        try:
            data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
        except socket.timeout:
            return False
        pid = None
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = int.from_bytes(payload[:4], "little")
        self.messages.append((pid, data.decode()))
        return True

    def wait_for(self, text, timeout=START_DEADLINE):
        """Until a message containing the line `text` arrives; returns (pid, message)."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for pid, msg in self.messages[seen:]:
                if text in msg.split("\n"):
                    self.messages.remove((pid, msg))
                    return pid, msg
            seen = len(self.messages)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {text!r} on NOTIFY_SOCKET within {timeout}s; got {self.messages}")
            self._read(remaining)

    def drain(self, wait=0.2):
        while self._read(wait):
            pass
        return self.messages

    def close(self):
        self.sock.close()


def ws_connect_raw(port, path="/ws/", timeout=IO_TIMEOUT):
    """A WebSocket handshake on a raw socket -> RawConn positioned after the 101."""
    import base64
    key = base64.b64encode(os.urandom(16)).decode()
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    conn = RawConn(s, timeout)
    conn.send(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
              f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
              f"Origin: http://127.0.0.1:{port}\r\n\r\n")
    head = conn.read_head()
    assert head.status == 101, head
    return conn


def ws_send_text(conn, text):
    import struct
    payload = text.encode()
    mask = os.urandom(4)
    assert len(payload) < 126
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    conn.send(struct.pack("!BB", 0x81, 0x80 | len(payload)) + mask + masked)


def ws_read_frame(conn, timeout=IO_TIMEOUT):
    """-> (opcode, payload) of the next server frame (servers do not mask)."""
    import struct
    b0, b1 = conn.read_exact(2, timeout=timeout)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", conn.read_exact(2, timeout=timeout))[0]
    elif n == 127:
        n = struct.unpack("!Q", conn.read_exact(8, timeout=timeout))[0]
    return b0 & 0x0F, conn.read_exact(n, timeout=timeout)


def ws_wait_close(conn, timeout=IO_TIMEOUT):
    """Reads frames until a close frame -> its status code (None without one)."""
    import struct
    deadline = time.monotonic() + timeout
    while True:
        opcode, payload = ws_read_frame(conn, timeout=max(0.1, deadline - time.monotonic()))
        if opcode == 0x8:
            return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None


def ws_send_close(conn, code=1000):
    import struct
    mask = os.urandom(4)
    payload = struct.pack("!H", code)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    conn.send(struct.pack("!BB", 0x88, 0x80 | len(payload)) + mask + masked)
