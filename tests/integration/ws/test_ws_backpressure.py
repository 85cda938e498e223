"""Flow control: a client that does not read, an app that does not keep up, and
many stalled clients. The server's memory (VmRSS) must stay bounded."""

import socket
import threading
import time

import pytest

from harness import MB, SANITIZED, RssSampler, bayleaf_only, wait_until

from .ws_support import (APP, OP_BINARY, accept_for, check_echo, drain_messages, events, frame, make_key,
                         open_ws, outq, tcp_queued_bytes, wait_event)

pytestmark = bayleaf_only  # RSS figures are about bayleaf's own buffering

RSS_BUDGET = 50 * MB


def check_rss(growth, message):
    """RSS bound (meaningless under ASan: its quarantine keeps freed memory)."""
    if not SANITIZED:
        assert growth < RSS_BUDGET, message


def warm_up(server):
    """Exercise the code paths once so that the baseline includes their one-off costs."""
    check_echo(server)
    with open_ws(server, "/push?total=1048576&chunk=65536") as ws:
        drain_messages(ws, 1 << 20, timeout=10)
    # memory not yet returned only raises the baseline: a slow machine makes the
    # RSS bounds below easier, never a spurious failure
    time.sleep(0.2)


def test_push_to_client_that_does_not_read(start_server, tmp_path):
    total, chunk = 200 * MB, 64 * 1024
    server = start_server(APP)
    warm_up(server)
    out = tmp_path / "app.jsonl"
    base = server.rss_kb() * 1024
    ws = open_ws(server, "/push" + outq(out, total=total, chunk=chunk))
    try:
        with RssSampler(server.pid) as idle:
            # the client reads nothing: a fixed window for negative checks (a slow
            # machine pushes less, which only makes them pass more easily)
            time.sleep(5.0)
        growth = idle.peak_kb * 1024 - base
        check_rss(growth, f"RSS grew by {growth / MB:.1f} MB while the client did not read")
        # the app is held back, not finished
        assert not [e for e in events(out) if e["event"] == "pushed"], \
            "the app pushed 200 MB into a client that reads nothing"
        # now read it all: everything arrives, in order and whole
        with RssSampler(server.pid) as draining:
            got, frames, sizes = drain_messages(ws, total, timeout=60)
        assert got == total and frames == total // chunk and sizes == {chunk}, (got, frames, sizes)
        growth = draining.peak_kb * 1024 - base
        check_rss(growth, f"RSS grew by {growth / MB:.1f} MB while the client drained")
        rec = wait_event(out, "pushed", timeout=10)
        assert rec["bytes"] == total
    finally:
        ws.close()
    check_echo(server)


def test_client_floods_slow_app(start_server, tmp_path):
    total, chunk = 100 * MB, 64 * 1024
    server = start_server(APP)
    warm_up(server)
    out = tmp_path / "app.jsonl"
    base = server.rss_kb() * 1024
    ws = open_ws(server, "/slow" + outq(out, delay=0.02))
    data = frame(OP_BINARY, b"F" * chunk, key=b"\0\0\0\0")
    sent = [0]
    stop = threading.Event()
    sock = ws.raw.sock

    def flood():
        sock.settimeout(0.2)
        view = memoryview(data)
        pos = 0
        while not stop.is_set() and sent[0] < total:
            try:
                n = sock.send(view[pos:])
            except socket.timeout:
                continue
            except OSError:
                return
            sent[0] += n
            pos = (pos + n) % len(data)

    t = threading.Thread(target=flood, daemon=True)
    try:
        with RssSampler(server.pid) as sampler:
            t.start()
            # a fixed window for negative checks: a slow machine floods less
            time.sleep(5.0)
            stalled_at = sent[0]
            time.sleep(0.5)
        growth = sampler.peak_kb * 1024 - base
        check_rss(growth, f"RSS grew by {growth / MB:.1f} MB while the client flooded")
        assert stalled_at < total, "the server read 100 MB for an app that consumes ~3 MB/s"
    finally:
        stop.set()
        t.join(5)
        ws.close()
    rec = wait_event(out, "slow-done", timeout=10)
    # the app consumed at most what was sent; (at 20 ms a message it got ~250 in 5 s)
    assert 0 < rec["bytes"] <= sent[0], (rec, sent[0])
    check_echo(server)


def stalled_fanout(server, n_clients, per_client, chunk):
    """n_clients connect to /fanout and never read; the app pushes per_client bytes
    to each. Returns a dict: growth (peak RSS growth, bytes), stats (the app's
    counters once every push stalled), user_buffered (bytes the app handed over
    that are neither in the kernel nor read: the server's own buffers), latency
    (of a fresh HTTP request meanwhile).
    The client sockets have a small receive buffer, but the server's kernel send
    buffer still takes ~1 MB per connection: per_client must be well above that for
    the server's own buffering to matter."""
    warm_up(server)
    base = server.rss_kb() * 1024
    socks = []
    path = f"/fanout?total={per_client}&chunk={chunk}"
    try:
        with RssSampler(server.pid, interval=0.1) as sampler:
            keys = []
            for _ in range(n_clients):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.settimeout(10)
                s.connect((server.host, server.port))
                key = make_key()
                s.sendall((f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
                socks.append(s)
                keys.append(key)
            # every handshake got its 101 (read just the head; frames stay unread behind it)
            head_bytes = 0
            for s, key in zip(socks, keys):
                head = b""
                while b"\r\n\r\n" not in head:
                    b = s.recv(1)
                    assert b, "connection closed during the handshake"
                    head += b
                assert head.startswith(b"HTTP/1.1 101 "), head
                assert accept_for(key).encode() in head
                head_bytes += len(head)
            wait_until(lambda: server.get_json("/stats")["accepted"] >= n_clients, 10,
                       message="all clients accepted")
            # let the app push until every connection is stalled
            wait_until(lambda: _pushed_settled(server), 15, interval=0.3, message="the pushes to stall")
            t0 = time.monotonic()
            status, _, body = server.get("/hello", timeout=30)
            latency = time.monotonic() - t0
            assert status == 200 and body == b"hello"
            stats = server.get_json("/stats")
            # frame headers: 4 bytes per message of 126..65535 bytes
            on_wire = stats["pushed"] * (chunk + 4) // chunk
            user_buffered = on_wire - tcp_queued_bytes(server.port)
        growth = sampler.peak_kb * 1024 - base
    finally:
        for s in socks:
            s.close()
    # every blocked send ends once the clients are gone
    wait_until(lambda: server.get_json("/stats")["active"] == 0, 15,
               message="every fanout task ended after the clients left")
    check_echo(server)
    return {"growth": growth, "stats": stats, "user_buffered": user_buffered, "latency": latency,
            "n": n_clients, "per_client": per_client}


def _pushed_settled(server, _last=[None]):
    pushed = server.get_json("/stats")["pushed"]
    settled = pushed == _last[0]
    _last[0] = pushed
    return settled


@pytest.fixture(scope="module")
def stalled_1000(module_server_factory):
    """1,000 clients that never read while the app wants to push 6 MiB to each (run
    once). The kernel takes 1-4 MB per connection (its send buffer can grow to
    tcp_wmem's 4 MiB), so 6 MiB is sure to stall every connection."""
    server = module_server_factory(APP)
    r = stalled_fanout(server, 1000, 6 * MB, 16 * 1024)
    print(f"\n{r['n']} stalled clients: RSS +{r['growth'] / MB:.0f} MB, server buffers "
          f"{r['user_buffered'] / MB:.0f} MB, app pushed {r['stats']['pushed'] / MB:.0f} MB "
          f"of {r['n'] * r['per_client'] / MB:.0f} MB, a fresh HTTP request took {r['latency'] * 1000:.0f} ms")
    return r


def test_many_stalled_clients(stalled_1000):
    """The app is held back, the server's memory stays bounded per connection, and
    it keeps serving."""
    r = stalled_1000
    n, stats = r["n"], r["stats"]
    assert stats["finished"] == 0, f"the app pushed everything into clients that read nothing: {stats}"
    assert stats["errors"] == 0, stats
    # the server's own buffers: about the write high-water mark per connection
    assert r["user_buffered"] < n * 512 * 1024, r
    # bounded per connection (independent of how much the app wants to send)
    if not SANITIZED:
        assert r["growth"] < n * 768 * 1024, f"RSS grew by {r['growth'] / MB:.0f} MB for {n} stalled clients ({r})"
    # served while every push stays stalled (which never ends on its own); the
    # bound is generous for a loaded, sanitized run
    assert r["latency"] < 10.0, r


def test_empty_message_flood_to_slow_app(start_server, tmp_path):
    """Empty messages cost the server an event each: they must count against the
    backlog too (6 bytes on the wire, ~100 bytes of memory each).
    (--graceful-timeout 1: the app never catches up, and while the server does not
    read it cannot see the client leave; shutdown then waits for the graceful timeout.)"""
    server = start_server(APP, "--graceful-timeout", "1")
    warm_up(server)
    base = server.rss_kb() * 1024
    out = tmp_path / "app.jsonl"
    with open_ws(server, "/slow" + outq(out, delay=0.5)) as ws:
        frames = frame(OP_BINARY, b"", key=b"\0\0\0\0") * 10000
        sock = ws.raw.sock
        sock.settimeout(0.2)
        sent = 0
        t0 = time.monotonic()
        # a fixed window for negative checks: a slow machine sends less
        with RssSampler(server.pid) as sampler:
            while time.monotonic() - t0 < 2.0 and sent < 50 * MB:
                try:
                    sent += sock.send(frames)
                except socket.timeout:
                    pass
            time.sleep(0.3)
        growth = sampler.peak_kb * 1024 - base
    assert sent < 50 * MB, "the server read 8 million empty messages for an app that takes 2 a second"
    check_rss(growth, f"RSS grew by {growth / MB:.0f} MB ({sent // 6} empty frames sent)")
    check_echo(server)


def test_ping_flood_without_reading(start_server):
    server = start_server(APP)
    warm_up(server)
    base = server.rss_kb() * 1024
    limit = 200 * MB
    with open_ws(server, "/echo", rcvbuf=4096) as ws:
        pings = frame(0x9, b"p" * 125, key=b"\0\0\0\0") * 512
        sock = ws.raw.sock
        sock.settimeout(0.2)
        sent = 0
        t0 = time.monotonic()
        with RssSampler(server.pid) as sampler:
            while sent < limit and time.monotonic() - t0 < 3.0:
                try:
                    sent += sock.send(pings)
                except socket.timeout:
                    pass
        growth = sampler.peak_kb * 1024 - base
    check_rss(growth, f"RSS grew by {growth / MB:.0f} MB after {sent / MB:.0f} MB of unanswered-for pings")
    check_echo(server)
