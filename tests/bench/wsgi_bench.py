#!/usr/bin/python3
"""WSGI beside ASGI: Bayleaf's WSGI pool against uwsgi, Gunicorn, and the ASGI path.

Side by side in one run, on the same Django view (djbench) and a plain hello:
Bayleaf WSGI, uwsgi (1 process, --http-socket), Gunicorn (1 sync worker),
Bayleaf ASGI and uvicorn. Reports req/s, p99 and CPU µs per request (utime +
stime of the server's whole process tree, from /proc), then the Channels echo
latency (wsload, one connection) on one Bayleaf that serves chbench's
consumers with Django's pages on --wsgi, without and with wrk's view load.

    /usr/bin/python3 tests/bench/wsgi_bench.py [--duration 8] [--markdown]

Targets: Bayleaf WSGI >= 1.2x uwsgi req/s on the Django view and >= 2x on the
hello, lower CPU per request than uwsgi on both; echo p99 under the view load
within 2x of without. Exit status 0; 2 when a server failed; with --strict, 1
when a target is missed.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchlib  # noqa: E402
from benchlib import HOST, BenchError  # noqa: E402
import ws_bench  # noqa: E402  (wsload: build and parse)

WORKLOADS = {  # name -> (WSGI app, ASGI app, path, expected body)
    "django": ("djbench.wsgi:application", "djbench.asgi:application", "/", b"Hello, world!"),
    "hello": ("wsgi_hello:app", "hello:app", "/", b"Hello, world!"),
}
SERVERS = ("bayleaf-wsgi", "uwsgi", "gunicorn", "bayleaf-asgi", "uvicorn")


def command(server, wl, port, args):
    wsgi_app, asgi_app, _, _ = WORKLOADS[wl]
    bl = os.path.abspath(args.bayleaf_bin)
    if server.startswith("bayleaf-wsgi"):  # "bayleaf-wsgi:4": with 4 threads
        threads = server.partition(":")[2] or str(args.wsgi_threads)
        return [bl, "-b", HOST, "-p", str(port), "-v", "0", "--wsgi-threads", threads,
                wsgi_app]
    if server == "bayleaf-asgi":
        return [bl, "-b", HOST, "-p", str(port), "-v", "0", asgi_app]
    if server == "uwsgi":
        return ["uwsgi", "--plugin", "python3", "--http-socket", f"{HOST}:{port}",
                "--module", wsgi_app, "--processes", "1", "--disable-logging",
                "--die-on-term", "--need-app", "--chdir", benchlib.APPS_DIR,
                # it closes after each response: say so, or wrk counts a read error each time
                "--add-header", "Connection: close"]
    if server == "gunicorn":
        return [args.python, "-m", "gunicorn", "-w", "1", "-k", "sync", "-b", f"{HOST}:{port}",
                "--log-level", "warning", wsgi_app]
    if server == "uvicorn":
        return [args.python, "-m", "uvicorn", "--host", HOST, "--port", str(port), "--loop",
                "uvloop", "--http", "httptools", "--log-level", "warning", "--no-access-log",
                asgi_app]
    raise ValueError(server)


def measure(server, wl, args):
    port = benchlib.free_port()
    srv = benchlib.Server(command(server, wl, port, args), port=port)
    _, _, path, body = WORKLOADS[wl]
    with srv:
        benchlib.wait_for_http(HOST, port, path, alive=srv.alive)
        status, _, got = benchlib.http_get(HOST, port, path)
        if status != 200 or got != body:
            raise BenchError(f"{server} {wl}: {status} {got[:80]!r}")
        url = f"http://{HOST}:{port}{path}"
        benchlib.run_wrk(url, args.warmup, args.connections)
        cpu0 = benchlib.tree_cpu_seconds(srv.pid)
        res = benchlib.run_wrk(url, args.duration, args.connections)
        cpu1 = benchlib.tree_cpu_seconds(srv.pid)
    if res.errors or res.non_2xx:
        print(f"  {server} {wl}: {res.errors} socket errors, {res.non_2xx} non-2xx",
              file=sys.stderr)
    return {"rps": res.rps, "p99": res.latency.get(99.0) if res.latency else None,
            "cpu_us": (cpu1 - cpu0) / max(res.requests, 1) * 1e6, "wrk_cpu": res.cpu_s / res.wall_s,
            "errors": res.errors + res.non_2xx}


def echo_latency(args, wsload):
    """p99 of one Channels echo connection, without and with wrk on the WSGI view."""
    port = benchlib.free_port()
    argv = [os.path.abspath(args.bayleaf_bin), "-b", HOST, "-p", str(port), "-v", "0",
            "--wsgi-threads", str(args.wsgi_threads), "--wsgi", "chbench.wsgi:application",
            "chbench.asgi:application"]
    out = {}
    with benchlib.Server(argv, port=port) as srv:
        benchlib.wait_for_http(HOST, port, "/", alive=srv.alive)
        for label in ("idle", "views"):
            load = None
            if label == "views":
                load = subprocess.Popen(["wrk", "-t1", f"-c{args.connections}",
                                         f"-d{int(args.duration + args.warmup + 4)}s",
                                         f"http://{HOST}:{port}/"], stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
                time.sleep(1)
            r = subprocess.run([wsload, "echo", "--port", str(port), "--pid", str(srv.pid),
                                "--warmup", str(args.warmup), "--duration", str(args.duration),
                                "--size", "32", "--path", "/ws/echo/", "--conns", "1"],
                               capture_output=True, text=True, timeout=args.duration + 120)
            line = next((x for x in r.stdout.splitlines() if x.startswith("result ")), "")
            kv = ws_bench.parse_kv(line)
            views = None
            if load is not None:
                text, _ = load.communicate(timeout=args.duration + 120)
                views = benchlib.parse_wrk(text).rps
            out[label] = {"p50": kv.get("p50_us"), "p99": kv.get("p99_us"),
                          "rate": kv.get("rate"), "views": views}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=8)
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--wsgi-threads", type=int, default=1)
    ap.add_argument("--servers", default=",".join(SERVERS),
                    help="any of %s; bayleaf-wsgi:N runs N WSGI threads" % ", ".join(SERVERS))
    ap.add_argument("--workloads", default="django,hello")
    ap.add_argument("--bayleaf-bin", default=benchlib.DEFAULT_BAYLEAF_BIN)
    ap.add_argument("--python", default=benchlib.DEFAULT_PYTHON)
    ap.add_argument("--no-echo", action="store_true", help="skip the echo latency part")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--strict", action="store_true")
    args = ap.parse_args()
    benchlib.install_sigterm_handler()
    results, failed = {}, False
    for wl in args.workloads.split(","):
        for server in args.servers.split(","):
            print(f"{wl}: {server} ...", file=sys.stderr)
            try:
                results[(wl, server)] = measure(server, wl, args)
            except BenchError as exc:
                print(f"  {server} {wl} failed: {exc}", file=sys.stderr)
                failed = True
    rows = []
    for (wl, server), r in results.items():
        base = results.get((wl, "uwsgi"))
        ratio = f"{r['rps'] / base['rps']:.2f}x" if base else "-"
        cpu_ratio = f"{r['cpu_us'] / base['cpu_us']:.2f}x" if base else "-"
        rows.append([wl, server, f"{r['rps']:,.0f}", ratio, benchlib.fmt_latency(r["p99"]),
                     f"{r['cpu_us']:.0f}", cpu_ratio, f"{r['wrk_cpu'] * 100:.0f}%",
                     str(r["errors"])])
    print(benchlib.format_table(["workload", "server", "req/s", "vs uwsgi", "p99", "CPU µs/req",
                                 "CPU vs uwsgi", "wrk CPU", "errors"], rows,
                                markdown=args.markdown))
    targets = []
    for wl, want in (("django", 1.2), ("hello", 2.0)):
        b, u = results.get((wl, "bayleaf-wsgi")), results.get((wl, "uwsgi"))
        if b and u:
            targets.append((f"{wl}: bayleaf WSGI req/s >= {want}x uwsgi",
                            b["rps"] / u["rps"] >= want and not b["errors"],
                            f"{b['rps'] / u['rps']:.2f}x"))
            targets.append((f"{wl}: bayleaf WSGI CPU/req < uwsgi", b["cpu_us"] < u["cpu_us"],
                            f"{b['cpu_us'] / u['cpu_us']:.2f}x"))
    if not args.no_echo:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                wsload = ws_bench.build_wsload("gcc", tmp)
                echo = echo_latency(args, wsload)
            except BenchError as exc:
                print(f"echo latency failed: {exc}", file=sys.stderr)
                failed, echo = True, None
        if echo:
            rows = [[k, f"{v['p50']}", f"{v['p99']}", f"{v['rate']:,.0f}",
                     f"{v['views']:,.0f}" if v["views"] else "-"] for k, v in echo.items()]
            print()
            print(benchlib.format_table(["Channels echo", "p50 µs", "p99 µs", "msgs/s",
                                         "WSGI views/s meanwhile"], rows, markdown=args.markdown))
            ratio = echo["views"]["p99"] / max(echo["idle"]["p99"], 1)
            targets.append(("echo p99 with view load <= 2x without", ratio <= 2.0,
                            f"{ratio:.2f}x"))
    print()
    for name, ok, got in targets:
        print(f"{'PASS' if ok else 'MISS'}  {name}  ({got})")
    if failed:
        return 2
    if args.strict and not all(ok for _, ok, _ in targets):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
