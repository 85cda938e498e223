#!/usr/bin/python3
"""--workers sweep: bayleaf --workers N against uvicorn --workers N, side by side.

For each workload, each N and each server: start the server with N workers
(logging off), wait until every worker process is up and the tree is idle,
warm up, then measure a window while sampling the CPU time of the server's
whole process tree (master and workers, /proc/PID/stat):

  hello     HTTP "Hello, world!" (wrk -c64)
  django    a Django view through ASGI (wrk -c64)
  ch-echo   a Channels AsyncWebsocketConsumer echo, 50 connections, 32-byte
            messages (wsload --tree)

Reported per row: throughput, CPU µs per request or message, CPU %, the ratio
to uvicorn at the same N and, for each server, its CPU per request at N
against its own figure at N=1 (the scaling cost this sweep exists to show).

    /usr/bin/python3 tests/bench/workers_bench.py [--workers 1,2] [--duration 10]
        [--workloads hello,django,ch-echo] [--servers bayleaf,uvicorn]
        [--bayleaf-args ARGS] [--markdown] [--strict]

Exit status: 0, or 2 if a server or load client failed; with --strict, 1 if
Bayleaf's CPU per request at some N exceeds 1.15x its N=1 figure. On a machine
where the load client shares the server's cores the figures say more about the
machine than about the server: see tests/bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchlib  # noqa: E402
from benchlib import HOST, BenchError  # noqa: E402
import http_bench  # noqa: E402  (hello/django apps and their checks)
import ws_bench  # noqa: E402  (wsload: build, run, parse)

TARGET = 1.15  # CPU per request at N workers against N=1, at most


@dataclass
class Workload:
    name: str
    app: str
    kind: str  # "http" (wrk) or "ws" (wsload echo)
    path: str = "/"


WORKLOADS = [
    Workload("hello", "hello:app", "http"),
    Workload("django", "djbench.asgi:application", "http"),
    Workload("ch-echo", ws_bench.CHANNELS_APP, "ws", "/ws/echo/"),
]
CHECKS = {"hello": http_bench.check_hello, "django": http_bench.check_django}


@dataclass
class Result:
    workload: str
    server: str
    workers: int
    status: str = "ok"  # ok | skipped | failed
    reason: str = ""
    rate: float = 0.0
    count: int = 0
    seconds: float = 0.0
    cpu_s: Optional[float] = None
    notes: list = field(default_factory=list)

    @property
    def cpu_us(self) -> Optional[float]:
        return self.cpu_s * 1e6 / self.count if self.cpu_s is not None and self.count else None

    @property
    def cpu_pct(self) -> Optional[float]:
        return 100 * self.cpu_s / self.seconds if self.cpu_s is not None and self.seconds else None


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def wait_workers(srv: benchlib.Server, n: int, timeout: float) -> None:
    """Until the tree holds at least n+1 processes (n > 1) and spent under 5 ms of
    CPU in 0.3 s: every worker has started and imported its app."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not srv.alive():
            raise BenchError(f"server exited (status {srv.proc.returncode})")
        if n == 1 or len(benchlib.tree_pids(srv.pid)) >= n + 1:
            c0 = benchlib.tree_cpu_seconds(srv.pid)
            time.sleep(0.3)
            if benchlib.tree_cpu_seconds(srv.pid) - c0 < 0.005:
                return
        else:
            time.sleep(0.1)
    raise BenchError(f"{n} workers not up and idle within {timeout:.0f}s")


def server_argv(name: str, wl: Workload, n: int, port: int, args) -> list:
    specs = benchlib.server_specs(args.bayleaf_bin, args.python,
                                  [*shlex.split(args.bayleaf_args), "--workers", str(n)],
                                  ["--workers", str(n)] + (["--ws", "websockets"]
                                                           if wl.kind == "ws" else []))
    spec = specs[name]
    if spec.missing:
        raise BenchError(spec.missing)
    return spec.command(wl.app, HOST, port)


def measure_http(wl: Workload, srv: benchlib.Server, args, res: Result) -> None:
    url = f"http://{HOST}:{srv.port}{wl.path}"
    status, headers, body = benchlib.wait_for_http(HOST, srv.port, wl.path,
                                                   timeout=args.start_timeout, alive=srv.alive)
    problem = CHECKS[wl.name](status, headers, body)
    if problem:
        raise BenchError(f"bad response to GET {wl.path}: {problem}")
    if args.warmup > 0:
        benchlib.run_wrk(url, args.warmup, args.connections, latency=False)
    cpu0 = benchlib.tree_cpu_seconds(srv.pid)
    w = benchlib.run_wrk(url, args.duration, args.connections, latency=False)
    res.cpu_s = benchlib.tree_cpu_seconds(srv.pid) - cpu0
    res.rate, res.count, res.seconds = w.rps, w.requests, w.seconds
    if w.errors:
        res.notes.append(f"{w.errors} errors")


def measure_ws(wl: Workload, srv: benchlib.Server, args, res: Result) -> None:
    status, _, body = benchlib.wait_for_http(HOST, srv.port, "/", timeout=args.start_timeout,
                                             alive=srv.alive)
    if status != 200 or body != b"ok":
        raise BenchError(f"bad answer to GET /: {status} {body[:60]!r}")
    argv = [args.wsload, "echo", "--port", str(srv.port), "--pid", str(srv.pid), "--tree",
            "--warmup", str(args.warmup), "--duration", str(args.duration), "--size", "32",
            "--timeout", "10", "--path", wl.path, "--conns", str(args.ws_conns)]
    cl = ws_bench.Client(argv, timeout=args.warmup + args.duration + 120)
    try:
        kv = ws_bench.parse_kv(cl.readline("result "))
        diags = cl.finish()
    finally:
        cl.kill()
    res.count, res.seconds = int(kv.get("count", 0)), float(kv.get("seconds", 0.0))
    res.rate, res.cpu_s = float(kv.get("rate", 0.0)), kv.get("server_cpu_s")
    errors = {k: kv[k] for k in ws_bench.ERROR_KEYS if kv.get(k)}
    if errors:
        res.notes.append(", ".join(f"{v} {k}" for k, v in errors.items()))
    res.notes += [d.replace("wsload: ", "") for d in diags[:2]]
    if res.count == 0:
        raise BenchError("no message completed in the measured window")


def bench_one(name: str, wl: Workload, n: int, args) -> Result:
    res = Result(wl.name, name, n)
    port = benchlib.free_port()
    try:
        argv = server_argv(name, wl, n, port, args)
    except BenchError as exc:
        res.status, res.reason = "skipped", str(exc)
        return res
    srv = benchlib.Server(argv=argv, port=port, nofile=4096)
    tag = f"[{wl.name}/{name}/N={n}]"
    log(f"{tag} {shlex.join(argv)}")
    try:
        srv.start(timeout=args.start_timeout)
        wait_workers(srv, n, args.start_timeout)
        (measure_http if wl.kind == "http" else measure_ws)(wl, srv, args, res)
        if not srv.alive():
            raise BenchError(f"server exited during the run (status {srv.proc.returncode})")
        log(f"{tag} {res.rate:,.0f}/s, {res.cpu_us:.1f} µs CPU each, {res.cpu_pct:.0f}% CPU")
    except BenchError as exc:
        res.status, res.reason = "failed", str(exc)
        log(f"{tag} FAILED: {exc}\n{srv.log_tail()}")
    finally:
        srv.stop()
        srv.cleanup_log()
    return res


def find(results: list, wl: str, server: str, n: int) -> Optional[Result]:
    for r in results:
        if (r.workload, r.server, r.workers) == (wl, server, n) and r.status == "ok":
            return r
    return None


def scaling(results: list, r: Result) -> Optional[float]:
    """r's CPU per request against the same server's at N=1."""
    base = find(results, r.workload, r.server, 1)
    if base is None or r.cpu_us is None or not base.cpu_us:
        return None
    return r.cpu_us / base.cpu_us


def versus(results: list, r: Result) -> Optional[float]:
    u = find(results, r.workload, "uvicorn", r.workers)
    return r.rate / u.rate if u is not None and r.server != "uvicorn" and u.rate else None


def render(results: list, args) -> str:
    headers = ["workload", "N", "server", "rate /s", "CPU µs each", "CPU %",
               "rate vs uvicorn", "CPU each vs N=1", "notes"]
    rows = []
    for r in results:
        if r.status != "ok":
            rows.append([r.workload, str(r.workers), r.server] + ["-"] * 5 +
                        [f"{r.status.upper()}: {r.reason}"])
            continue
        v, s = versus(results, r), scaling(results, r)
        rows.append([r.workload, str(r.workers), r.server, f"{r.rate:,.0f}", f"{r.cpu_us:.1f}",
                     f"{r.cpu_pct:.0f}%", f"{v:.2f}×" if v is not None else "",
                     f"{s:.2f}×" if s is not None else "", "; ".join(r.notes)])
    env = (f"{os.cpu_count()} CPUs shared with the load client; {args.duration}s windows after "
           f"{args.warmup}s warm-up; wrk -c{args.connections}, wsload {args.ws_conns} conns")
    table = benchlib.format_table(headers, rows, markdown=args.markdown, right=(1, 3, 4, 5, 6, 7))
    return f"{'_' + env + '_' if args.markdown else env}\n\n{table}\n"


def misses(results: list) -> list:
    return [r for r in results if r.server == "bayleaf" and r.workers > 1 and r.status == "ok"
            and (scaling(results, r) or 0) > TARGET]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", default="1,2", help="comma list of N (1,2; 1 is always added)")
    p.add_argument("--duration", type=int, default=10, help="measured window, seconds (10)")
    p.add_argument("--warmup", type=int, default=2, help="warm-up, seconds (2)")
    p.add_argument("--connections", type=int, default=64, help="wrk -c (64)")
    p.add_argument("--ws-conns", type=int, default=50, help="wsload connections (50)")
    p.add_argument("--servers", default="bayleaf,uvicorn", help="bayleaf, uvicorn (both)")
    p.add_argument("--workloads", default=",".join(w.name for w in WORKLOADS))
    p.add_argument("--bayleaf-bin", default=benchlib.DEFAULT_BAYLEAF_BIN)
    p.add_argument("--bayleaf-args", default="", help="extra bayleaf arguments, shell-quoted")
    p.add_argument("--python", default=benchlib.DEFAULT_PYTHON)
    p.add_argument("--start-timeout", type=float, default=60.0)
    p.add_argument("--markdown", action="store_true")
    p.add_argument("--strict", action="store_true",
                   help=f"exit 1 if bayleaf's CPU each at some N is over {TARGET}× its N=1")
    args = p.parse_args(argv)
    try:
        ns = sorted({1, *(int(x) for x in args.workers.split(",") if x.strip())})
    except ValueError:
        p.error("--workers takes a comma list of integers")
    if ns[0] < 1:
        p.error("--workers: every N must be at least 1")
    by_name = {w.name: w for w in WORKLOADS}
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    if any(w not in by_name for w in workloads) or not workloads:
        p.error(f"workloads: choose from {', '.join(by_name)}")
    if any(s not in ("bayleaf", "uvicorn") for s in servers) or not servers:
        p.error("servers: bayleaf, uvicorn")
    if not benchlib.find_wrk():
        log("wrk not found in PATH")
        return 2
    benchlib.install_sigterm_handler()
    benchlib.raise_nofile()
    results = []
    with tempfile.TemporaryDirectory(prefix="workers-bench-") as tmp:
        args.wsload = ws_bench.build_wsload("gcc", tmp)
        for wl in workloads:
            for n in ns:
                for name in servers:
                    results.append(bench_one(name, by_name[wl], n, args))
    print(render(results, args), end="")
    if any(r.status == "failed" for r in results):
        return 2
    return 1 if args.strict and misses(results) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted")
        sys.exit(130)
