"""Memory queued toward the app is bounded in bytes of server memory, per
connection and per process, and a connection the server stopped reading
still notices its client leaving.

- Read-ahead: an app that does not read lets at most 256 KiB of events pile
  up per scope, counted as the heap they take (an empty WebSocket message is
  a whole event), not as payload bytes.
- A paused connection: the client's FIN or RST is seen while its input is
  not read (the app is told, or cancelled after --application-close-timeout,
  and the socket is freed).
- Per process: with the Python loop blocked, the I/O thread stops accepting
  and reading beyond --max-queued-bytes; the kernel's backlog holds the
  rest, and every request is answered once Python is back.
"""

import fcntl
import os
import select
import socket
import struct
import termios
import threading
import zlib
from pathlib import Path

import pytest

from conformance_ws import OP_BINARY, OP_CLOSE, OP_PING, OP_TEXT, connect, frame
from faults_support import get_json, wait_for
from harness import SANITIZED, RssSampler, assert_rss_growth

APP = "queue_app:app"
MB = 1024 * 1024
# Every queued event takes at least this much heap (its header alone is more).
MIN_EVENT_COST = 64
READ_AHEAD = 256 * 1024


@pytest.fixture
def qserver(app_server):
    return lambda *args: app_server(APP, *args)


def flood_until_stalled(sock, data, limit=256 * MB, stall=2.0):
    """Sends `data` (whole frames or chunks) over and over until the server
    stops reading: the socket stays unwritable for `stall` seconds. Returns
    the bytes sent."""
    sock.setblocking(False)
    view = memoryview(data)
    off = sent = 0
    try:
        while sent < limit:
            try:
                n = sock.send(view[off:])
            except BlockingIOError:
                if not select.select([], [sock], [], stall)[1]:
                    return sent
                continue
            sent += n
            off = (off + n) % len(data)
        raise AssertionError(f"the server read {sent} bytes and never stopped")
    finally:
        sock.setblocking(True)


@pytest.mark.parametrize("payload", [b"", b"x"], ids=["empty", "1-byte"])
def test_ws_read_ahead_counts_real_memory(qserver, payload):
    srv = qserver()
    clients = [connect(srv, "/hoard", timeout=30) for _ in range(8)]
    msgs = frame(OP_TEXT, payload) * 20000
    rss0 = srv.rss_kb()
    try:
        for ws in clients:
            sent = flood_until_stalled(ws.sock, msgs)
            # far more than the bound allows to be queued, whatever it costs
            assert sent // len(frame(OP_TEXT, payload)) > 4 * READ_AHEAD // MIN_EVENT_COST
        grown = srv.rss_kb() - rss0
        get_json_text(srv, "/go")
        for ws in clients:
            kind, data = ws.recv_message(timeout=30)
            events, size = map(int, data.split())
            assert 0 < events <= READ_AHEAD // MIN_EVENT_COST, (
                f"{events} messages of {len(payload)} bytes were queued for one connection")
            assert size == events * len(payload)
        assert_rss_growth(grown, 24 * 1024, "for 8 clients flooding empty messages")
    finally:
        for ws in clients:
            ws.sock.close()


def get_json_text(srv, path):
    with socket.create_connection((srv.host, srv.port), timeout=30) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200"), data
    return data.split(b"\r\n\r\n", 1)[1]


def test_http_tiny_chunks_read_ahead_bounded(qserver):
    srv = qserver()
    s = socket.create_connection((srv.host, srv.port), timeout=30)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        s.sendall(b"POST /hoard HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        flood_until_stalled(s, b"1\r\nx\r\n" * 10000)
        get_json_text(srv, "/go")
        data = b""
        while b"\r\n\r\n" not in data or not data.split(b"\r\n\r\n", 1)[1]:
            data += s.recv(65536)
        events, size = map(int, data.split(b"\r\n\r\n", 1)[1].split())
        assert 0 < events <= READ_AHEAD // MIN_EVENT_COST
        assert 0 < size <= READ_AHEAD + 1024  # the bound, and at most one small read past it
    finally:
        s.close()


def read_response(s):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            return data
        data += chunk
    return data


def test_burst_while_python_is_blocked_is_bounded_and_served(qserver, tmp_path):
    """The issue's 8,000 connect-send requests with 60 KB heads, scaled down:
    while the loop is blocked the I/O thread queues at most about
    --max-queued-bytes of them; every one is answered afterwards, and the
    memory comes back."""
    n, pad = 600, 60_000
    srv = qserver("--max-queued-bytes", str(8 * MB))
    for _ in range(3):
        get_json_text(srv, "/hello")
    rss0 = srv.rss_kb()
    until = tmp_path / "unblock"
    blocker = socket.create_connection((srv.host, srv.port), timeout=120)
    blocker.sendall(f"GET /block?until={until} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    wait_for(lambda: Path(str(until) + ".blocked").exists(), 30, what="the loop to block")

    head = (f"GET /hello HTTP/1.1\r\nHost: x\r\nX-Pad: {'a' * pad}\r\n\r\n").encode()
    socks, errors = [], []

    def burst(count):
        for _ in range(count):
            try:
                s = socket.create_connection((srv.host, srv.port), timeout=120)
                socks.append(s)
                s.sendall(head)
            except OSError as exc:
                errors.append(repr(exc))

    with RssSampler(srv.pid) as rss:
        threads = [threading.Thread(target=burst, args=(n // 6,)) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors[:3]
        assert len(socks) == n
        # the server stopped taking work: the excess waits in the kernel
        try:
            held = bool(srv.wait_for_text("Python is behind", timeout=30))
        except AssertionError:
            held = False
        until.touch()
        assert read_response(blocker).startswith(b"HTTP/1.1 200")
        for s in socks:
            s.settimeout(120)
            assert read_response(s).startswith(b"HTTP/1.1 200")
            s.close()
    peak = rss.peak_kb - rss0
    assert held, "the server went on taking work while Python was blocked"
    assert_rss_growth(peak, 40 * 1024, f"for {n} requests of {pad // 1000} KB while Python was blocked")
    # the memory of the burst is given back
    get_json_text(srv, "/hello")
    if not SANITIZED:
        wait_for(lambda: srv.rss_kb() - rss0 < 16 * 1024, 30, what=f"RSS back near {rss0} KiB (now {srv.rss_kb()})")


def leave(sock, how):
    """The client goes: a FIN, or an RST (SO_LINGER 0)."""
    if how == "rst":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def unsent(sock):
    """Bytes the client's kernel holds that the server's has not taken."""
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0]


def pause_then_leave(sock, data, how):
    """Sends more than the read-ahead allows (the server stops reading), all
    of it taken by the server's kernel (a FIN queued behind unsent bytes
    would never arrive), then leaves."""
    sock.sendall(data)
    wait_for(lambda: unsent(sock) == 0, 30, what="the server's kernel to take every byte")
    leave(sock, how)


# A message of more than the read-ahead, then one the server does not read.
WS_PAUSING = frame(OP_BINARY, b"m" * (300 * 1024)) + frame(OP_BINARY, b"t" * (4 * 1024))


def holds(srv, client_port):
    """Whether the server still has a descriptor for the client at client_port."""
    inodes = set()
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            local, remote = fields[1], fields[2]
            if int(local.split(":")[1], 16) == srv.port and int(remote.split(":")[1], 16) == client_port:
                inodes.add(f"socket:[{fields[9]}]")
    fds = set()
    for fd in os.listdir(f"/proc/{srv.pid}/fd"):
        try:
            fds.add(os.readlink(f"/proc/{srv.pid}/fd/{fd}"))
        except OSError:
            pass
    return bool(inodes & fds)


@pytest.mark.parametrize("how", ["fin", "rst"])
def test_ws_paused_connection_sees_client_leave(qserver, how):
    """The app never reads; the server stops reading; the client leaves. The
    app is told (and cancelled after --application-close-timeout) and the
    socket is freed."""
    srv = qserver("--application-close-timeout", "1")
    ws = connect(srv, "/never", timeout=30)
    port = ws.sock.getsockname()[1]
    assert holds(srv, port)
    pause_then_leave(ws.sock, WS_PAUSING, how)
    wait_for(lambda: get_json(srv, "/stats")["cancelled"] == 1, 30, what="the app to be cancelled")
    wait_for(lambda: not holds(srv, port), 30, what="the server to close the socket")


def test_ws_paused_app_reads_then_sees_disconnect(qserver):
    srv = qserver()
    ws = connect(srv, "/recv-disconnect", timeout=30)
    port = ws.sock.getsockname()[1]
    assert holds(srv, port)
    pause_then_leave(ws.sock, WS_PAUSING, "fin")
    wait_for(lambda: not holds(srv, port), 30, what="the server to close the socket")
    get_json_text(srv, "/go")
    # the queued message, then websocket.disconnect
    wait_for(lambda: get_json(srv, "/stats")["disconnects"] == 1, 30, what="websocket.disconnect")


@pytest.mark.parametrize("how", ["fin", "rst"])
def test_http_paused_upload_sees_client_leave(qserver, how):
    srv = qserver("--application-close-timeout", "1")
    s = socket.create_connection((srv.host, srv.port), timeout=30)
    port = s.getsockname()[1]
    wait_for(lambda: holds(srv, port), 30, what="the server to accept")
    head = b"POST /never HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n"
    pause_then_leave(s, head + b"u" * (READ_AHEAD + 8 * 1024), how)
    wait_for(lambda: get_json(srv, "/stats")["cancelled"] == 1, 30, what="the app to be cancelled")
    wait_for(lambda: not holds(srv, port), 30, what="the server to close the socket")


def test_ws_paused_connection_keeps_pinging(qserver):
    """Not read (the app is behind), a WebSocket is still pinged; its pongs
    wait unread, and a client whose kernel takes the pings is kept."""
    srv = qserver("--ping-interval", "0.5", "--ping-timeout", "1")
    ws = connect(srv, "/never", timeout=30)
    port = ws.sock.getsockname()[1]
    ws.sock.sendall(WS_PAUSING)
    wait_for(lambda: unsent(ws.sock) == 0, 30, what="the server's kernel to take every byte")
    for _ in range(3):  # each a ping timeout after the last: the client was kept
        assert ws.recv_frame(timeout=30).opcode == OP_PING
    assert holds(srv, port)
    ws.sock.close()


def test_ws_frames_sent_before_the_101_are_queued_within_bound(qserver):
    """A client that sends its frames with the upgrade request (RFC 6455 4.1
    says to wait) gets them replayed within the read-ahead bound, not all at
    once."""
    srv = qserver()
    s = socket.create_connection((srv.host, srv.port), timeout=30)
    request = (b"GET /hoard HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    s.sendall(request + frame(OP_TEXT, b"") * 10000)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        assert chunk, data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    # the kept frames were queued when the 101 was written: /go comes after
    get_json_text(srv, "/go")
    s.sendall(frame(OP_TEXT, b"end"))  # the app counts until one arrives later
    while len(rest) < 2 or len(rest) < 2 + (rest[1] & 0x7F):
        chunk = s.recv(65536)
        assert chunk, rest
        rest += chunk
    events, size = map(int, rest[2:2 + (rest[1] & 0x7F)].split())
    assert 0 < events <= READ_AHEAD // MIN_EVENT_COST
    s.close()


# One compressed message that inflates to 64 KiB: a few dozen bytes on the wire.
DEFLATED_SIZE = 64 * 1024
# permessage-deflate inflates at most about 1032 bytes out of each input byte;
# the server feeds compressed input 1 KiB at a time between read-ahead checks.
DEFLATE_SLICE_WORST = 1032 * 1024


def deflated_frame(payload):
    """A masked, compressed text frame (RFC 7692 7.2.1): raw DEFLATE, its
    closing 00 00 ff ff removed. A fresh compressor each time is valid with or
    without context takeover."""
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = z.compress(payload) + z.flush(zlib.Z_SYNC_FLUSH)
    assert data.endswith(b"\x00\x00\xff\xff")
    return frame(OP_TEXT, data[:-4], rsv=4)


def connect_deflate(srv, path):
    ws = connect(srv, path, timeout=30,
                 headers=[("Sec-WebSocket-Extensions", "permessage-deflate")])
    return ws


def test_ws_deflate_read_ahead_bounded_by_one_slice(qserver):
    """Compressed messages count by their inflated size: what one read held
    must not all be inflated into the queue at once (one read of ~15 KiB of
    such frames is ~10 MiB)."""
    srv = qserver()
    ws = connect_deflate(srv, "/hoard")
    msg = deflated_frame(b"a" * DEFLATED_SIZE)
    assert len(msg) < 200
    try:
        flood_until_stalled(ws.sock, msg * 2000)
        get_json_text(srv, "/go")
        kind, data = ws.recv_message(timeout=30)
        events, size = map(int, data.split())
        assert size == events * DEFLATED_SIZE
        assert 0 < size <= READ_AHEAD + DEFLATE_SLICE_WORST + DEFLATED_SIZE, (
            f"{events} messages ({size} bytes inflated) were queued for one connection")
    finally:
        ws.sock.close()


def test_ws_deflate_read_ahead_memory_for_8_clients(qserver):
    srv = qserver()
    clients = [connect_deflate(srv, "/hoard") for _ in range(8)]
    msg = deflated_frame(b"a" * DEFLATED_SIZE)
    rss0 = srv.rss_kb()
    try:
        for ws in clients:
            flood_until_stalled(ws.sock, msg * 2000)
        grown = srv.rss_kb() - rss0
        # the bound per client, with room for the allocator and the 101s
        per_client = (READ_AHEAD + DEFLATE_SLICE_WORST + DEFLATED_SIZE) // 1024
        assert_rss_growth(grown, 8 * per_client + 16 * 1024, "for 8 clients flooding compressed messages")
        get_json_text(srv, "/go")
        for ws in clients:
            kind, data = ws.recv_message(timeout=30)
            events, size = map(int, data.split())
            assert 0 < events and size == events * DEFLATED_SIZE
    finally:
        for ws in clients:
            ws.sock.close()


@pytest.mark.parametrize("ending", ["close", "fault"])
def test_ws_deflate_close_behind_kept_input(qserver, ending):
    """Input the bound kept back is fed once the app reads: a close frame (or
    a protocol fault) behind it still ends the connection, after the messages
    before it reached the app."""
    srv = qserver()
    ws = connect_deflate(srv, "/recv-disconnect")
    msg = deflated_frame(b"a" * DEFLATED_SIZE)
    tail = (frame(OP_CLOSE, struct.pack("!H", 1000)) if ending == "close"
            else frame(OP_TEXT, b"x", rsv=2))  # RSV2: no extension defines it
    try:
        ws.sock.sendall(msg * 100 + tail)
        # the server stops reading well before the end: the rest is kept
        wait_for(lambda: unsent(ws.sock) == 0, 30, what="the server's kernel to take every byte")
        get_json_text(srv, "/go")
        f = ws.recv_frame(timeout=30)
        while f.opcode != OP_CLOSE:
            f = ws.recv_frame(timeout=30)
        code = struct.unpack("!H", f.payload[:2])[0]
        assert code == (1000 if ending == "close" else 1002), code
        wait_for(lambda: get_json(srv, "/stats")["disconnects"] == 1, 30,
                 what="the app to read every message and then the disconnect")
        assert get_json(srv, "/stats")["received"] == 100
    finally:
        ws.sock.close()
