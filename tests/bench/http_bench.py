#!/usr/bin/python3
"""HTTP benchmark: bayleaf vs uvicorn (and optionally daphne), one process each.

`--servers ...,nginx` adds a floor for the hello workload: one nginx process (no
master) answering the same 13 bytes from its config, no application at all. What
it spends per request is what the loopback TCP stack and an event loop cost, a
bound no server running a Python app can go under; the targets are judged
against it too.

For every workload and server: start the server (logging off), wait until it
answers, check the response, warm up with wrk, then run
`wrk -t1 -c64 -d10s --latency` while sampling the server's CPU time
(utime+stime of all its threads, /proc/PID/stat) before and after.

    /usr/bin/python3 tests/bench/http_bench.py [--duration 10] [--connections 64]
        [--threads 1] [--servers bayleaf,uvicorn] [--markdown] [--strict]

Exit status: 0, or 2 if a server/wrk failed; with --strict, 1 if a target is
missed or could not be evaluated. See tests/bench/README.md.
"""

from __future__ import annotations

import argparse
import atexit
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchlib  # noqa: E402
from benchlib import HOST, BenchError  # noqa: E402

HELLO = b"Hello, world!"


def check_hello(status, headers, body):
    if status != 200:
        return f"status {status}"
    if body != HELLO:
        return f"body {body[:60]!r}"
    if not headers.get("content-type", "").startswith("text/plain"):
        return f"content-type {headers.get('content-type')!r}"
    if headers.get("content-length") != str(len(HELLO)):
        return f"content-length {headers.get('content-length')!r}"
    return None


NGINX_CONF = """daemon off;
master_process off;
worker_processes 1;
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    server_tokens off;
    default_type text/plain;
    client_body_temp_path %(dir)s; proxy_temp_path %(dir)s; fastcgi_temp_path %(dir)s;
    uwsgi_temp_path %(dir)s; scgi_temp_path %(dir)s;
    server { listen %(host)s:%(port)d; location / { return 200 "%(body)s"; } }
}
"""


def nginx_spec() -> benchlib.ServerSpec:
    """nginx serving the hello body itself: the floor (hello workload only)."""
    exe = shutil.which("nginx") or "/usr/sbin/nginx"

    def build(app, host, port):
        d = tempfile.mkdtemp(prefix="bayleaf-bench-nginx-")
        atexit.register(shutil.rmtree, d, True)
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF % {"dir": d, "host": host, "port": port, "body": HELLO.decode()})
        return [exe, "-p", d, "-c", conf]

    missing = None if os.access(exe, os.X_OK) else "nginx not installed"
    return benchlib.ServerSpec("nginx", build, missing)


FLOOR_WORKLOADS = {"hello"}  # where the nginx floor means something


def check_django(status, headers, body):
    if status != 200:
        return f"status {status}"
    if body != HELLO:
        return f"body {body[:60]!r}"
    return None


@dataclass
class Workload:
    name: str
    app: str  # module:attr, imported from benchlib.APPS_DIR
    check: Callable  # (status, headers, body) -> problem or None
    path: str = "/"


WORKLOADS = [
    Workload("hello", "hello:app", check_hello),
    Workload("django", "djbench.asgi:application", check_django),
]


@dataclass
class Target:
    workload: str
    metric: str  # "rps" (bayleaf/uvicorn req/s) or "cpu" (bayleaf/uvicorn CPU per request)
    op: str  # ">=" or "<="
    value: float

    def label(self) -> str:
        what = "req/s" if self.metric == "rps" else "CPU/req"
        return f"{self.workload}: bayleaf {what} {self.op.replace('>=', '≥').replace('<=', '≤')} " \
               f"{self.value:.2f}× uvicorn"


TARGETS = [
    Target("hello", "rps", ">=", 2.0),
    Target("hello", "cpu", "<=", 0.40),
    Target("django", "rps", ">=", 1.0),
]


@dataclass
class Result:
    workload: str
    server: str
    status: str = "ok"  # ok | skipped | failed
    reason: str = ""
    rps: float = 0.0
    requests: int = 0
    p50: Optional[float] = None
    p99: Optional[float] = None
    cpu_s: float = 0.0
    wall_s: float = 0.0
    wrk_cpu_pct: Optional[float] = None
    notes: list = field(default_factory=list)
    clean: bool = True  # no non-2xx / connect / timeout errors

    @property
    def cpu_us_per_req(self) -> Optional[float]:
        return self.cpu_s * 1e6 / self.requests if self.requests else None

    @property
    def cpu_pct(self) -> Optional[float]:
        return 100.0 * self.cpu_s / self.wall_s if self.wall_s else None


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def bench_one(spec: benchlib.ServerSpec, wl: Workload, args) -> Result:
    res = Result(wl.name, spec.name)
    port = benchlib.free_port()
    argv = spec.command(wl.app, HOST, port)
    url = f"http://{HOST}:{port}{wl.path}"
    srv = benchlib.Server(argv=argv, port=port)
    log(f"[{wl.name}/{spec.name}] {shlex.join(argv)}")
    failed = True
    try:
        srv.start(timeout=args.start_timeout)
        status, headers, body = benchlib.wait_for_http(HOST, port, wl.path,
                                                       timeout=args.start_timeout, alive=srv.alive)
        problem = wl.check(status, headers, body)
        if problem:
            raise BenchError(f"bad response to GET {wl.path}: {problem}")
        if args.warmup > 0:
            benchlib.run_wrk(url, args.warmup, args.connections, args.threads, latency=False)
        cpu0, t0 = srv.cpu_seconds(), time.monotonic()
        w = benchlib.run_wrk(url, args.duration, args.connections, args.threads, latency=True)
        cpu1, t1 = srv.cpu_seconds(), time.monotonic()
        if w.requests == 0:
            raise BenchError("wrk completed no requests")
        res.rps, res.requests = w.rps, w.requests
        res.p50, res.p99 = w.latency.get(50.0), w.latency.get(99.0)
        res.cpu_s, res.wall_s = cpu1 - cpu0, t1 - t0
        res.wrk_cpu_pct = 100.0 * w.cpu_s / w.wall_s if w.wall_s else None
        if w.non_2xx:
            res.notes.append(f"{w.non_2xx} non-2xx")
        for kind, n in w.socket_errors.items():
            if n:
                res.notes.append(f"{n} {kind} errors")
        res.clean = not (w.non_2xx or w.socket_errors.get("connect") or w.socket_errors.get("timeout"))
        n = benchlib.thread_count(srv.pid)
        res.notes.append(f"{n} thread{'s' if n != 1 else ''}")
        failed = False
        log(f"[{wl.name}/{spec.name}] {res.rps:.0f} req/s, "
            f"{res.cpu_us_per_req:.1f} µs CPU/req, p50 {benchlib.fmt_latency(res.p50)}, "
            f"p99 {benchlib.fmt_latency(res.p99)}")
    except BenchError as exc:
        res.status, res.reason = "failed", str(exc)
        log(f"[{wl.name}/{spec.name}] FAILED: {exc}")
    finally:
        rc = srv.stop()
        if failed or res.status == "failed":
            tail = srv.log_tail()
            if tail:
                log(f"[{wl.name}/{spec.name}] server output (tail):\n{tail}")
        elif rc not in (0, None):
            res.notes.append(f"exit status {rc} on SIGTERM")
        srv.cleanup_log()
    return res


def ratio(res: dict, wl: str, metric: str, server: str = "bayleaf") -> Optional[float]:
    b, u = res.get((wl, server)), res.get((wl, "uvicorn"))
    if not b or not u or b.status != "ok" or u.status != "ok":
        return None
    if metric == "rps":
        return b.rps / u.rps if u.rps else None
    if b.cpu_us_per_req is None or not u.cpu_us_per_req:
        return None
    return b.cpu_us_per_req / u.cpu_us_per_req


def verdict(t: Target, res: dict) -> tuple:
    r = ratio(res, t.workload, t.metric)
    if r is None:
        missing = [s for s in ("bayleaf", "uvicorn")
                   if not res.get((t.workload, s)) or res[(t.workload, s)].status != "ok"]
        return "N/A", None, f"no result for {', '.join(missing) or '?'}"
    ok = r >= t.value if t.op == ">=" else r <= t.value
    b = res[(t.workload, "bayleaf")]
    if ok and not b.clean:
        return "MISS", r, "bayleaf had errors (" + ", ".join(b.notes) + ")"
    floor = ratio(res, t.workload, t.metric, "nginx")
    why = ""
    if floor is not None:
        beyond = floor < t.value if t.op == ">=" else floor > t.value
        why = (f"nginx with no app: {floor:.2f}×" +
               ("; the target is beyond it" if beyond else ""))
    return ("PASS" if ok else "MISS"), r, why


def environment(args, specs) -> str:
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
                            "import django,uvicorn;print(django.get_version(),uvicorn.__version__)"],
                           capture_output=True, text=True, timeout=30)
        dj, uv = r.stdout.split()
        versions = [f"Django {dj}", f"uvicorn {uv} (uvloop+httptools)"]
    except Exception:
        pass
    return (f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency "
            f"(after {args.warmup}s warm-up), loopback; {os.cpu_count()} CPUs shared with wrk"
            f" ({cpu or platform.machine()}); Python {platform.python_version()}"
            + (f"; {', '.join(versions)}" if versions else ""))


def render(results: list, res: dict, args, env_line: str) -> str:
    headers = ["workload", "server", "req/s", "p50", "p99", "CPU µs/req", "CPU %",
               "req/s vs uvicorn", "CPU/req vs uvicorn", "wrk CPU %", "notes"]
    rows = []
    for r in results:
        if r.status != "ok":
            rows.append([r.workload, r.server, "-", "-", "-", "-", "-", "-", "-", "-",
                         f"{r.status.upper()}: {r.reason}"])
            continue
        rr, cr = "", ""
        if r.server in ("bayleaf", "nginx"):
            x = ratio(res, r.workload, "rps", r.server)
            y = ratio(res, r.workload, "cpu", r.server)
            rr = f"{x:.2f}×" if x is not None else "-"
            cr = f"{y:.2f}×" if y is not None else "-"
        rows.append([r.workload, r.server, f"{r.rps:,.0f}", benchlib.fmt_latency(r.p50),
                     benchlib.fmt_latency(r.p99), f"{r.cpu_us_per_req:.1f}", f"{r.cpu_pct:.0f}%",
                     rr, cr, f"{r.wrk_cpu_pct:.0f}%" if r.wrk_cpu_pct is not None else "-",
                     "; ".join(r.notes)])
    table = benchlib.format_table(headers, rows, markdown=args.markdown,
                                  right=(2, 3, 4, 5, 6, 7, 8, 9))

    vrows = []
    for t in TARGETS:
        v, r, why = verdict(t, res)
        vrows.append([t.label(), f"{r:.2f}×" if r is not None else "-", v, why])
    targets = benchlib.format_table(["target", "measured", "result", "notes"], vrows,
                                    markdown=args.markdown, right=(1,))
    if args.markdown:
        return f"_{env_line}_\n\n{table}\n\nTargets:\n\n{targets}\n"
    return f"{env_line}\n\n{table}\n\nTargets (informational):\n{targets}\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=int, default=10, help="measured wrk run, seconds (10)")
    p.add_argument("--warmup", type=int, default=2, help="warm-up wrk run, seconds (2; 0 = none)")
    p.add_argument("--connections", type=int, default=64, help="wrk -c (64)")
    p.add_argument("--threads", type=int, default=1, help="wrk -t (1)")
    p.add_argument("--servers", default="bayleaf,uvicorn,nginx",
                   help="comma list of bayleaf, uvicorn, daphne, nginx (bayleaf,uvicorn,nginx; "
                        "nginx: the floor, hello only)")
    p.add_argument("--workloads", default=",".join(w.name for w in WORKLOADS),
                   help="comma list of " + ", ".join(w.name for w in WORKLOADS) + " (all)")
    p.add_argument("--bayleaf-bin", default=benchlib.DEFAULT_BAYLEAF_BIN,
                   help="bayleaf binary (%(default)s)")
    p.add_argument("--bayleaf-args", default="",
                   help="extra bayleaf arguments, shell-quoted, inserted before the app")
    p.add_argument("--python", default=benchlib.DEFAULT_PYTHON,
                   help="interpreter for uvicorn/daphne (%(default)s)")
    p.add_argument("--start-timeout", type=float, default=30.0,
                   help="seconds to wait for a server to answer (30)")
    p.add_argument("--markdown", action="store_true", help="print Markdown tables")
    p.add_argument("--strict", action="store_true",
                   help="exit 1 if a target is missed or cannot be evaluated")
    args = p.parse_args(argv)
    if args.duration < 1 or args.connections < 1 or args.threads < 1 or args.warmup < 0:
        p.error("--duration, --connections and --threads must be ≥ 1, --warmup ≥ 0")
    if args.connections < args.threads:
        p.error("wrk needs --connections ≥ --threads")

    specs = benchlib.server_specs(args.bayleaf_bin, args.python, shlex.split(args.bayleaf_args))
    specs["nginx"] = nginx_spec()
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = [s for s in servers if s not in specs]
    if unknown or not servers:
        p.error(f"unknown server(s) {unknown}; choose from {', '.join(specs)}")
    by_name = {w.name: w for w in WORKLOADS}
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    if not workloads or any(w not in by_name for w in workloads):
        p.error(f"unknown workload in {args.workloads!r}; choose from {', '.join(by_name)}")
    if not benchlib.find_wrk():
        log("wrk not found in PATH")
        return 2

    benchlib.install_sigterm_handler()
    env_line = environment(args, specs)
    results, res = [], {}
    for wl_name in workloads:
        wl = by_name[wl_name]
        for name in servers:
            spec = specs[name]
            if name == "nginx" and wl.name not in FLOOR_WORKLOADS:
                continue
            if spec.missing:
                r = Result(wl.name, name, status="skipped", reason=spec.missing)
                log(f"[{wl.name}/{name}] skipped: {spec.missing}")
            else:
                r = bench_one(spec, wl, args)
            results.append(r)
            res[(wl.name, name)] = r

    print(render(results, res, args, env_line), end="")
    if any(r.status == "failed" for r in results):
        return 2
    if args.strict and any(verdict(t, res)[0] != "PASS" for t in TARGETS
                           if t.workload in workloads):
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # servers are stopped by Server.stop()/atexit
        log("interrupted")
        sys.exit(130)
