#!/usr/bin/python3
"""WebSocket benchmark: bayleaf vs uvicorn vs daphne, one process each.

For every workload and server: start the server (logging off, RLIMIT_NOFILE
raised, fresh port), wait until it answers HTTP, then drive it with wsload (a
small C load generator in this directory, compiled with gcc at start-up):

  echo            plain ASGI echo app, 50 connections, 32-byte messages
  ch-echo-1       Channels AsyncWebsocketConsumer echo, 1 connection, 32 B
  ch-echo-50      the same, 50 connections, 32 B
  ch-echo-1-64k   the same, 1 connection, 64 KiB messages
  ch-echo-50-64k  the same, 50 connections, 64 KiB messages
  fanout          1,000 subscribers in one Channels group; a publisher
                  WebSocket triggers group_send broadcasts
  idle            5,000 idle connections to the plain echo app: server RSS
                  before/after, KiB per connection
  ticker-*        permessage-deflate: a ~2 KiB JSON market ticker (numbers
                  change every message) echoed (50 conns), fanned out (1,000
                  subscribers) and held idle after one echo (2,000 conns),
                  each plain and with the client offering compression (-z)

    /usr/bin/python3 tests/bench/ws_bench.py [--duration 5] [--workloads ...]
        [--servers bayleaf,uvicorn,daphne] [--markdown] [--strict]

Exit status: 0, or 2 if a server or the load generator failed; with --strict,
1 if a target is missed or could not be evaluated. See tests/bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import select
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchlib  # noqa: E402
from benchlib import HOST, BenchError  # noqa: E402

WSLOAD_SRC = os.path.join(benchlib.HERE, "wsload.c")
PLAIN_APP = "ws_echo:app"
CHANNELS_APP = "chbench.asgi:application"

# Counters from wsload that mean something went wrong on the server side.
ERROR_KEYS = ("connect_fail", "handshake_fail", "io_errors", "server_closed", "bad", "lost",
              "stalled", "close_timeouts")


@dataclass
class Workload:
    name: str
    kind: str  # echo | fanout | idle
    app: str
    path: str = "/ws"
    conns: int = 50
    size: int = 32
    desc: str = ""
    deflate: bool = False  # wsload offers permessage-deflate
    json: bool = False  # wsload sends a JSON ticker
    echo_first: bool = False  # idle: one echo per connection before measuring


def make_workloads(args) -> list:
    ch = CHANNELS_APP
    return [
        Workload("echo", "echo", PLAIN_APP, "/ws", 50, 32, "plain ASGI echo, 50 conns, 32 B"),
        Workload("ch-echo-1", "echo", ch, "/ws/echo/", 1, 32, "Channels echo, 1 conn, 32 B"),
        Workload("ch-echo-50", "echo", ch, "/ws/echo/", 50, 32, "Channels echo, 50 conns, 32 B"),
        Workload("ch-echo-1-64k", "echo", ch, "/ws/echo/", 1, 65536,
                 "Channels echo, 1 conn, 64 KiB"),
        Workload("ch-echo-50-64k", "echo", ch, "/ws/echo/", 50, 65536,
                 "Channels echo, 50 conns, 64 KiB"),
        Workload("fanout", "fanout", ch, "/ws/sub/", args.fanout_subs, args.fanout_size,
                 f"Channels group_send to {args.fanout_subs} subscribers, "
                 f"{args.fanout_window} broadcast(s) in flight"),
        Workload("idle", "idle", PLAIN_APP, "/ws", args.idle_conns, 32,
                 f"{args.idle_conns} idle connections, plain echo app"),
    ] + ticker_workloads(args)


def ticker_workloads(args) -> list:
    """The permessage-deflate set: each workload plain and compressed (-z)."""
    out = []
    size = args.ticker_size
    for z in (False, True):
        sfx, how = ("-z", "permessage-deflate offered") if z else ("", "no compression")
        out += [
            Workload("ticker-echo" + sfx, "echo", PLAIN_APP, "/ws", 50, size,
                     f"plain ASGI echo, 50 conns, {size} B JSON ticker, {how}", z, True),
            Workload("ticker-fanout" + sfx, "fanout", CHANNELS_APP, "/ws/sub/", args.fanout_subs,
                     size, f"Channels group_send to {args.fanout_subs} subscribers, {size} B JSON "
                           f"ticker, {how}", z, True),
            Workload("ticker-idle" + sfx, "idle", PLAIN_APP, "/ws", args.ticker_idle_conns, size,
                     f"{args.ticker_idle_conns} connections idle after one {size} B JSON echo "
                     f"each, {how}", z, True, True),
        ]
    return out


@dataclass
class Target:
    workload: str
    # rate (bayleaf/uvicorn msgs/s) | cpu (bayleaf/uvicorn CPU per message) |
    # mem (bayleaf/uvicorn KiB per connection) |
    # mem-delta (bayleaf KiB per connection minus bayleaf's on `base`, in KiB)
    metric: str
    op: str  # ">=" or "<="
    value: float
    text: str
    base: str = ""

    def label(self) -> str:
        op = self.op.replace('>=', '≥').replace('<=', '≤')
        if self.metric == "mem-delta":
            return f"{self.workload}: {self.text} {op} {self.base}'s + {self.value:.1f} KiB"
        return f"{self.workload}: {self.text} {op} {self.value:.2f}× uvicorn"


TARGETS = [
    Target("ch-echo-50", "rate", ">=", 2.5, "bayleaf msgs/s"),
    Target("echo", "rate", ">=", 3.0, "bayleaf msgs/s"),
    Target("fanout", "rate", ">=", 2.0, "bayleaf deliveries/s"),
    Target("idle", "mem", "<=", 0.5, "bayleaf KiB/idle conn"),
    Target("ticker-echo-z", "cpu", "<=", 0.5, "bayleaf CPU µs/msg"),
    Target("ticker-fanout-z", "rate", ">=", 2.0, "bayleaf deliveries/s"),
    Target("ticker-idle-z", "mem", "<=", 0.25, "bayleaf KiB/conn"),
    Target("ticker-idle-z", "mem-delta", "<=", 2.0, "bayleaf KiB/conn", base="ticker-idle"),
]


@dataclass
class Result:
    workload: str
    server: str
    status: str = "ok"  # ok | skipped | failed
    reason: str = ""
    count: int = 0  # messages (echo) or deliveries (fanout) in the window
    seconds: float = 0.0
    rate: float = 0.0
    p50_us: Optional[float] = None
    p99_us: Optional[float] = None
    cpu_s: Optional[float] = None
    client_cpu_s: Optional[float] = None
    kib_per_conn: Optional[float] = None
    ratio: Optional[float] = None  # permessage-deflate: received plain / wire bytes
    notes: list = field(default_factory=list)
    errors: dict = field(default_factory=dict)  # the non-zero ERROR_KEYS
    busy_threads: list = field(default_factory=list)  # (name, CPU seconds), busiest first

    @property
    def cpu_us_per_msg(self) -> Optional[float]:
        return self.cpu_s * 1e6 / self.count if self.count and self.cpu_s is not None else None

    @property
    def cpu_pct(self) -> Optional[float]:
        return 100.0 * self.cpu_s / self.seconds if self.seconds and self.cpu_s is not None else None

    @property
    def client_pct(self) -> Optional[float]:
        if not self.seconds or self.client_cpu_s is None:
            return None
        return 100.0 * self.client_cpu_s / self.seconds

    @property
    def clean(self) -> bool:
        return not self.errors


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- wsload


def build_wsload(cc: str, outdir: str) -> str:
    exe = os.path.join(outdir, "wsload")
    argv = [cc, "-O2", "-Wall", "-o", exe, WSLOAD_SRC, "-lz"]
    r = subprocess.run(argv, capture_output=True, text=True)
    if r.returncode != 0:
        raise BenchError(f"cannot build wsload ({shlex.join(argv)}):\n{r.stderr}")
    return exe


def parse_threads(value) -> list:
    """wsload's threads=name:seconds,... as [(name, seconds)], busiest first."""
    out = []
    for item in str(value or "").split(","):
        name, _, secs = item.rpartition(":")
        try:
            out.append((name, float(secs)))
        except ValueError:
            pass
    return out


def threads_note(n: int, busy: list, seconds: float) -> str:
    """The thread count and, for a server with more than one, the share of a core
    that each busy one took (which of them is the limit)."""
    note = f"{n} thread{'s' if n != 1 else ''}"
    shown = [f"{name} {100 * secs / seconds:.0f}%" for name, secs in busy[:3]
             if seconds and secs / seconds >= 0.05]
    if n > 1 and shown:
        note += " (" + ", ".join(shown) + ")"
    return note


def parse_kv(line: str) -> dict:
    out = {}
    for tok in line.split()[1:]:
        k, _, v = tok.partition("=")
        try:
            out[k] = int(v)
        except ValueError:
            try:
                out[k] = float(v)
            except ValueError:
                out[k] = v
    return out


class Client:
    """A running wsload; always killed on exit (kill())."""

    def __init__(self, argv: list, timeout: float):
        self.argv = argv
        self.deadline = time.monotonic() + timeout
        self.errfile = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.errfile, bufsize=0)
        self.buf = b""

    def diagnostics(self) -> list:
        self.errfile.seek(0)
        text = self.errfile.read().decode("utf-8", "replace")
        return [l for l in text.splitlines() if l.strip()]

    def readline(self, prefix: str) -> str:
        """The next stdout line starting with prefix (within the overall timeout)."""
        fd = self.proc.stdout.fileno()
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                text = line.decode("utf-8", "replace").strip()
                if text.startswith(prefix):
                    return text
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise BenchError(f"wsload timed out waiting for {prefix.strip()!r}")
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                rc = self.proc.wait()
                diags = "; ".join(self.diagnostics()[:3])
                raise BenchError(f"wsload exited (status {rc}) before {prefix.strip()!r}"
                                 + (f": {diags}" if diags else ""))
            self.buf += chunk

    def tell(self, text: str = "go") -> None:
        self.proc.stdin.write(text.encode() + b"\n")
        self.proc.stdin.flush()

    def finish(self) -> list:
        """Waits for exit; returns wsload's diagnostic lines (stderr)."""
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=max(1.0, self.deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise BenchError("wsload did not exit")
        return self.diagnostics()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self.errfile):
            try:
                f.close()
            except Exception:
                pass


# --------------------------------------------------------------------------- one run


def record_errors(res: Result, kv: dict) -> None:
    for k in ERROR_KEYS:
        n = kv.get(k, 0)
        if isinstance(n, (int, float)) and n:
            res.errors[k] = int(n)
    if res.errors:
        res.notes.append(", ".join(f"{n} {k.replace('_', ' ')}" for k, n in res.errors.items()))
    if kv.get("late"):
        res.notes.append(f"{kv['late']} late deliveries")


def wsload_flags(wl: Workload) -> list:
    return (["--deflate"] if wl.deflate else []) + (["--json"] if wl.json else [])


def record_deflate(wl: Workload, res: Result, kv: dict) -> None:
    """For -z workloads: did the server agree, and how much did it compress?"""
    if not wl.deflate:
        return
    n, conns = int(kv.get("deflated_conns", 0)), int(kv.get("conns", 0))
    wire, plain = kv.get("wire_in", 0), kv.get("plain_in", 0)
    if n == 0:
        res.notes.append("permessage-deflate declined")
        return
    if wire:
        res.ratio = plain / wire
        res.notes.append(f"compressed {res.ratio:.2f}:1 on the wire")
    if n < conns:
        res.notes.append(f"permessage-deflate on {n}/{conns} connections")


def run_echo(wl: Workload, srv: benchlib.Server, args, res: Result, kind: str) -> None:
    argv = [args.wsload, kind, "--port", str(srv.port), "--pid", str(srv.pid),
            "--warmup", str(args.warmup), "--duration", str(args.duration),
            "--size", str(wl.size), "--timeout", str(args.msg_timeout)] + wsload_flags(wl)
    if kind == "echo":
        argv += ["--path", wl.path, "--conns", str(wl.conns)]
        if args.binary:
            argv.append("--binary")
    else:
        argv += ["--subs", str(wl.conns), "--sub-path", "/ws/sub/", "--pub-path", "/ws/pub/",
                 "--window", str(args.fanout_window)]
    cl = Client(argv, timeout=args.warmup + args.duration + 120)
    try:
        kv = parse_kv(cl.readline("result "))
        diags = cl.finish()
    finally:
        cl.kill()
    res.count, res.seconds = int(kv.get("count", 0)), float(kv.get("seconds", 0.0))
    res.rate = float(kv.get("rate", 0.0))
    res.p50_us = kv.get("p50_us") if kv.get("samples") else None
    res.p99_us = kv.get("p99_us") if kv.get("samples") else None
    res.cpu_s = kv.get("server_cpu_s")
    res.client_cpu_s = kv.get("client_cpu_s")
    res.busy_threads = parse_threads(kv.get("threads"))
    record_errors(res, kv)
    record_deflate(wl, res, kv)
    if kv.get("open", 0) < kv.get("conns", 0):
        res.notes.append(f"only {kv.get('open')}/{kv.get('conns')} connections open at the end")
    if kind == "fanout":
        res.notes.append(f"{kv.get('broadcasts', 0)} broadcasts")
    for d in diags[:3]:
        res.notes.append(d.replace("wsload: ", ""))
    if res.count == 0:
        raise BenchError("no message completed in the measured window"
                         + (f" ({'; '.join(diags[:3])})" if diags else ""))


def settle_rss(pid: int, min_wait: float, max_wait: float = 5.0) -> int:
    """VmRSS after min_wait, then until two samples 0.5 s apart agree within 1 %."""
    time.sleep(min_wait)
    prev = benchlib.rss_kib(pid)
    deadline = time.monotonic() + max_wait
    while time.monotonic() < deadline:
        time.sleep(0.5)
        cur = benchlib.rss_kib(pid)
        if abs(cur - prev) <= 0.01 * max(prev, 1):
            return cur
        prev = cur
    return prev


def run_idle(wl: Workload, srv: benchlib.Server, args, res: Result) -> None:
    argv = [args.wsload, "hold", "--port", str(srv.port), "--path", wl.path,
            "--conns", str(wl.conns), "--prewarm", "50", "--timeout", str(args.msg_timeout),
            "--connect-timeout", "90", "--size", str(wl.size)] + wsload_flags(wl)
    if wl.echo_first:
        argv.append("--echo-first")
    cl = Client(argv, timeout=300)
    try:
        cl.readline("ready")
        rss0 = settle_rss(srv.pid, 1.0)
        cpu0 = srv.cpu_seconds()
        cl.tell()
        held = parse_kv(cl.readline("held "))
        cpu1 = srv.cpu_seconds()
        opened = int(held.get("open", 0))
        rss1 = settle_rss(srv.pid, 2.0)
        cl.tell()
        kv = parse_kv(cl.readline("result "))
        diags = cl.finish()
    finally:
        cl.kill()
    if opened == 0:
        raise BenchError("no connection could be opened"
                         + (f" ({'; '.join(diags[:3])})" if diags else ""))
    res.kib_per_conn = (rss1 - rss0) / opened
    res.count = opened
    res.cpu_s = cpu1 - cpu0  # CPU to accept and upgrade the connections
    res.seconds = float(held.get("connect_s", 0.0))
    res.notes.append(f"RSS {rss0 / 1024:.1f} → {rss1 / 1024:.1f} MiB with {opened} open "
                     f"(opened in {res.seconds:.2f} s, {res.cpu_s * 1e6 / opened:.0f} µs CPU each)")
    if opened < wl.conns:
        res.errors["connect_fail"] = wl.conns - opened
        res.notes.append(f"only {opened}/{wl.conns} connections opened")
    echoed = int(kv.get("echoed", 0))
    if echoed < opened:
        res.errors["stalled"] = opened - echoed
        res.notes.append(f"only {echoed}/{opened} held connections echoed afterwards")
    kv = {k: v for k, v in kv.items() if k not in ("connect_fail", "stalled")}
    record_errors(res, kv)
    record_deflate(wl, res, dict(kv, conns=wl.conns))  # counted after the warm-up
    for d in diags[:3]:
        res.notes.append(d.replace("wsload: ", ""))


def bench_one(spec: benchlib.ServerSpec, wl: Workload, args) -> Result:
    res = Result(wl.name, spec.name)
    port = benchlib.free_port()
    argv = spec.command(wl.app, HOST, port)
    env = {"CHBENCH_STOCK_LAYER": "1"} if args.stock_layer else {}
    srv = benchlib.Server(argv=argv, port=port, nofile=args.nofile, env=env)
    log(f"[{wl.name}/{spec.name}] {shlex.join(argv)}")
    try:
        srv.start(timeout=args.start_timeout)
        status, _, body = benchlib.wait_for_http(HOST, port, "/", timeout=args.start_timeout,
                                                 alive=srv.alive)
        if status != 200 or body != b"ok":
            raise BenchError(f"bad answer to GET /: {status} {body[:60]!r}")
        if wl.kind == "idle":
            run_idle(wl, srv, args, res)
        else:
            run_echo(wl, srv, args, res, "fanout" if wl.kind == "fanout" else "echo")
        if not srv.alive():
            raise BenchError(f"server exited during the run (status {srv.proc.returncode})")
        res.notes.append(threads_note(benchlib.thread_count(srv.pid), res.busy_threads,
                                      res.seconds))
        if wl.kind == "idle":
            log(f"[{wl.name}/{spec.name}] {res.kib_per_conn:.1f} KiB per connection")
        else:
            log(f"[{wl.name}/{spec.name}] {res.rate:,.0f} msgs/s, "
                f"{fmt_us(res.cpu_us_per_msg)} µs CPU/msg, p50 {fmt_lat(res.p50_us)}, "
                f"p99 {fmt_lat(res.p99_us)}" + (f" ERRORS {res.errors}" if res.errors else ""))
    except BenchError as exc:
        res.status, res.reason = "failed", str(exc)
        log(f"[{wl.name}/{spec.name}] FAILED: {exc}")
    finally:
        t0 = time.monotonic()
        rc = srv.stop()
        stop_s = time.monotonic() - t0
        tail = srv.log_tail(30)
        if res.status == "failed":
            if tail:
                log(f"[{wl.name}/{spec.name}] server output (tail):\n{tail}")
        else:
            if rc not in (0, None):
                res.notes.append(f"exit status {rc} on SIGTERM")
            if stop_s > 5.0:
                res.notes.append(f"took {stop_s:.1f} s to stop")
            if tail.strip():
                lines = tail.strip().splitlines()
                res.notes.append(f"server logged: {lines[-1][:120]}")
                log(f"[{wl.name}/{spec.name}] server output (tail):\n{tail}")
        srv.cleanup_log()
    return res


# --------------------------------------------------------------------------- report


def fmt_lat(us: Optional[float]) -> str:
    return benchlib.fmt_latency(us / 1e6) if us is not None else "-"


def fmt_us(v: Optional[float]) -> str:
    if v is None:
        return "-"
    return f"{v:.1f}" if v < 100 else f"{v:.0f}"


def ratio(res: dict, wl: str, metric: str, base: str = "") -> Optional[float]:
    if metric == "mem-delta":
        b, b0 = res.get((wl, "bayleaf")), res.get((base, "bayleaf"))
        if not b or not b0 or b.status != "ok" or b0.status != "ok" or b0.kib_per_conn is None:
            return None
        return b.kib_per_conn - b0.kib_per_conn
    b, u = res.get((wl, "bayleaf")), res.get((wl, "uvicorn"))
    if not b or not u or b.status != "ok" or u.status != "ok":
        return None
    if metric == "rate":
        return b.rate / u.rate if u.rate else None
    if metric == "cpu":
        x, y = b.cpu_us_per_msg, u.cpu_us_per_msg
        return x / y if x is not None and y else None
    if metric == "mem":
        x, y = b.kib_per_conn, u.kib_per_conn
        return x / y if x is not None and y else None
    raise ValueError(metric)


def verdict(t: Target, res: dict) -> tuple:
    r = ratio(res, t.workload, t.metric, t.base)
    if r is None:
        need = [(t.workload, "bayleaf"), (t.base, "bayleaf")] if t.metric == "mem-delta" else \
            [(t.workload, "bayleaf"), (t.workload, "uvicorn")]
        missing = ["/".join(k) for k in need if not res.get(k) or res[k].status != "ok"]
        return "N/A", None, f"no result for {', '.join(missing) or '?'}"
    ok = r >= t.value if t.op == ">=" else r <= t.value
    b = res[(t.workload, "bayleaf")]
    if ok and not b.clean:
        return "MISS", r, "bayleaf had errors (" + ", ".join(f"{n} {k}" for k, n in
                                                          b.errors.items()) + ")"
    return ("PASS" if ok else "MISS"), r, "" if ok else machine_ceiling(t, res)


def machine_ceiling(t: Target, res: dict) -> str:
    """For a missed rate target: the ratio bayleaf would reach if its CPU cost
    per message and the load client's stayed as measured and every CPU of this
    machine were busy (server and client share them). A target above it cannot
    be met here by overlapping work better, only by costing less."""
    if t.metric != "rate":
        return ""
    b, u = res.get((t.workload, "bayleaf")), res.get((t.workload, "uvicorn"))
    if not b or not u or not u.rate or not b.count or b.cpu_s is None or b.client_cpu_s is None:
        return ""
    us_per_msg = (b.cpu_s + b.client_cpu_s) * 1e6 / b.count
    ceiling = (os.cpu_count() or 1) * 1e6 / us_per_msg
    return (f"all {os.cpu_count()} CPUs busy at the measured costs (server + client "
            f"{us_per_msg:.1f} µs/msg): {ceiling / u.rate:.2f}×")


def environment(args) -> str:
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = []
    try:
        r = subprocess.run([args.python, "-c",
                            "import django,channels,uvicorn,websockets,daphne;"
                            "print(django.get_version(),channels.__version__,uvicorn.__version__,"
                            "websockets.__version__,daphne.__version__)"],
                           capture_output=True, text=True, timeout=30)
        dj, ch, uv, ws, dp = r.stdout.split()
        versions = [f"Django {dj}", f"Channels {ch}", f"uvicorn {uv} (uvloop, websockets {ws})",
                    f"daphne {dp}"]
    except Exception:
        pass
    try:
        load = f"; load average {os.getloadavg()[0]:.2f} at start"
    except OSError:
        load = ""
    layer = "stock InMemoryChannelLayer" if args.stock_layer else \
        "InMemoryChannelLayer with a rate-limited expiry sweep (apps/chbench/layers.py)"
    frames = "binary" if args.binary else "text"
    return (f"wsload (C, epoll, 1 thread), closed loop, {frames} frames, "
            f"{args.warmup}s warm-up + {args.duration}s "
            f"measured, loopback; {os.cpu_count()} CPUs shared by server and client "
            f"({cpu or platform.machine()}); Python {platform.python_version()}"
            + (f"; {', '.join(versions)}" if versions else "") + f"; {layer}{load}")


def render(results: list, res: dict, workloads: list, args, env_line: str) -> str:
    headers = ["workload", "server", "msgs/s", "p50", "p99", "CPU µs/msg", "CPU %", "KiB/conn",
               "msgs/s vs uvicorn", "CPU/msg vs uvicorn", "KiB/conn vs uvicorn", "client CPU %",
               "notes"]
    rows = []
    for r in results:
        if r.status != "ok":
            rows.append([r.workload, r.server] + ["-"] * 10 + [f"{r.status.upper()}: {r.reason}"])
            continue
        rr = cr = mr = ""
        if r.server == "bayleaf":
            for metric in ("rate", "cpu", "mem"):
                x = ratio(res, r.workload, metric)
                s = f"{x:.2f}×" if x is not None else "-"
                if metric == "rate":
                    rr = s
                elif metric == "cpu":
                    cr = s
                else:
                    mr = s
        if r.kib_per_conn is not None:  # idle: no message rate
            rows.append([r.workload, r.server, "-", "-", "-", "-", "-", f"{r.kib_per_conn:.1f}",
                         "", "", mr if r.server == "bayleaf" else "", "-", "; ".join(r.notes)])
            continue
        rows.append([r.workload, r.server, f"{r.rate:,.0f}", fmt_lat(r.p50_us), fmt_lat(r.p99_us),
                     fmt_us(r.cpu_us_per_msg),
                     f"{r.cpu_pct:.0f}%" if r.cpu_pct is not None else "-", "-",
                     rr, cr, "",
                     f"{r.client_pct:.0f}%" if r.client_pct is not None else "-",
                     "; ".join(r.notes)])
    table = benchlib.format_table(headers, rows, markdown=args.markdown,
                                  right=(2, 3, 4, 5, 6, 7, 8, 9, 10, 11))
    wrows = [[w.name, w.desc] for w in workloads]
    wtable = benchlib.format_table(["workload", "what"], wrows, markdown=args.markdown)
    vrows = []
    for t in TARGETS:
        if t.workload not in {w.name for w in workloads}:
            continue
        v, r, why = verdict(t, res)
        shown = "-" if r is None else f"{r:+.1f} KiB" if t.metric == "mem-delta" else f"{r:.2f}×"
        vrows.append([t.label(), shown, v, why])
    targets = benchlib.format_table(["target", "measured", "result", "notes"], vrows,
                                    markdown=args.markdown, right=(1,)) if vrows else ""
    if args.markdown:
        return (f"_{env_line}_\n\n{wtable}\n\n{table}\n\n"
                + (f"Targets:\n\n{targets}\n" if targets else ""))
    return (f"{env_line}\n\n{wtable}\n\n{table}\n\n"
            + (f"Targets (informational):\n{targets}\n" if targets else ""))


# --------------------------------------------------------------------------- main


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=5.0,
                   help="measured window per echo/fan-out run, seconds (5)")
    p.add_argument("--warmup", type=float, default=1.0,
                   help="warm-up on the same connections before the window, seconds (1)")
    p.add_argument("--servers", default="bayleaf,uvicorn,daphne",
                   help="comma list of bayleaf, uvicorn, daphne (all three); also bayleaf-ctx "
                        "(bayleaf with --ws-compression-context-takeover)")
    p.add_argument("--workloads", default="all",
                   help="comma list of workloads, or 'all', or 'channels' (the ch-echo-* ones)")
    p.add_argument("--fanout-subs", type=int, default=1000, help="fan-out subscribers (1000)")
    p.add_argument("--fanout-window", type=int, default=1,
                   help="fan-out broadcasts in flight (1: the next broadcast is sent once every "
                        "subscriber got the previous one)")
    p.add_argument("--fanout-size", type=int, default=64, help="fan-out message bytes (64)")
    p.add_argument("--idle-conns", type=int, default=5000, help="idle connections (5000)")
    p.add_argument("--ticker-size", type=int, default=2048,
                   help="ticker-* workloads: JSON message bytes (2048)")
    p.add_argument("--ticker-idle-conns", type=int, default=2000,
                   help="ticker-idle*: connections held after one echo each (2000)")
    p.add_argument("--msg-timeout", type=float, default=5.0,
                   help="a message/broadcast unanswered this long counts as stalled/lost (5)")
    p.add_argument("--binary", action="store_true",
                   help="echo workloads send binary frames instead of text")
    p.add_argument("--stock-layer", action="store_true",
                   help="use Channels' unmodified InMemoryChannelLayer (O(N²) per broadcast)")
    p.add_argument("--bayleaf-bin", default=benchlib.DEFAULT_BAYLEAF_BIN,
                   help="bayleaf binary (%(default)s)")
    p.add_argument("--bayleaf-args", default="",
                   help="extra bayleaf arguments, shell-quoted, inserted before the app")
    p.add_argument("--python", default=benchlib.DEFAULT_PYTHON,
                   help="interpreter for uvicorn/daphne (%(default)s)")
    p.add_argument("--cc", default="gcc", help="C compiler for wsload (gcc)")
    p.add_argument("--wsload", default=None, help="use this wsload binary instead of building one")
    p.add_argument("--start-timeout", type=float, default=30.0,
                   help="seconds to wait for a server to answer (30)")
    p.add_argument("--markdown", action="store_true", help="print Markdown tables")
    p.add_argument("--strict", action="store_true",
                   help="exit 1 if a target is missed or cannot be evaluated")
    args = p.parse_args(argv)
    if args.duration <= 0 or args.warmup < 0 or args.fanout_subs < 1 or args.fanout_window < 1 \
            or args.idle_conns < 1 or args.fanout_size < 34:
        p.error("--duration > 0, --warmup ≥ 0, --fanout-subs/--fanout-window/--idle-conns ≥ 1, "
                "--fanout-size ≥ 34")

    all_wl = make_workloads(args)
    by_name = {w.name: w for w in all_wl}
    names = []
    for n in (x.strip() for x in args.workloads.split(",")):
        if not n:
            continue
        if n == "all":
            names += [w.name for w in all_wl]
        elif n == "channels":
            names += [w.name for w in all_wl if w.name.startswith("ch-")]
        elif n == "deflate":
            names += [w.name for w in all_wl if w.name.startswith("ticker-")]
        elif n in by_name:
            names.append(n)
        else:
            p.error(f"unknown workload {n!r}; choose from all, channels, deflate, "
                    f"{', '.join(by_name)}")
    workloads = [by_name[n] for n in dict.fromkeys(names)]
    if not workloads:
        p.error("no workload selected")

    specs = benchlib.server_specs(args.bayleaf_bin, args.python, shlex.split(args.bayleaf_args),
                                  uvicorn_args=("--ws", "websockets"))
    # bayleaf keeping compression context per connection (more memory, better ratio)
    ctx = benchlib.server_specs(args.bayleaf_bin, args.python,
                                shlex.split(args.bayleaf_args) +
                                ["--ws-compression-context-takeover"])["bayleaf"]
    specs["bayleaf-ctx"] = benchlib.ServerSpec("bayleaf-ctx", ctx.build, ctx.missing)
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = [s for s in servers if s not in specs]
    if unknown or not servers:
        p.error(f"unknown server(s) {unknown}; choose from {', '.join(specs)}")

    # Room for the idle connections (both ends live in this machine's limits).
    need = max(max((w.conns for w in workloads if w.kind == "idle"), default=0),
               args.fanout_subs if any(w.kind == "fanout" for w in workloads) else 0) + 200
    soft = benchlib.raise_nofile()
    if soft < need:
        log(f"RLIMIT_NOFILE is {soft} (hard limit), {need} needed: connections will fail")
    args.nofile = soft

    benchlib.install_sigterm_handler()
    tmpdir = tempfile.mkdtemp(prefix="bayleaf-wsbench-")
    try:
        if args.wsload is None:
            if not shutil.which(args.cc):
                log(f"{args.cc} not found: cannot build wsload")
                return 2
            try:
                args.wsload = build_wsload(args.cc, tmpdir)
            except BenchError as exc:
                log(str(exc))
                return 2
        env_line = environment(args)
        if os.getloadavg()[0] > 0.7:
            log(f"warning: load average {os.getloadavg()[0]:.2f}: other processes share the "
                "CPUs, numbers will be noisy")
        results, res = [], {}
        for wl in workloads:
            for name in servers:
                spec = specs[name]
                if spec.missing:
                    r = Result(wl.name, name, status="skipped", reason=spec.missing)
                    log(f"[{wl.name}/{name}] skipped: {spec.missing}")
                else:
                    r = bench_one(spec, wl, args)
                results.append(r)
                res[(wl.name, name)] = r
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)

    print(render(results, res, workloads, args, env_line), end="")
    if any(r.status == "failed" for r in results):
        return 2
    if args.strict and any(verdict(t, res)[0] != "PASS" for t in TARGETS
                           if t.workload in {w.name for w in workloads}):
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # servers are stopped by Server.stop()/atexit
        log("interrupted")
        sys.exit(130)
