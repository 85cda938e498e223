"""Requests on different connections run concurrently."""

import threading
import time

from harness import RawConn, build_request


def test_parallel_slow_requests_overlap(echo_server):
    n = 20
    results = [None] * n
    socks = [echo_server.socket() for _ in range(n)]
    t0 = time.monotonic()

    def one(i):
        with RawConn(socks[i]) as conn:
            conn.send(build_request("GET", f"/sleep/{i}?s=0.5"))
            results[i] = conn.read_response(timeout=15).json()["scope"]["path"]

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    elapsed = time.monotonic() - t0
    assert results == [f"/sleep/{i}" for i in range(n)]
    # one after the other would take 10 s: generous for a loaded, sanitized run
    assert elapsed < 8.0, f"{n} requests sleeping 0.5 s each took {elapsed:.1f}s: not concurrent"


def test_many_connections_interleaved(echo_server):
    conns = [echo_server.connect() for _ in range(30)]
    try:
        for round_ in range(3):
            for i, c in enumerate(conns):
                c.send(build_request("POST", f"/c/{i}/{round_}", body=b"%d" % i))
            for i, c in enumerate(conns):
                d = c.read_response().json()
                assert d["scope"]["path"] == f"/c/{i}/{round_}"
                assert d["body_len"] == len(b"%d" % i)
    finally:
        for c in conns:
            c.close()
