"""A raw RFC 6455 client for the conformance suite, written from the RFC:
frames are built byte by byte (any length encoding, RSV bits, opcode, mask),
written whole, in pieces or one byte per write, and the server's frames are
parsed and checked (servers never mask, control frames are short and whole).
"""

import base64
import hashlib
import os
import socket
import struct
import time

from harness import SocketClient
from wsframe import (GUID, OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT,  # noqa: F401
                     ZERO_KEY, close_payload, frame, mask)

CONTROL = (OP_CLOSE, OP_PING, OP_PONG)


class ProtocolViolation(AssertionError):
    """The server broke RFC 6455 in what it sent."""


class Closed(EOFError):
    """The TCP connection ended (FIN or RST) while a frame was expected."""


class Frame:
    __slots__ = ("fin", "rsv", "opcode", "payload")

    def __init__(self, fin, rsv, opcode, payload):
        self.fin, self.rsv, self.opcode, self.payload = fin, rsv, opcode, payload

    @property
    def code(self):
        return struct.unpack("!H", self.payload[:2])[0] if len(self.payload) >= 2 else None

    @property
    def reason(self):
        return self.payload[2:]

    def __repr__(self):
        return f"<Frame fin={self.fin} rsv={self.rsv} op={self.opcode:#x} len={len(self.payload)} {self.payload[:60]!r}>"


class WS(SocketClient):
    """One client connection after a successful opening handshake."""

    def __init__(self, sock, timeout=10.0):
        self.sock = sock
        self.timeout = timeout
        self.buf = bytearray()
        self.eof = False
        self.pings_seen = []  # payloads of server pings skipped by recv_*()

    # -- writing
    def send_raw(self, data, chunk=None, delay=0.0):
        """Write bytes whole, or in writes of `chunk` bytes (TCP_NODELAY is on)."""
        if chunk is None:
            self.sock.sendall(data)
            return
        view = memoryview(data)
        for i in range(0, len(view), chunk):
            self.sock.sendall(view[i:i + chunk])
            if delay:
                time.sleep(delay)

    def send(self, opcode, payload=b"", chunk=None, **kw):
        self.send_raw(frame(opcode, payload, **kw), chunk=chunk)

    def send_text(self, text, **kw):
        self.send(OP_TEXT, text.encode() if isinstance(text, str) else text, **kw)

    def send_close(self, code=1000, reason=b"", **kw):
        self.send(OP_CLOSE, close_payload(code, reason), **kw)

    # -- reading
    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no frame from the server in time (buffered {bytes(self.buf[:80])!r})")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(1 << 20)
        except socket.timeout:
            raise TimeoutError(f"no frame from the server in time (buffered {bytes(self.buf[:80])!r})")
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            raise Closed("connection closed by the server")
        self.buf += data

    def _need(self, n, deadline):
        while len(self.buf) < n:
            self._fill(deadline)

    def recv_frame(self, timeout=None):
        """The next server frame, checked against RFC 6455 5.1-5.5."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        self._need(2, deadline)
        b0, b1 = self.buf[0], self.buf[1]
        if b1 & 0x80:
            raise ProtocolViolation("a server frame was masked (RFC 6455 5.1)")
        n, hl = b1 & 0x7F, 2
        if n == 126:
            self._need(4, deadline)
            n, hl = struct.unpack("!H", self.buf[2:4])[0], 4
            if n < 126:
                raise ProtocolViolation("non-minimal 16-bit length")
        elif n == 127:
            self._need(10, deadline)
            n, hl = struct.unpack("!Q", self.buf[2:10])[0], 10
            if n < 65536 or n >> 63:
                raise ProtocolViolation("bad 64-bit length")
        self._need(hl + n, deadline)
        payload = bytes(self.buf[hl:hl + n])
        del self.buf[:hl + n]
        f = Frame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0xF, payload)
        if f.rsv:
            raise ProtocolViolation(f"RSV bits set without an extension: {f!r}")
        if f.opcode in CONTROL and (not f.fin or n > 125):
            raise ProtocolViolation(f"bad control frame {f!r}")
        if f.opcode not in (OP_CONT, OP_TEXT, OP_BINARY) + CONTROL:
            raise ProtocolViolation(f"reserved opcode from the server: {f!r}")
        return f

    def recv_message(self, timeout=None, answer_pings=True):
        """(opcode, payload) of the next data message; pings answered, pongs skipped."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        parts, op = [], None
        while True:
            f = self.recv_frame(max(0.01, deadline - time.monotonic()))
            if f.opcode == OP_PING:
                self.pings_seen.append(f.payload)
                if answer_pings:
                    self.send(OP_PONG, f.payload)
                continue
            if f.opcode == OP_PONG:
                continue
            if f.opcode == OP_CLOSE:
                raise AssertionError(f"close frame instead of a message: code {f.code} {f.reason!r}")
            if op is None:
                if f.opcode == OP_CONT:
                    raise ProtocolViolation("continuation frame without a message")
                op = f.opcode
            elif f.opcode != OP_CONT:
                raise ProtocolViolation(f"new message {f!r} inside a fragmented one")
            parts.append(f.payload)
            if f.fin:
                return op, b"".join(parts)

    def recv_pong(self, timeout=None):
        """The next pong's payload (data frames in between are an error)."""
        while True:
            f = self.recv_frame(timeout)
            if f.opcode == OP_PONG:
                return f.payload
            if f.opcode == OP_PING:
                self.pings_seen.append(f.payload)
                continue
            raise AssertionError(f"expected a pong, got {f!r}")

    def expect_close(self, timeout=None):
        """Read until the server's close frame; return it (other frames skipped)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            f = self.recv_frame(max(0.01, deadline - time.monotonic()))
            if f.opcode == OP_CLOSE:
                if len(f.payload) == 1:
                    raise ProtocolViolation("one-byte close payload from the server")
                return f

    def expect_fail(self, codes, timeout=None, allow_data=()):
        """The server fails the connection: a close frame with one of `codes`,
        then the TCP connection ends once we reply. allow_data: data payloads
        that may arrive first (echoes of valid messages sent just before the
        fault: the app's echo may or may not beat the failure, which autobahn
        calls "non-strict" but acceptable)."""
        codes = (codes,) if isinstance(codes, int) else tuple(codes)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            try:
                f = self.recv_frame(max(0.01, deadline - time.monotonic()))
            except Closed:
                raise AssertionError(f"TCP closed without a close frame (expected {codes})")
            if f.opcode in (OP_PING, OP_PONG):
                continue
            if f.opcode in (OP_TEXT, OP_BINARY) and f.payload in allow_data:
                continue
            assert f.opcode == OP_CLOSE, f"expected close {codes}, got {f!r}"
            assert f.code in codes, f"close code {f.code} ({f.reason!r}), expected one of {codes}"
            break
        self.finish_close()
        return f

    def finish_close(self, timeout=6.0):
        """After the server's close frame: reply, then the server ends TCP."""
        try:
            self.send_close(1000)
        except OSError:
            pass  # already gone: fine
        assert self.wait_eof(timeout), "server kept the TCP connection open after the closing handshake"

    def wait_eof(self, timeout=6.0):
        """True when the server closes TCP within timeout (frames are discarded)."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            try:
                self._fill(deadline)
            except Closed:
                return True
            except TimeoutError:
                return False
            self.buf.clear()
        return True


def accept_for(key):
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def connect(server, path="/echo", headers=(), timeout=10.0, rcvbuf=None):
    """TCP connect + opening handshake (RFC 6455 4.1); returns a WS."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(timeout)
    sock.connect((server.host, server.port))
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [f"GET {path} HTTP/1.1", "Host: localhost", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
    lines += [f"{n}: {v}" for n, v in headers]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    head = b""
    deadline = time.monotonic() + timeout
    while b"\r\n\r\n" not in head:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        data = sock.recv(4096)
        if not data:
            sock.close()
            raise AssertionError(f"connection closed during the handshake: {head!r}")
        head += data
    head, _, rest = head.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0]
    if not status.startswith(b"HTTP/1.1 101"):
        sock.close()
        raise AssertionError(f"handshake refused: {head!r}")
    fields = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        fields[name.strip().lower().decode()] = value.strip().decode("latin-1")
    assert fields.get("sec-websocket-accept") == accept_for(key), head
    ws = WS(sock, timeout)
    ws.buf += rest
    return ws


def check_serving(server):
    """The server still completes an echo round trip and a clean close."""
    assert server.alive(), "server died\n" + server.describe()
    with connect(server) as ws:
        ws.send_text("still here")
        assert ws.recv_message(5) == (OP_TEXT, b"still here")
        ws.send_close(1000)
        f = ws.expect_close(5)
        assert f.code == 1000, f
        assert ws.wait_eof(5)
