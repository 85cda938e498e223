"""Slow subscribers: the per-connection bound on queued topic bytes closes a
client that stops reading with 1013 (and one log line) while the others go on;
a conflating subscription keeps only the newest pending message per topic."""

import json
import socket

from harness import bayleaf_only, wait_until

from .conftest import APP
from .topics_support import TopicsClient, publish, seq_of

pytestmark = bayleaf_only

QUEUE = 65536


def stalled_client(server, path):
    """A subscriber with a small receive buffer that will stop reading."""
    c = TopicsClient(server, path, rcvbuf=4096)
    c.ctl(op="ext")  # subscribed by now
    return c


def test_a_subscriber_that_stops_reading_is_closed_with_1013(start_server):
    server = start_server(APP, "--topics-queue-bytes", str(QUEUE))
    slow = stalled_client(server, "/ws?topics=s.feed")
    with TopicsClient(server, "/ws?topics=s.feed") as good:
        good.ctl(op="ext")
        # 16 MiB in 1 KiB messages, far more than the kernel's buffers hold,
        # in batches the reading client takes before the next comes.
        batch, n = 48, 0
        while "closing it with 1013" not in server.stderr and n < 16384:
            publish(server, "s.feed", n=batch, size=1024, start=n)
            assert [seq_of(good.next_text()) for _ in range(batch)] == list(range(n, n + batch))
            n += batch
        server.wait_for_text(r"fell over 65536 bytes behind \(--topics-queue-bytes\): closing it with 1013")
        publish(server, "s.feed", n=1, start=n)
        assert seq_of(good.next_text()) == n  # the reader goes on
    # The slow one reads now: what was queued before, then the close.
    seqs = []
    while True:
        f = slow.ws.recv_frame(timeout=10)
        if f.opcode == 0x8:
            assert f.close_code == 1013, f
            break
        if f.opcode == 0x1 and not f.payload.startswith(b"ctl:"):
            seqs.append(seq_of(f.payload.decode()))
    # No gap before the close: a prefix of the stream, then nothing.
    assert seqs == list(range(len(seqs))) and len(seqs) < n
    slow.close()
    assert server.stderr.count("closing it with 1013") == 1
    server.assert_serving("/hello")


def test_conflation_keeps_the_newest_and_never_closes(start_server):
    server = start_server(APP, "--topics-queue-bytes", str(QUEUE))
    slow = stalled_client(server, "/ws?topics=c.a,c.b&conflate=1")
    try:
        publish(server, "c.a", n=16384, size=1024, via="thread")
        publish(server, "c.b", n=100, size=1024, via="thread")
        # Read it all now: each topic's messages in order, ending with its newest.
        seen = {"c.a": [], "c.b": []}
        last_b = None
        slow.ws.send_text(json.dumps({"op": "ext"}))
        msgs = []
        while True:
            op, data = slow.ws.recv_message(timeout=10)
            if data.startswith(b"ctl:"):
                break
            msgs.append(data.decode())
        # Sizes tell the topics apart: both were published with 1 KiB, so use
        # order: c.a's come first, c.b's after its publish began.
        seqs = [seq_of(m) for m in msgs]
        assert seqs, "nothing arrived"
        # The stream is c.a's (increasing, ending at 16383) then c.b's (ending at 99).
        split = next(i for i in range(1, len(seqs)) if seqs[i] <= seqs[i - 1]) if any(
            seqs[i] <= seqs[i - 1] for i in range(1, len(seqs))) else len(seqs)
        a_part, b_part = seqs[:split], seqs[split:]
        seen["c.a"], last_b = a_part, b_part
        assert a_part == sorted(a_part) and a_part[-1] == 16383, a_part[-5:]
        assert len(a_part) < 16384  # some were conflated away
        assert b_part == sorted(b_part) and b_part[-1] == 99
        assert "1013" not in server.stderr
    finally:
        slow.close()


def test_closing_a_stalled_subscriber_frees_its_queue(start_server):
    server = start_server(APP, "--topics-queue-bytes", str(1 << 20))
    slow = stalled_client(server, "/ws?topics=f.feed")
    publish(server, "f.feed", n=300, size=1024, via="thread")
    slow.ws.raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    slow.close()  # RST with frames still queued for it
    with TopicsClient(server, "/ws?topics=f.feed") as c:
        c.ctl(op="ext")
        publish(server, "f.feed", n=1)
        assert c.next_text() == "0:xxxxxx"
    wait_until(lambda: server.alive(), 5)
    server.assert_serving("/hello")
