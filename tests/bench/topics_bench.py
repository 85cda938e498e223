#!/usr/bin/python3
"""Topics benchmark: Bayleaf's native topics against Channels group fan-out.

One server process each (logging off), driven by wsload's fanout mode (C, one
thread): --subs subscriber WebSockets and one publisher WebSocket; the
publisher's consumer publishes each message it gets, every subscriber must
receive it. The consumers are in apps/chbench/consumers.py:

  bayleaf         /ws/tsub/ + /ws/tpub/: bayleaf.topics, native (the I/O thread
                  writes one shared frame to every subscriber)
  bayleaf-groups  /ws/sub/ + /ws/pub/: Channels group_send on Bayleaf
                  (BenchInMemoryChannelLayer), the issue's baseline
  uvicorn, daphne /ws/tsub/ + /ws/tpub/: the same topics consumers, which fall
                  back to Channels groups there

Runs (see tests/bench/README.md, "Topics"):
  peak   one topic, --subs subscribers, 34-byte messages (wsload's smallest:
         sequence number and send time), closed loop: deliveries/s, server CPU
         per delivery
  half   the same at half the peak broadcast rate, open loop (wsload --rate):
         publish -> receipt latency p50/p99
  spread 100 topics x (--subs / 100) subscribers (the publisher publishes each
         message to all 100), Bayleaf native
  ticker a 2 KiB JSON ticker, plain and with permessage-deflate (wsload
         --deflate), Bayleaf native: CPU per delivery with/without compression
  memory Bayleaf native, --subs connections held with 0, 1 and 11 topics each:
         RSS growth per subscription
  redis  across processes: a private redis-server, then Bayleaf --workers 2
         --topics-redis with the topics consumers (every publish goes through
         Redis to both workers), and the same Bayleaf --workers 2 with
         CHANNEL_LAYERS = channels_redis (CHBENCH_REDIS_URL) and the group
         consumers (group_send); server CPU is the whole process tree's
         (wsload --tree), Redis's own CPU is reported beside it

    /usr/bin/python3 tests/bench/topics_bench.py [--subs 10000] [--duration 5]
        [--servers bayleaf,bayleaf-groups,uvicorn,daphne] [--runs peak,half,...,redis]
    (the redis run alone: --servers '' --runs redis)
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchlib  # noqa: E402
from benchlib import HOST, BenchError  # noqa: E402
from ws_bench import Client, build_wsload, parse_kv, parse_threads, settle_rss  # noqa: E402

APP = "chbench.asgi:application"
PATHS = {"bayleaf": ("/ws/tsub/", "/ws/tpub/"), "bayleaf-groups": ("/ws/sub/", "/ws/pub/"),
         "uvicorn": ("/ws/tsub/", "/ws/tpub/"), "daphne": ("/ws/tsub/", "/ws/tpub/")}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def start(spec, args, env=None):
    port = benchlib.free_port()
    argv = spec.command(APP, HOST, port)
    srv = benchlib.Server(argv=argv, port=port, nofile=args.nofile, env=dict(env or {}))
    log(f"  {' '.join(f'{k}={v}' for k, v in (env or {}).items())}{' ' if env else ''}{shlex.join(argv)}")
    srv.start(timeout=60)
    status, _, body = benchlib.wait_for_http(HOST, port, "/", timeout=60, alive=srv.alive)
    if status != 200 or body != b"ok":
        srv.stop()
        raise BenchError(f"bad answer to GET /: {status} {body[:60]!r}")
    return srv


def fanout(args, srv, sub, pub, window, size=34, rate=0.0, extra=()):
    argv = [args.wsload, "fanout", "--port", str(srv.port), "--pid", str(srv.pid),
            "--subs", str(args.subs), "--sub-path", sub, "--pub-path", pub,
            "--window", str(window), "--size", str(size), "--warmup", str(args.warmup),
            "--duration", str(args.duration), "--timeout", str(args.msg_timeout),
            "--connect-timeout", "300"] + (["--rate", f"{rate:.3f}"] if rate else []) + list(extra)
    cl = Client(argv, timeout=args.warmup + args.duration + 600)
    try:
        kv = parse_kv(cl.readline("result "))
        cl.finish()
    finally:
        cl.kill()
    errs = {k: kv[k] for k in ("connect_fail", "handshake_fail", "io_errors", "server_closed", "bad",
                               "lost") if kv.get(k)}
    count = int(kv.get("count", 0))
    out = {"rate": float(kv.get("rate", 0)), "count": count,
           "broadcasts_s": float(kv.get("broadcasts", 0)) / max(args.duration + args.warmup, 1e-9),
           "cpu_us": (kv.get("server_cpu_s", 0) * 1e6 / count) if count else None,
           "p50_ms": kv.get("p50_us", 0) / 1e3, "p99_ms": kv.get("p99_us", 0) / 1e3,
           "client_cpu_s": kv.get("client_cpu_s"), "threads": parse_threads(kv.get("threads")),
           "wire_in": kv.get("wire_in", 0), "plain_in": kv.get("plain_in", 0),
           "deflated": kv.get("deflated_conns", 0), "errors": errs}
    log(f"    {out['rate']:,.0f} deliveries/s, {out['cpu_us'] or 0:.2f} µs CPU/delivery, "
        f"p50 {out['p50_ms']:.1f} ms, p99 {out['p99_ms']:.1f} ms" + (f" ERRORS {errs}" if errs else ""))
    return out


def hold_rss(args, srv, path):
    argv = [args.wsload, "hold", "--port", str(srv.port), "--path", path, "--conns", str(args.subs),
            "--prewarm", "50", "--connect-timeout", "300", "--timeout", str(args.msg_timeout)]
    cl = Client(argv, timeout=900)
    try:
        cl.readline("ready")
        rss0 = settle_rss(srv.pid, 1.0)
        cl.tell()
        held = parse_kv(cl.readline("held "))
        rss1 = settle_rss(srv.pid, 2.0)
        cl.tell()
        cl.readline("result ")
        cl.finish()
    finally:
        cl.kill()
    return rss0, rss1, int(held.get("open", 0))


def run(args):
    specs = benchlib.server_specs(args.bayleaf_bin, args.python)
    specs["bayleaf-groups"] = benchlib.ServerSpec("bayleaf-groups", specs["bayleaf"].build,
                                                  specs["bayleaf"].missing)
    res, notes = {}, []
    runs = set(args.runs.split(","))
    for name in filter(None, args.servers.split(",")):
        spec = specs[name]
        if spec.missing:
            notes.append(f"{name}: skipped ({spec.missing})")
            continue
        sub, pub = PATHS[name]
        native = name == "bayleaf"
        log(f"[{name}]")
        srv = start(spec, args)
        try:
            if runs & {"peak", "half"}:
                log(f"  peak: one topic, {args.subs} subscribers, 34 B")
                peak = fanout(args, srv, sub, pub, window=8 if native else 1)
                res[(name, "peak")] = peak
                if "half" in runs and peak["broadcasts_s"] > 0:
                    r = peak["rate"] / args.subs / 2
                    log(f"  half: {r:.2f} broadcasts/s")
                    res[(name, "half")] = fanout(args, srv, sub, pub, window=64, rate=r)
            if native and "spread" in runs:
                # A fresh process: the last run's 10,000 sockets may still be closing.
                srv.stop()
                srv.cleanup_log()
                srv = start(spec, args)
                log(f"  spread: 100 topics x {args.subs // 100} subscribers")
                res[(name, "spread")] = fanout(args, srv, sub + "?spread=100", pub + "?spread=100",
                                               window=8)
            if native and "ticker" in runs:
                srv.stop()
                srv.cleanup_log()
                srv = start(spec, args)
                for z in (False, True):
                    log(f"  ticker: 2 KiB JSON{' with permessage-deflate' if z else ''}")
                    res[(name, "ticker-z" if z else "ticker")] = fanout(
                        args, srv, sub, pub, window=4, size=2048,
                        extra=["--json"] + (["--deflate"] if z else []))
        finally:
            srv.stop()
            srv.cleanup_log()
        if native and "memory" in runs:
            for label, q in (("0", "?spread=0"), ("1", "?spread=1"), ("11", "?spread=1&extra=10")):
                srv = start(spec, args)
                try:
                    log(f"  memory: {args.subs} connections with {label} topics each")
                    res[(name, "mem" + label)] = hold_rss(args, srv, sub + q)
                finally:
                    srv.stop()
                    srv.cleanup_log()
    if "redis" in runs:
        run_redis(args, res, notes)
    return res, notes


def start_redis(args):
    """A private redis-server on a free loopback port, nothing persisted."""
    if not args.redis_server:
        raise BenchError("redis-server not found (Debian's redis-server)")
    port = benchlib.free_port()
    d = tempfile.mkdtemp(prefix="bayleaf-bench-redis-")
    proc = subprocess.Popen([args.redis_server, "--port", str(port), "--bind", HOST, "--save", "",
                             "--appendonly", "no", "--dir", d], cwd=d, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, process_group=0)
    try:
        benchlib.wait_for_port(HOST, port, 20, alive=lambda: proc.poll() is None)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return proc, f"redis://{HOST}:{port}/0", d


def redis_commands(url):
    """Commands the redis-server has processed so far (INFO stats), or None."""
    cli = shutil.which("redis-cli")
    if cli is None:
        return None
    r = subprocess.run([cli, "-u", url, "INFO", "stats"], capture_output=True, text=True, timeout=30)
    for line in r.stdout.splitlines():
        if line.startswith("total_commands_processed:"):
            return int(line.split(":", 1)[1])
    return None


def wait_workers(srv, n, timeout=60):
    """Until the master has its n workers (each accepts once its startup is over)."""
    deadline = time.monotonic() + timeout
    while len(benchlib.tree_pids(srv.pid)) < n + 1:
        if not srv.alive() or time.monotonic() > deadline:
            raise BenchError(f"{n} workers did not start")
        time.sleep(0.05)


def run_redis(args, res, notes):
    bay = benchlib.server_specs(args.bayleaf_bin, args.python)["bayleaf"]
    if bay.missing:
        notes.append(f"redis: skipped ({bay.missing})")
        return
    proc, url, d = start_redis(args)
    try:
        log(f"[redis] redis-server pid {proc.pid} at {url}")
        for name, extra, env, (sub, pub), window in (
                ("bayleaf-topics-redis", ["--workers", "2", "--topics-redis", url], {},
                 PATHS["bayleaf"], 8),
                ("bayleaf-channels-redis", ["--workers", "2"], {"CHBENCH_REDIS_URL": url},
                 PATHS["bayleaf-groups"], 1)):
            spec = benchlib.server_specs(args.bayleaf_bin, args.python, bayleaf_args=extra)["bayleaf"]
            log(f"[{name}]")
            srv = start(spec, args, env=env)
            try:
                wait_workers(srv, 2)
                log(f"  redis: one topic / group, {args.subs} subscribers over 2 workers, 34 B")
                r0, t0, c0 = benchlib.cpu_seconds(proc.pid), time.monotonic(), redis_commands(url)
                out = fanout(args, srv, sub, pub, window=window, extra=["--tree"])
                r1, t1, c1 = benchlib.cpu_seconds(proc.pid), time.monotonic(), redis_commands(url)
                out["redis_cpu_pct"] = 100 * (r1 - r0) / max(t1 - t0, 1e-9)
                out["redis_cmds"] = (c1 - c0) if c0 is not None and c1 is not None else None
                log(f"    redis-server CPU {out['redis_cpu_pct']:.0f}%, {out['redis_cmds']} commands "
                    f"over the run (warm-up included)")
                res[(name, "redis")] = out
            finally:
                srv.stop()
                srv.cleanup_log()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(d, ignore_errors=True)


def report(res, notes, args):
    lines = [f"topics_bench: {args.subs} subscribers, {args.duration:g} s windows, "
             f"load average {os.getloadavg()[0]:.1f} at the end ({os.cpu_count()} CPUs)", ""]
    lines.append("| server | run | deliveries/s | CPU µs/delivery | p50 | p99 | notes |")
    lines.append("|---|---|---:|---:|---:|---:|---|")
    for (name, run), r in res.items():
        if run.startswith("mem"):
            continue
        note = ", ".join(f"{n} {100 * s / args.duration:.0f}%" for n, s in r["threads"][:2])
        if r["deflated"]:
            note += f"; compressed {r['plain_in'] / max(r['wire_in'], 1):.1f}:1"
        if "redis_cpu_pct" in r:
            note = (f"workers' tree CPU; redis-server {r['redis_cpu_pct']:.0f}% CPU, "
                    f"{r['redis_cmds']} commands (warm-up included)")
        if r["errors"]:
            note += f"; ERRORS {r['errors']}"
        lines.append(f"| {name} | {run} | {r['rate']:,.0f} | {r['cpu_us'] or 0:.2f} | "
                     f"{r['p50_ms']:.1f} ms | {r['p99_ms']:.1f} ms | {note} |")
    lines.append("")
    t = []
    nat, grp = res.get(("bayleaf", "peak")), res.get(("bayleaf-groups", "peak"))
    if nat:
        t.append(f"- one process, one topic: {nat['rate']:,.0f} deliveries/s (target >= 300,000): "
                 f"{'PASS' if nat['rate'] >= 300000 else 'MISS'}")
    if nat and grp and grp["rate"]:
        x = nat["rate"] / grp["rate"]
        t.append(f"- vs Bayleaf's own Channels group fan-out: {x:.1f}x (target >= 10x): "
                 f"{'PASS' if x >= 10 else 'MISS'}")
    for peer in ("uvicorn", "daphne"):
        p = res.get((peer, "peak"))
        if nat and p and p["rate"]:
            t.append(f"- vs {peer}'s group fan-out: {nat['rate'] / p['rate']:.1f}x")
    tr, cr = res.get(("bayleaf-topics-redis", "redis")), res.get(("bayleaf-channels-redis", "redis"))
    if tr and cr and cr["rate"]:
        t.append(f"- --workers 2 through Redis: topics {tr['rate']:,.0f} deliveries/s, channels_redis "
                 f"group_send {cr['rate']:,.0f}: {tr['rate'] / cr['rate']:.1f}x")
    half = res.get(("bayleaf", "half"))
    if half:
        t.append(f"- p99 at half the peak rate: {half['p99_ms']:.1f} ms (target < 50 ms): "
                 f"{'PASS' if half['p99_ms'] < 50 else 'MISS'}")
    tk, tz = res.get(("bayleaf", "ticker")), res.get(("bayleaf", "ticker-z"))
    if tk and tz and tk["cpu_us"] and tz["cpu_us"]:
        x = tz["cpu_us"] / tk["cpu_us"]
        t.append(f"- 2 KiB JSON, CPU per delivery with permessage-deflate: {x:.2f}x without "
                 f"(target <= 1.5x): {'PASS' if x <= 1.5 else 'MISS'}")
    m0, m1, m11 = (res.get(("bayleaf", k)) for k in ("mem0", "mem1", "mem11"))
    if m0 and m1 and m11:
        per_conn = [(r1 - r0) * 1024 / max(n, 1) for r0, r1, n in (m0, m1, m11)]
        per_sub = (per_conn[2] - per_conn[1]) / 10
        first = per_conn[1] - per_conn[0]
        t.append(f"- memory: {per_conn[0]:.0f} B per connection without topics; the first "
                 f"subscription adds {first:.0f} B (with the connection's topic state), each further "
                 f"one {per_sub:.0f} B (target <= 64 B): {'PASS' if per_sub <= 64 else 'MISS'}")
    lines += t + [""] + [f"- {n}" for n in notes]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subs", type=int, default=10000)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--msg-timeout", type=float, default=30.0)
    ap.add_argument("--servers", default="bayleaf,bayleaf-groups,uvicorn,daphne")
    ap.add_argument("--runs", default="peak,half,spread,ticker,memory")
    ap.add_argument("--bayleaf-bin", default=benchlib.DEFAULT_BAYLEAF_BIN)
    ap.add_argument("--python", default=benchlib.DEFAULT_PYTHON)
    ap.add_argument("--cc", default="gcc")
    ap.add_argument("--redis-server", default=shutil.which("redis-server") or "/usr/bin/redis-server")
    args = ap.parse_args(argv)
    args.nofile = benchlib.raise_nofile()
    if args.nofile < args.subs + 100:
        log(f"RLIMIT_NOFILE {args.nofile} is low for {args.subs} subscribers")
    with tempfile.TemporaryDirectory() as d:
        args.wsload = build_wsload(args.cc, d)
        try:
            res, notes = run(args)
        except BenchError as exc:
            log(f"FAILED: {exc}")
            return 2
    print(report(res, notes, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
