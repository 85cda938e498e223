"""Helpers for the WebSocket integration tests (frames come from wsframe): a raw
WebSocket client over harness.RawConn, and small utilities around the
python3-websockets (10.4, legacy API) client."""

import asyncio
import base64
import hashlib
import json
import os
import socket
import struct
import time
import urllib.parse
from pathlib import Path

from harness import IO_TIMEOUT, RawConn, read_json_lines, wait_until
from wsframe import (GUID, OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT,  # noqa: F401
                     close_payload, frame)

APP = "ws_app:app"


def make_key():
    return base64.b64encode(os.urandom(16)).decode()


def accept_for(key):
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def parse_close(payload):
    """Close payload -> (code or None, reason bytes)."""
    if len(payload) < 2:
        return None, payload
    return struct.unpack("!H", payload[:2])[0], payload[2:]


class Frame:
    def __init__(self, fin, rsv, opcode, payload):
        self.fin, self.rsv, self.opcode, self.payload = fin, rsv, opcode, payload

    @property
    def close_code(self):
        return parse_close(self.payload)[0]

    @property
    def close_reason(self):
        return parse_close(self.payload)[1]

    def __repr__(self):
        return f"<Frame fin={self.fin} rsv={self.rsv} op={self.opcode:#x} {self.payload[:80]!r}>"


class WSConn:
    """A raw WebSocket client connection (harness.RawConn underneath)."""

    def __init__(self, raw):
        self.raw = raw
        self.response = None

    # -- handshake
    def handshake(self, path, headers=None, key=None, method="GET", version="13"):
        """Send an upgrade request; return the response head (body read if not 101).
        headers: list of (name, value) replacing/adding to the defaults; a value of
        None removes that default header."""
        self.key = key or make_key()
        base = [("Host", "localhost"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
                ("Sec-WebSocket-Key", self.key), ("Sec-WebSocket-Version", version)]
        extra = list(headers or [])
        override = {n.lower() for n, _ in extra}
        lines = [f"{method} {path} HTTP/1.1"]
        for n, v in base:
            if n.lower() not in override and v is not None:
                lines.append(f"{n}: {v}")
        for n, v in extra:
            if v is not None:
                lines.append(f"{n}: {v}")
        self.raw.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        resp = self.raw.read_head()
        if resp.status != 101:
            if resp.header("content-length") is not None:
                resp.body = self.raw.read_exact(int(resp.header("content-length")))
            else:
                resp.body = self.raw.read_to_close(timeout=5)
        self.response = resp
        return resp

    # -- frames
    def send(self, data):
        self.raw.send(data)

    def send_frame(self, opcode, payload=b"", **kw):
        self.raw.send(frame(opcode, payload, **kw))

    def send_text(self, text):
        self.send_frame(OP_TEXT, text.encode() if isinstance(text, str) else text)

    def send_binary(self, data):
        self.send_frame(OP_BINARY, data)

    def send_close(self, code=1000, reason=b""):
        self.send_frame(OP_CLOSE, close_payload(code, reason))

    def recv_frame(self, timeout=None):
        r = self.raw
        b0, b1 = r.read_exact(2, timeout=timeout)
        assert not (b1 & 0x80), "server frames must not be masked"
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", r.read_exact(2, timeout=timeout))[0]
        elif n == 127:
            n = struct.unpack("!Q", r.read_exact(8, timeout=timeout))[0]
        payload = r.read_exact(n, timeout=timeout) if n else b""
        return Frame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0x0F, payload)

    def recv_message(self, timeout=None, answer_pings=True):
        """The next data message (opcode, payload), reassembled; pings answered."""
        parts, op = [], None
        while True:
            f = self.recv_frame(timeout)
            if f.opcode == OP_PING:
                if answer_pings:
                    self.send_frame(OP_PONG, f.payload)
                continue
            if f.opcode == OP_PONG:
                continue
            if f.opcode == OP_CLOSE:
                raise AssertionError(f"close frame while waiting for a message: {f!r}")
            if op is None:
                op = f.opcode
            parts.append(f.payload)
            if f.fin:
                return op, b"".join(parts)

    def recv_text(self, timeout=None):
        op, data = self.recv_message(timeout)
        assert op == OP_TEXT, (op, data[:100])
        return data.decode()

    def expect_close(self, timeout=5.0, skip_data=True):
        """Read until a close frame arrives; return it (pings/pongs/data skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            f = self.recv_frame(timeout=max(0.01, deadline - time.monotonic()))
            if f.opcode == OP_CLOSE:
                return f
            if not skip_data and f.opcode in (OP_TEXT, OP_BINARY, OP_CONT):
                raise AssertionError(f"data frame while waiting for close: {f!r}")

    def wait_closed(self, timeout=5.0):
        return self.raw.wait_closed(timeout)

    def close(self):
        self.raw.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_ws(server, path, headers=None, timeout=IO_TIMEOUT, rcvbuf=None):
    """Connect and complete the handshake; asserts the 101 and its accept value."""
    if rcvbuf is not None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(timeout)
        s.connect((server.host, server.port))
        raw = RawConn(s, timeout)
    else:
        raw = server.connect(timeout)
    ws = WSConn(raw)
    try:
        resp = ws.handshake(path, headers)
        assert resp.status == 101, (resp, resp.body[:300], server.describe())
        assert resp.header("sec-websocket-accept") == accept_for(ws.key), resp
    except BaseException:
        ws.close()
        raise
    return ws


def url(server, path):
    return f"ws://{server.host}:{server.port}{path}"


def outq(path_or_file, **params):
    """A query string with out=FILE and other parameters."""
    params = {"out": str(path_or_file), **params}
    return "?" + urllib.parse.urlencode(params)


def run(coro, timeout=30):
    """Run a coroutine on a fresh event loop with an overall timeout."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def wait_event(out, event, timeout=30.0, **match):  # a deadline, not a window
    """Wait for the app to report {"event": event, ...} in file `out`; return it."""
    def find():
        for rec in read_json_lines(out):
            if rec.get("event") == event and all(rec.get(k) == v for k, v in match.items()):
                return rec
        return None
    try:
        return wait_until(find, timeout, message=f"event {event!r} in {out}")
    except AssertionError:
        text = Path(out).read_text() if Path(out).exists() else "<no file>"
        raise AssertionError(f"app did not report {event!r} {match} within {timeout}s; file: {text}")


def events(out):
    return read_json_lines(out)


def check_echo(server, text="still alive"):
    """A fresh, well-behaved connection still works (echo round trip + clean close)."""
    assert server.alive(), "server died\n" + server.describe()
    with open_ws(server, "/echo") as ws:
        ws.send_text(text)
        assert ws.recv_text(timeout=5) == text
        ws.send_close(1000)
        f = ws.expect_close(5)
        assert f.close_code == 1000, f
        assert ws.wait_closed(5)


def json_text(s):
    return json.loads(s)


def drain_messages(ws, expected_bytes, timeout=30.0, bufsize=1 << 20):
    """Read server frames fast (payloads are counted, not kept) until
    `expected_bytes` of data payload arrived. Returns (payload bytes, data frames,
    sizes of the data frames seen as a set)."""
    sock = ws.raw.sock
    buf = bytearray(ws.raw.buf)
    ws.raw.buf = b""
    chunk = bytearray(bufsize)
    view = memoryview(chunk)
    total = frames = 0
    skip = 0          # payload bytes of the current frame still to come
    sizes = set()
    deadline = time.monotonic() + timeout
    while total < expected_bytes:
        # consume what is buffered
        while True:
            if skip:
                n = min(skip, len(buf))
                del buf[:n]
                skip -= n
                total += n
                if skip:
                    break
            if len(buf) < 2:
                break
            b0, b1 = buf[0], buf[1]
            assert not (b1 & 0x80), "masked server frame"
            n7, hl = b1 & 0x7F, 2
            if n7 == 126:
                hl = 4
            elif n7 == 127:
                hl = 10
            if len(buf) < hl:
                break
            n = n7 if n7 < 126 else int.from_bytes(buf[2:hl], "big")
            op = b0 & 0x0F
            assert op in (OP_BINARY, OP_TEXT, OP_CONT, OP_PING), f"unexpected opcode {op:#x}"
            del buf[:hl]
            if op == OP_PING:
                if len(buf) < n:
                    buf[0:0] = bytes([b0, b1])  # wait for the whole ping (n <= 125)
                    break
                del buf[:n]
                continue
            frames += 1
            sizes.add(n)
            skip = n
            if not n:
                continue
        if total >= expected_bytes:
            break
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"drained {total} of {expected_bytes} bytes")
        sock.settimeout(left)
        got = sock.recv_into(view)
        if not got:
            raise EOFError(f"connection closed after {total} of {expected_bytes} bytes")
        buf += view[:got]
    return total, frames, sizes


def tcp_queued_bytes(port):
    """Bytes the kernel holds for the loopback connections of TCP `port`: the
    server sockets' send queues plus the client sockets' receive queues
    (from /proc/net/tcp: tx_queue = unacknowledged, rx_queue = unread)."""
    total = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = line.split()
        if f[3] != "01":  # ESTABLISHED
            continue
        lport = int(f[1].rsplit(":", 1)[1], 16)
        rport = int(f[2].rsplit(":", 1)[1], 16)
        if port in (lport, rport):
            tx, rx = (int(x, 16) for x in f[4].split(":"))
            total += tx + rx
    return total
