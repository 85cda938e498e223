"""Integration test harness for bayleaf (helpers; fixtures are in conftest.py).

Servers are real processes.  ``start_server`` launches one, waits until it
accepts connections and always kills it at teardown.  Raw sockets
(``RawConn``) are used wherever HTTP framing matters.

Environment:
  BAYLEAF_BIN          path of the binary (default <repo>/build/bayleaf)
  BAYLEAF_TEST_SERVER  bayleaf (default) | uvicorn | daphne: run the same tests
                       against a reference server to check the test logic.
"""

import hashlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
APPS_DIR = HERE / "apps"
PYTHON = "/usr/bin/python3"
BAYLEAF = os.environ.get("BAYLEAF_BIN") or str(REPO / "build" / "bayleaf")
SERVER_KIND = os.environ.get("BAYLEAF_TEST_SERVER", "bayleaf").strip().lower() or "bayleaf"
if SERVER_KIND not in ("bayleaf", "uvicorn", "daphne"):
    raise RuntimeError(f"BAYLEAF_TEST_SERVER={SERVER_KIND!r}: expected bayleaf, uvicorn or daphne")
IS_BAYLEAF = SERVER_KIND == "bayleaf"
IS_UVICORN = SERVER_KIND == "uvicorn"
IS_DAPHNE = SERVER_KIND == "daphne"
# set by .ci/test for the ASan+UBSan build: memory bounds (RSS) are meaningless there
SANITIZED = os.environ.get("BAYLEAF_SANITIZED") == "1"

START_DEADLINE = 10.0
STOP_GRACE = 5.0
IO_TIMEOUT = 10.0
MB = 1024 * 1024


bayleaf_only = pytest.mark.bayleaf_only


def skip_server(*kinds, reason=None):
    return pytest.mark.skip_server(*kinds, reason=reason or f"not supported by {'/'.join(kinds)}")


# --------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------

def assert_rss_growth(growth_kb, limit_kb, what):
    """RSS bound check (skipped, not failed, under sanitizers: ASan's quarantine and
    shadow memory make RSS meaningless)."""
    if SANITIZED:
        return
    assert growth_kb < limit_kb, f"server RSS grew by {growth_kb // 1024} MiB {what} (limit {limit_kb // 1024} MiB)"


def free_port(host="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((host, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def wait_until(predicate, timeout, interval=0.02, message="condition"):
    """Poll predicate() until truthy; return its value or raise AssertionError."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def short_tmpdir():
    """A short directory path (unix socket paths are limited to ~107 bytes)."""
    return tempfile.mkdtemp(prefix="blt-", dir="/tmp")


def qs(**params):
    return "?" + urllib.parse.urlencode(params)


def unjson(obj):
    """Undo apps/common.py:jsonable(): {"__bytes__": latin1} -> bytes."""
    if isinstance(obj, dict):
        if set(obj) == {"__bytes__"}:
            return obj["__bytes__"].encode("latin-1")
        return {k: unjson(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [unjson(v) for v in obj]
    return obj


def read_json_lines(path):
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return []
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line:
            try:
                out.append(json.loads(line))
            except ValueError:
                pass  # partially written line
    return out


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class RssSampler:
    """Samples a process's VmRSS in a background thread."""

    def __init__(self, pid, interval=0.05):
        self.pid = pid
        self.interval = interval
        self.samples = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                self.samples.append(rss_kb(self.pid))
            except (OSError, RuntimeError):
                return
            self._stop.wait(self.interval)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join(5)

    @property
    def peak_kb(self):
        return max(self.samples) if self.samples else 0


def listening_tcp_ports(pid):
    """TCP ports the process has listening sockets on (from /proc)."""
    inodes = set()
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        m = re.match(r"socket:\[(\d+)\]", target)
        if m:
            inodes.add(m.group(1))
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) > 9 and parts[3] == "0A" and parts[9] in inodes:
                ports.add(int(parts[1].rsplit(":", 1)[1], 16))
    return ports


# --------------------------------------------------------------------------
# raw HTTP/1.x client
# --------------------------------------------------------------------------

class IncompleteResponse(EOFError):
    def __init__(self, message, partial=b""):
        super().__init__(message)
        self.partial = partial


class Response:
    def __init__(self):
        self.version = None
        self.status = None
        self.reason = None
        self.headers = []  # [(lower-case name, value)]
        self.body = b""
        self.chunked = False
        self.close_delimited = False
        self.trailers = []
        self.interim = []  # 1xx responses that preceded this one
        self.raw_head = b""

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return default

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k == name]

    def json(self):
        return unjson(json.loads(self.body))

    def __repr__(self):
        return f"<Response {self.version} {self.status} {self.headers!r} body={self.body[:200]!r}>"


class SocketClient:
    """A client that owns self.sock: closed by close() or at the end of a with block."""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class RawConn(SocketClient):
    """A blocking socket with a read buffer and per-call deadlines."""

    def __init__(self, sock, timeout=IO_TIMEOUT):
        self.sock = sock
        self.timeout = timeout
        self.buf = b""
        self.eof = False
        self.reset = False

    # -- writing
    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    # -- reading
    def _fill(self, deadline, size=65536):
        if self.eof:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("read deadline exceeded")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(size)
        except socket.timeout:
            raise TimeoutError(f"no data from server within the deadline (buffered: {self.buf[:200]!r})")
        except ConnectionResetError:
            self.eof = self.reset = True
            return False
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def _deadline(self, timeout):
        return time.monotonic() + (self.timeout if timeout is None else timeout)

    def read_until(self, delim, timeout=None, limit=1 << 20):
        deadline = self._deadline(timeout)
        while delim not in self.buf:
            if len(self.buf) > limit:
                raise AssertionError(f"delimiter {delim!r} not found in {limit} bytes")
            if not self._fill(deadline):
                raise IncompleteResponse(f"connection closed before {delim!r}", self.buf)
        i = self.buf.index(delim) + len(delim)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def read_exact(self, n, timeout=None):
        deadline = self._deadline(timeout)
        while len(self.buf) < n:
            if not self._fill(deadline):
                raise IncompleteResponse(f"connection closed after {len(self.buf)} of {n} bytes", self.buf)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_to_close(self, timeout=None):
        deadline = self._deadline(timeout)
        while self._fill(deadline):
            pass
        out, self.buf = self.buf, b""
        return out

    def read_some(self, max_bytes=65536, timeout=None):
        """Return buffered bytes or one recv() worth; b'' at EOF."""
        if not self.buf:
            self._fill(self._deadline(timeout), max_bytes)
        out, self.buf = self.buf[:max_bytes], self.buf[max_bytes:]
        return out

    def wait_closed(self, timeout=5.0):
        """True if the server closes the connection (FIN or RST) within timeout
        without sending any more bytes; raises if unexpected bytes arrive."""
        deadline = time.monotonic() + timeout
        try:
            while self._fill(deadline):
                pass
        except TimeoutError:
            return False
        if self.buf:
            raise AssertionError(f"unexpected bytes before close: {self.buf[:300]!r}")
        return True

    def is_open_idle(self, wait=0.2):
        """True if nothing arrives and the connection is not closed within `wait`."""
        try:
            self._fill(time.monotonic() + wait)
        except TimeoutError:
            return not self.buf
        return False

    def read_head(self, timeout=None):
        head = self.read_until(b"\r\n\r\n", timeout=timeout)
        resp = Response()
        resp.raw_head = head
        lines = head[:-4].decode("latin-1").split("\r\n")
        m = re.match(r"^(HTTP/\d\.\d) (\d{3})(?: (.*))?$", lines[0])
        if not m:
            raise AssertionError(f"bad status line {lines[0]!r}")
        resp.version, resp.status, resp.reason = m.group(1), int(m.group(2)), m.group(3) or ""
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise AssertionError(f"bad header line {line!r}")
            resp.headers.append((name.strip().lower(), value.strip()))
        return resp

    def read_response(self, method="GET", timeout=None, allow_interim=True, sink=None):
        """Read one final response (1xx responses go to .interim).

        sink: if given, body bytes are passed to sink(data) piece by piece instead of
        being collected in .body (for very large bodies)."""
        deadline = self._deadline(timeout)
        interim = []
        while True:
            resp = self.read_head(timeout=deadline - time.monotonic())
            if 100 <= resp.status < 200 and resp.status != 101:
                if not allow_interim:
                    raise AssertionError(f"unexpected interim response {resp!r}")
                interim.append(resp)
                continue
            break
        resp.interim = interim
        parts = []
        try:
            self._read_body(resp, method, deadline, sink or parts.append)
        except IncompleteResponse as e:
            e.partial = b"".join(parts)
            e.response = resp
            raise
        resp.body = b"".join(parts)
        return resp

    def _read_n(self, n, deadline, sink, what):
        got = 0
        while got < n:
            if not self.buf and not self._fill(deadline, min(max(n - got, 1), 1 << 20)):
                raise IncompleteResponse(f"connection closed after {got} of {n} bytes ({what})")
            piece = self.buf[:n - got]
            self.buf = self.buf[len(piece):]
            got += len(piece)
            sink(piece)

    def _read_body(self, resp, method, deadline, sink):
        te = ",".join(resp.header_all("transfer-encoding")).lower()
        if method == "HEAD" or resp.status in (204, 304):
            return
        received = [0]

        def counting(data):
            received[0] += len(data)
            sink(data)

        try:
            if "chunked" in te:
                resp.chunked = True
                while True:
                    line = self.read_until(b"\r\n", timeout=deadline - time.monotonic())
                    size = int(line[:-2].split(b";", 1)[0].strip(), 16)
                    if size == 0:
                        while True:
                            t = self.read_until(b"\r\n", timeout=deadline - time.monotonic())
                            if t == b"\r\n":
                                break
                            resp.trailers.append(t[:-2].decode("latin-1"))
                        break
                    self._read_n(size, deadline, counting, "chunk data")
                    crlf = self.read_exact(2, timeout=deadline - time.monotonic())
                    if crlf != b"\r\n":
                        raise AssertionError(f"chunk not followed by CRLF: {crlf!r}")
            elif resp.header("content-length") is not None:
                self._read_n(int(resp.header("content-length")), deadline, counting, "content-length body")
            else:
                resp.close_delimited = True
                while self.buf or self._fill(deadline):
                    data, self.buf = self.buf, b""
                    counting(data)
        except IncompleteResponse as e:
            raise IncompleteResponse(f"response body incomplete after {received[0]} bytes: {e}",
                                     e.partial) from None
        resp.body_length = received[0]

    def request(self, method, path, body=b"", headers=(), version="HTTP/1.1", host="localhost", timeout=None):
        self.send(build_request(method, path, body, headers, version, host))
        return self.read_response(method, timeout=timeout)


def build_request(method, path, body=b"", headers=(), version="HTTP/1.1", host="localhost"):
    if isinstance(body, str):
        body = body.encode()
    lines = [f"{method} {path} {version}"]
    names = {h[0].lower() for h in headers}
    if host is not None and "host" not in names:
        lines.append(f"Host: {host}")
    for name, value in headers:
        lines.append(f"{name}: {value}")
    if body and "content-length" not in names and "transfer-encoding" not in names:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def chunked(*pieces):
    out = b""
    for p in pieces:
        if p:
            out += b"%X\r\n%s\r\n" % (len(p), p)
    return out + b"0\r\n\r\n"


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=IO_TIMEOUT):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


# --------------------------------------------------------------------------
# the server process
# --------------------------------------------------------------------------

_UVICORN_ARGS = {"-p": "--port", "--port": "--port", "-u": "--uds", "--unix-socket": "--uds", "--fd": "--fd", "--root-path": "--root-path",
                 "--lifespan": "--lifespan", "-b": "--host", "--bind": "--host"}
_DAPHNE_ARGS = {"-p", "--port", "-u", "--unix-socket", "--fd", "--root-path", "-b", "--bind", "-t", "--http-timeout",
                "-v", "--verbosity", "--access-log", "-s", "--server-name"}
_DAPHNE_FLAGS = {"--no-server-name"}


def _translate_args(args):
    """Map bayleaf/Daphne-style options to the reference server's options."""
    if IS_BAYLEAF:
        return list(args)
    out = []
    it = iter(args)
    for a in it:
        if IS_UVICORN:
            if a in _UVICORN_ARGS:
                out += [_UVICORN_ARGS[a], next(it)]
            else:
                pytest.skip(f"option {a} has no uvicorn equivalent")
        else:
            if a in _DAPHNE_FLAGS:
                out.append(a)
            elif a in _DAPHNE_ARGS:
                out += [a, next(it)]
            elif a == "--lifespan":
                next(it)  # daphne has no lifespan support at all
            else:
                pytest.skip(f"option {a} has no daphne equivalent")
    return out


def server_command(app_spec, args=(), port=None, translate=True):
    """The command line for the server under test; app_spec None: no positional argument.
    translate=False passes args to a reference server unchanged (for CLI error tests)."""
    args = list(args) if (IS_BAYLEAF or not translate) else _translate_args(args)
    tail = [app_spec] if app_spec is not None else []
    if IS_BAYLEAF:
        cmd = [BAYLEAF]
        if port is not None:
            cmd += ["-p", str(port)]
        return cmd + args + tail
    if IS_UVICORN:
        cmd = [PYTHON, "-m", "uvicorn"]
        if port is not None:
            cmd += ["--port", str(port)]
        return cmd + args + tail
    cmd = [PYTHON, "-m", "daphne"]
    if port is not None:
        cmd += ["-p", str(port)]
    return cmd + args + tail


def server_env(extra=None):
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    for k in ("PYTHONHOME", "PYTHONPATH"):
        env.pop(k, None)
    if extra:
        env.update(extra)
    return env


class Server:
    host = "127.0.0.1"

    def __init__(self, cmd, proc, port, unix, workdir):
        self.cmd = cmd
        self.proc = proc
        self.port = port
        self.unix = unix
        self.workdir = Path(workdir)
        self.stdout_path = self.workdir / "stdout.txt"
        self.stderr_path = self.workdir / "stderr.txt"
        self.returncode = None

    # -- process
    @property
    def pid(self):
        return self.proc.pid

    @property
    def stderr(self):
        return self.stderr_path.read_text(errors="replace")

    @property
    def stdout(self):
        return self.stdout_path.read_text(errors="replace")

    def alive(self):
        return self.proc.poll() is None

    def rss_kb(self):
        return rss_kb(self.proc.pid)

    def send_signal(self, sig):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait_exit(self, timeout):
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.returncode

    def stop(self, sig=signal.SIGTERM, grace=STOP_GRACE):
        """SIGTERM (or sig), then SIGKILL after `grace` seconds. Returns (returncode, killed)."""
        if self.proc.poll() is not None:
            self.returncode = self.proc.returncode
            return self.returncode, False
        self.proc.send_signal(sig)
        rc = self.wait_exit(grace)
        if rc is not None:
            return rc, False
        self.proc.kill()
        self.returncode = self.proc.wait(timeout=10)
        return self.returncode, True

    def wait_for_text(self, pattern, timeout=30.0, stream="stderr"):  # a deadline, not a window
        rx = re.compile(pattern)
        path = self.stderr_path if stream == "stderr" else self.stdout_path

        def check():
            return rx.search(path.read_text(errors="replace"))

        try:
            return wait_until(check, timeout, message=f"{pattern!r} in {stream}")
        except AssertionError:
            raise AssertionError(f"{pattern!r} not in server {stream} within {timeout}s:\n"
                                 + path.read_text(errors="replace")[-3000:])

    def describe(self):
        return (f"command: {' '.join(map(str, self.cmd))}\nreturncode: {self.proc.poll()}\n"
                f"--- stderr (tail) ---\n{self.stderr[-3000:]}")

    # -- connections
    def socket(self, timeout=IO_TIMEOUT):
        if self.port is not None:
            s = socket.create_connection((self.host, self.port), timeout=timeout)
        else:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(timeout)
            s.connect(self.unix)
        return s

    def connect(self, timeout=IO_TIMEOUT):
        return RawConn(self.socket(timeout), timeout)

    def http(self, timeout=IO_TIMEOUT):
        if self.port is not None:
            return http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        return UnixHTTPConnection(self.unix, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=IO_TIMEOUT):
        """One request on a fresh connection via http.client -> (status, headers dict (lower), body)."""
        conn = self.http(timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def get_json(self, path, **kw):
        status, headers, body = self.request("GET", path, **kw)
        assert status == 200, (status, body[:500], self.describe())
        return unjson(json.loads(body))

    def assert_serving(self, path="/hello"):
        """The process is alive and a fresh request gets a 200."""
        assert self.alive(), "server process died\n" + self.describe()
        status, _, _ = self.request("GET", path)
        assert status == 200, self.describe()


class ServerManager:
    def __init__(self, tmp_factory):
        self._tmp_factory = tmp_factory
        self.servers = []

    def start(self, app_spec, *args, cwd=APPS_DIR, env=None, unix=None, fd=None, tcp=None,
              wait=True, pass_fds=()):
        """Launch the server under test.

        tcp: add `-p <free port>` (default: unless unix/fd is given).
        unix: path of a unix socket (adds -u PATH); fd: inherited listening fd (adds --fd N).
        wait: wait until the listener accepts connections (fail early if the process exits).
        """
        args = list(args)
        if tcp is None:
            tcp = unix is None and fd is None
        port = free_port() if tcp else None
        if unix is not None:
            args += ["-u", str(unix)]
        if fd is not None:
            args += ["--fd", str(fd)]
            pass_fds = tuple(pass_fds) + (fd,)
        workdir = Path(self._tmp_factory())
        cmd = server_command(app_spec, args, port)
        out = open(workdir / "stdout.txt", "wb")
        err = open(workdir / "stderr.txt", "wb")
        try:
            proc = subprocess.Popen(cmd, cwd=str(cwd), env=server_env(env), stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=err, pass_fds=tuple(pass_fds), start_new_session=True)
        finally:
            out.close()
            err.close()
        server = Server(cmd, proc, port, str(unix) if unix is not None else None, workdir)
        self.servers.append(server)
        if wait:
            self._wait_ready(server, fd_only=(port is None and unix is None))
        return server

    def _wait_ready(self, server, fd_only):
        deadline = time.monotonic() + START_DEADLINE
        if fd_only:
            # the listening socket already exists; make sure the process does not die at startup
            time.sleep(0.3 if IS_BAYLEAF else 1.5)
            if server.proc.poll() is not None:
                pytest.fail("server exited during startup\n" + server.describe())
            return
        while True:
            if server.proc.poll() is not None:
                pytest.fail("server exited during startup\n" + server.describe())
            try:
                s = server.socket(timeout=1)
                s.close()
                return
            except OSError:
                pass
            if time.monotonic() > deadline:
                server.stop(signal.SIGKILL)
                pytest.fail(f"server not accepting connections after {START_DEADLINE}s\n" + server.describe())
            time.sleep(0.02)

    def close_all(self):
        problems = []
        for s in self.servers:
            if s.proc.poll() is not None:
                rc = s.proc.returncode
            else:
                rc, killed = s.stop()
            problems += exit_problems(rc, s.stderr, s.describe)
        self.servers.clear()
        return problems


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "WARNING: ThreadSanitizer",
                   # bridge.c: an exchange freed with app bytes never written nor
                   # released (a send() could have waited on them for good)
                   "accounting error:")


def exit_problems(rc, stderr, describe):
    """What a stopped server's exit says went wrong: death by a signal other than
    the ones tests send, or a sanitizer report in its stderr."""
    problems = []
    if rc is not None and rc < 0 and -rc not in (signal.SIGTERM, signal.SIGKILL, signal.SIGINT):
        problems.append(f"server died from signal {signal.Signals(-rc).name}\n{describe()}")
    report = sanitizer_report(stderr)
    if report:
        problems.append(f"sanitizer report from the server:\n{report}")
    return problems


def sanitizer_report(text):
    """The first sanitizer report in a server's stderr (ASan, LSan, UBSan, TSan), or ''."""
    for mark in SANITIZER_MARKS:
        i = text.find(mark)
        if i >= 0:
            return text[max(0, i - 200):i + 4000]
    return ""




def expected_stream(total, chunk):
    """The body apps/echo.py's /stream route sends for total/chunk."""
    out, i, sent = [], 0, 0
    while sent < total:
        n = min(chunk, total - sent)
        out.append(bytes([ord("a") + i % 26]) * n)
        sent += n
        i += 1
    return b"".join(out)


def sha256(data):
    return hashlib.sha256(data).hexdigest()
