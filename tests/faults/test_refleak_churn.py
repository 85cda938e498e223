"""Reference leaks under backpressure: clients that make the app's send() wait
(they never read) and then vanish. Every such disconnect goes through the
path that fails a waiting send() with ClientDisconnected; after a warm-up
round, the server's count of Python allocator blocks (sys.getallocatedblocks()
after gc.collect()) must stay flat over the next rounds, for HTTP and
WebSocket. One object leaked per disconnect is ROUND_CLIENTS blocks a round.

Under the ASan build PYTHONMALLOC=malloc makes the count 0: there LeakSanitizer
reports such an object at exit instead (tests/sanitizers/lsan.supp suppresses
only the interpreter's import-time objects)."""

import socket
import struct

import pytest

from conformance_ws import connect
from faults_support import get_json, wait_for


ROUND_CLIENTS = 40  # per round and protocol
ROUNDS = 3  # measured, after one warm-up round
RCVBUF = 4096


@pytest.fixture
def refleak_server(app_server):
    return app_server("refleak_app:app")


def rst(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def http_client(srv):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
    s.connect((srv.host, srv.port))
    s.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
    return s


def ws_client(srv):
    return connect(srv, "/push", rcvbuf=RCVBUF).sock


def one_round(srv, client, done_before):
    """ROUND_CLIENTS clients whose app waits in send(), then all vanish; returns
    the count of apps that finished so far."""
    socks = [client(srv) for _ in range(ROUND_CLIENTS)]
    try:
        wait_for(lambda: get_json(srv, "/stats")["waiting"] == ROUND_CLIENTS, 60,
                 what=f"{ROUND_CLIENTS} apps waiting in send(); {get_json(srv, '/stats')}")
    finally:
        for s in socks:
            rst(s)
    done = done_before + ROUND_CLIENTS
    wait_for(lambda: get_json(srv, "/stats")["finished"] == done, 60,
             what=f"{done} apps to finish; {get_json(srv, '/stats')}")
    stats = get_json(srv, "/stats")
    assert stats["failed"] == done and stats["waiting"] == 0, stats
    return done


def blocks(srv):
    return get_json(srv, "/blocks")["blocks"]


@pytest.mark.parametrize("proto", ["http", "websocket"])
def test_disconnects_while_send_waits_leak_nothing(refleak_server, proto):
    srv = refleak_server
    client = http_client if proto == "http" else ws_client
    done = one_round(srv, client, 0)  # warm-up: caches, free lists, lazily imported modules
    counts = [blocks(srv)]
    for _ in range(ROUNDS):
        done = one_round(srv, client, done)
        counts.append(blocks(srv))
    growth = counts[-1] - counts[0]
    # One object leaked per disconnect is ROUNDS * ROUND_CLIENTS (120) blocks;
    # a flat run moves by a few (free lists, the loop's own bookkeeping).
    assert growth < ROUND_CLIENTS, (
        f"allocated blocks grew by {growth} over {ROUNDS * ROUND_CLIENTS} disconnects "
        f"while send() waited: {counts}")
