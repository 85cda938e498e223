"""Shared helpers for the bayleaf benchmarks (http_bench.py, ws_bench.py).

Everything here is protocol-neutral: server definitions and process lifecycle,
port helpers, CPU accounting from /proc, wrk invocation/parsing and tables.
Only the standard library is used; run with /usr/bin/python3.
"""

from __future__ import annotations

import atexit
import http.client
import os
import re
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

HERE = os.path.dirname(os.path.abspath(__file__))
APPS_DIR = os.path.join(HERE, "apps")
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
DEFAULT_BAYLEAF_BIN = os.path.join(REPO_ROOT, "build", "bayleaf")
DEFAULT_PYTHON = "/usr/bin/python3"
HOST = "127.0.0.1"  # benchmarks never listen anywhere else

CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """A server or load generator failed (crashed, never answered, bad output)."""


# --------------------------------------------------------------------------- ports


def free_port(host: str = HOST) -> int:
    """A currently unused TCP port on host (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for_port(host: str, port: int, timeout: float = 20.0,
                  alive: Optional[Callable[[], bool]] = None) -> None:
    """Block until host:port accepts a TCP connection.

    alive() is polled between attempts; if it returns False (the process died)
    BenchError is raised at once instead of waiting for the timeout.
    """
    deadline = time.monotonic() + timeout
    while True:
        if alive is not None and not alive():
            raise BenchError(f"process exited before {host}:{port} accepted")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            pass
        if time.monotonic() >= deadline:
            raise BenchError(f"{host}:{port} did not accept within {timeout:.0f}s")
        time.sleep(0.05)


def http_get(host: str, port: int, path: str = "/", timeout: float = 10.0):
    """One GET request; returns (status, headers dict with lower-case names, body)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": f"{host}:{port}"})
        resp = conn.getresponse()
        body = resp.read()
        headers = {k.lower(): v for k, v in resp.getheaders()}
        return resp.status, headers, body
    finally:
        conn.close()


def wait_for_http(host: str, port: int, path: str = "/", timeout: float = 30.0,
                  alive: Optional[Callable[[], bool]] = None):
    """Retry GET until the server answers at all (any status); returns the first answer.

    Needed because a server may accept connections before the app is loaded
    (bayleaf binds its listeners before starting Python).
    """
    deadline = time.monotonic() + timeout
    last: Optional[Exception] = None
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise BenchError("server exited before answering HTTP")
        try:
            return http_get(host, port, path, timeout=max(1.0, deadline - time.monotonic()))
        except (OSError, http.client.HTTPException) as exc:
            last = exc
            time.sleep(0.1)
    raise BenchError(f"no HTTP answer on {host}:{port}{path} within {timeout:.0f}s ({last})")


# --------------------------------------------------------------------------- /proc


def cpu_seconds(pid: int) -> float:
    """utime+stime of a process (all its threads, live and exited), in seconds."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    # The command name (field 2) may contain spaces/parens: split after the last ')'.
    fields = data[data.rindex(b")") + 2:].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / CLK_TCK


def tree_pids(root: int) -> list:
    """root and every live descendant (root first)."""
    children: dict = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def tree_cpu_seconds(pid: int) -> float:
    """utime + stime of pid and every descendant (a master and its workers)."""
    total = 0.0
    for p in tree_pids(pid):
        try:
            total += cpu_seconds(p)
        except (OSError, ValueError, IndexError):
            continue
    return total


def thread_count(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return 0


def rss_kib(pid: int) -> int:
    """Resident set size of a process (VmRSS, /proc/PID/status), in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise BenchError(f"no VmRSS for pid {pid}")


def raise_nofile(want: Optional[int] = None) -> int:
    """Raise this process's RLIMIT_NOFILE soft limit (to want, or to the hard
    limit); returns the new soft limit. Children started afterwards inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if want is None else want
    if hard != resource.RLIM_INFINITY:
        target = min(target, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


# --------------------------------------------------------------------------- servers


@dataclass
class ServerSpec:
    """How to launch one server implementation for an ASGI app "module:attr"."""

    name: str
    build: Callable[[str, str, int], list]  # (app, host, port) -> argv
    missing: Optional[str] = None  # reason the server cannot run, or None

    def command(self, app: str, host: str, port: int) -> list:
        return self.build(app, host, port)


def server_specs(bayleaf_bin: str = DEFAULT_BAYLEAF_BIN, python: str = DEFAULT_PYTHON,
                 bayleaf_args: Sequence[str] = (), uvicorn_args: Sequence[str] = ()) -> dict:
    """All known servers, keyed by name. Logging is off for every one of them.

    uvicorn_args are inserted before the app (the WebSocket benchmark passes
    `--ws websockets`).
    """
    bayleaf_bin = os.path.abspath(bayleaf_bin)  # servers run in the apps directory

    def bayleaf(app, host, port):
        return [bayleaf_bin, "-b", host, "-p", str(port), "-v", "0", *bayleaf_args, app]

    def uvicorn(app, host, port):
        return [python, "-m", "uvicorn", "--host", host, "--port", str(port),
                "--loop", "uvloop", "--http", "httptools",
                "--log-level", "warning", "--no-access-log", *uvicorn_args, app]

    def daphne(app, host, port):
        return [python, "-m", "daphne", "-b", host, "-p", str(port), "-v", "0", app]

    def python_module_missing(module):
        if not os.access(python, os.X_OK):
            return f"{python} not found"
        r = subprocess.run([python, "-c", f"import {module}"], capture_output=True)
        return None if r.returncode == 0 else f"{python} cannot import {module}"

    bl_missing = None
    if not (os.path.isfile(bayleaf_bin) and os.access(bayleaf_bin, os.X_OK)):
        bl_missing = f"binary not built ({bayleaf_bin})"
    return {
        "bayleaf": ServerSpec("bayleaf", bayleaf, bl_missing),
        "uvicorn": ServerSpec("uvicorn", uvicorn, python_module_missing("uvicorn")),
        "daphne": ServerSpec("daphne", daphne, python_module_missing("daphne")),
    }


_live: list = []


def _kill_leftovers() -> None:
    for srv in list(_live):
        srv.stop()


atexit.register(_kill_leftovers)


def install_sigterm_handler() -> None:
    """Turn SIGTERM into SystemExit so try/finally blocks stop the servers."""
    def handler(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, handler)


@dataclass
class Server:
    """One server process. Use as a context manager: it is always stopped on exit."""

    argv: list
    cwd: str = APPS_DIR
    host: str = HOST
    port: int = 0
    env: dict = field(default_factory=dict)
    proc: Optional[subprocess.Popen] = None
    log_path: Optional[str] = None
    nofile: Optional[int] = None  # RLIMIT_NOFILE soft limit for the server (None: inherited)

    def start(self, timeout: float = 20.0) -> "Server":
        env = dict(os.environ)
        env.update(self.env)
        # Servers import the app from their current directory; make that explicit.
        env["PYTHONPATH"] = os.pathsep.join(p for p in (self.cwd, env.get("PYTHONPATH")) if p)
        env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
        fd, self.log_path = tempfile.mkstemp(prefix="bayleaf-bench-", suffix=".log")
        preexec = None
        if self.nofile is not None:
            nofile = self.nofile

            def preexec():  # runs in the child, before exec
                _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
                soft = nofile if hard == resource.RLIM_INFINITY else min(nofile, hard)
                resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        with os.fdopen(fd, "wb") as log:
            # Own process group: a Ctrl-C on the benchmark reaches us, not the
            # server; our finally/atexit blocks then stop it in an orderly way.
            # Not a new session: that is also a new scheduler autogroup, in which
            # all of a server's threads together would weigh as much as the one
            # thread of the load client (a cap on multi-threaded servers alone).
            self.proc = subprocess.Popen(self.argv, cwd=self.cwd, env=env,
                                         stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, process_group=0,
                                         preexec_fn=preexec)
        _live.append(self)
        try:
            wait_for_port(self.host, self.port, timeout, alive=self.alive)
        except BenchError as exc:
            self.stop()
            raise BenchError(f"{exc} (exit status {self.proc.returncode})") from None
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def cpu_seconds(self) -> float:
        if not self.alive():
            raise BenchError(f"server exited (status {self.proc.returncode})")
        return cpu_seconds(self.pid)

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_path or not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> Optional[int]:
        """SIGTERM, then SIGKILL after timeout. Returns the exit status."""
        if self in _live:
            _live.remove(self)
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            except ProcessLookupError:
                pass
        return self.proc.returncode

    def cleanup_log(self) -> None:
        if self.log_path and os.path.exists(self.log_path):
            os.unlink(self.log_path)

    def __enter__(self) -> "Server":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# --------------------------------------------------------------------------- wrk

_UNITS_S = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_SIZE = {"": 1, "B": 1, "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3, "TB": 1024 ** 4}


def parse_duration(text: str) -> float:
    """wrk time strings ("812.00us", "1.23ms", "2.00s", "1.50m") -> seconds."""
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m|h)", text.strip())
    if not m:
        raise ValueError(f"bad wrk duration {text!r}")
    return float(m.group(1)) * _UNITS_S[m.group(2)]


@dataclass
class WrkResult:
    requests: int
    seconds: float
    rps: float
    latency: dict  # percentile (50, 75, 90, 99) -> seconds
    socket_errors: dict  # connect/read/write/timeout -> count
    non_2xx: int
    raw: str
    cpu_s: float = 0.0  # wrk's own CPU time (utime+stime) during the run
    wall_s: float = 0.0

    @property
    def errors(self) -> int:
        return sum(self.socket_errors.values()) + self.non_2xx


def parse_wrk(text: str) -> WrkResult:
    m = re.search(r"^\s*(\d+) requests in ([0-9.]+\w+),", text, re.M)
    rps = re.search(r"^Requests/sec:\s*([0-9.]+)", text, re.M)
    if not m or not rps:
        raise BenchError("cannot parse wrk output:\n" + text)
    latency = {}
    dist = text.split("Latency Distribution", 1)
    if len(dist) == 2:
        for pm in re.finditer(r"^\s*([0-9.]+)%\s+([0-9.]+\w+)\s*$", dist[1], re.M):
            latency[float(pm.group(1))] = parse_duration(pm.group(2))
    errs = {}
    em = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if em:
        errs = dict(zip(("connect", "read", "write", "timeout"), map(int, em.groups())))
    nm = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", text)
    return WrkResult(requests=int(m.group(1)), seconds=parse_duration(m.group(2)),
                     rps=float(rps.group(1)), latency=latency, socket_errors=errs,
                     non_2xx=int(nm.group(1)) if nm else 0, raw=text)


def run_wrk(url: str, duration: float, connections: int, threads: int = 1,
            latency: bool = True, wrk: str = "wrk", extra: Sequence[str] = ()) -> WrkResult:
    argv = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s"]
    if latency:
        argv.append("--latency")
    argv += [*extra, url]
    # wrk is the only child reaped during this call, so the RUSAGE_CHILDREN delta is its CPU.
    ru0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    except subprocess.TimeoutExpired:
        raise BenchError(f"wrk did not finish: {shlex.join(argv)}")
    ru1, t1 = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    if r.returncode != 0:
        raise BenchError(f"wrk failed ({r.returncode}): {r.stderr.strip() or r.stdout.strip()}")
    res = parse_wrk(r.stdout)
    res.cpu_s = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    res.wall_s = t1 - t0
    return res


def find_wrk() -> Optional[str]:
    return shutil.which("wrk")


# --------------------------------------------------------------------------- output


def fmt_latency(seconds: Optional[float]) -> str:
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f}µs"
    if seconds < 1.0:
        return f"{seconds * 1e3:.2f}ms"
    return f"{seconds:.2f}s"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]],
                 markdown: bool = False, right: Sequence[int] = ()) -> str:
    """Text table (aligned columns) or Markdown table. right: column indexes to right-align."""
    rows = [[str(c) for c in r] for r in rows]
    if markdown:
        out = ["| " + " | ".join(headers) + " |",
               "|" + "|".join(("---:" if i in right else ":---") for i in range(len(headers))) + "|"]
        out += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(out)
    widths = [max(len(str(h)), *(len(r[i]) for r in rows)) if rows else len(str(h))
              for i, h in enumerate(headers)]

    def line(cells):
        return "  ".join((c.rjust(w) if i in right else c.ljust(w))
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    out = [line([str(h) for h in headers]), line(["-" * w for w in widths])]
    out += [line(r) for r in rows]
    return "\n".join(out)
