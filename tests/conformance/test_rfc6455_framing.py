"""RFC 6455 section 5.2: base framing. Every payload length encoding, masking,
messages up to 16 MiB, many tiny writes, and the message size limit (1009)
enforced from the frame header, before the payload is sent."""

import hashlib
import os
import struct

import pytest

from conformance_ws import (OP_BINARY, OP_CLOSE, OP_PING, OP_TEXT, ZERO_KEY, Closed, check_serving, connect,
                            frame)

LENGTHS = [0, 1, 125, 126, 127, 128, 1000, 65535, 65536, 65537, 1 << 20]


@pytest.mark.parametrize("n", LENGTHS)
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
def test_payload_lengths_echo(server, opcode, n):
    """7-bit (0..125), 16-bit (126..65535) and 64-bit (65536+) lengths."""
    payload = (b"abcdefghij" * (n // 10 + 1))[:n] if opcode == OP_TEXT else os.urandom(n)
    with connect(server) as ws:
        ws.send(opcode, payload)
        assert ws.recv_message() == (opcode, payload)


@pytest.mark.parametrize("form,n", [(16, 0), (16, 125), (64, 0), (64, 125), (64, 126), (64, 65535)],
                         ids=["16bit-0", "16bit-125", "64bit-0", "64bit-125", "64bit-126", "64bit-65535"])
def test_non_minimal_length_fails(server, form, n):
    """5.2: 'the minimal number of bytes MUST be used to encode the length'."""
    with connect(server) as ws:
        ws.send(OP_BINARY, b"x" * n, length_form=form)
        ws.expect_fail(1002)


def test_64bit_length_with_high_bit_fails(server):
    """5.2: the most significant bit of a 64-bit length MUST be 0."""
    with connect(server) as ws:
        ws.send_raw(b"\x82\xff" + struct.pack("!Q", 1 << 63) + ZERO_KEY + b"abc")
        ws.expect_fail((1002, 1009))


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY, OP_PING, OP_CLOSE])
def test_unmasked_client_frame_fails(server, opcode):
    """5.1: a server MUST close the connection on an unmasked frame."""
    payload = b"\x03\xe8" if opcode == OP_CLOSE else b"hello"
    with connect(server) as ws:
        ws.send(opcode, payload, masked=False)
        ws.expect_fail(1002)


@pytest.mark.parametrize("key", [ZERO_KEY, b"\xff\xff\xff\xff", b"\x01\x02\x03\x04", None],
                         ids=["zero", "ones", "fixed", "random"])
def test_any_masking_key(server, key):
    """5.3: any 32-bit key, the all-zero key included."""
    with connect(server) as ws:
        ws.send(OP_TEXT, "masked \u00e9\u20ac\U0001f600" * 20, key=key)
        assert ws.recv_message() == (OP_TEXT, ("masked \u00e9\u20ac\U0001f600" * 20).encode())


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
def test_16_mib_message(server, opcode):
    """A 16 MiB message in one frame (limit 32 MiB) comes back intact."""
    n = 16 * 1024 * 1024
    payload = b"0123456789abcdef" * (n // 16) if opcode == OP_TEXT else os.urandom(n)
    with connect(server, timeout=60) as ws:
        ws.send(opcode, payload, key=ZERO_KEY)
        op, got = ws.recv_message(timeout=60)
    assert op == opcode and len(got) == n
    assert hashlib.sha256(got).digest() == hashlib.sha256(payload).digest()


def test_16_mib_message_in_fragments(server):
    """16 MiB as 256 fragments of 64 KiB, written back to back."""
    piece = os.urandom(65536)
    frames = [frame(OP_BINARY if i == 0 else 0, piece, fin=(i == 255), key=ZERO_KEY) for i in range(256)]
    with connect(server, timeout=60) as ws:
        ws.send_raw(b"".join(frames))
        op, got = ws.recv_message(timeout=60)
    assert op == OP_BINARY and got == piece * 256


@pytest.mark.parametrize("n,chunk", [(300, 1), (16 * 1024, 1), (65536 + 10, 7), (1 << 20, 997)],
                         ids=["300B-by-1", "16KiB-by-1", "64KiB-by-7", "1MiB-by-997"])
def test_message_in_tiny_writes(server, n, chunk):
    """A frame dribbled a few bytes per TCP write (header included)."""
    payload = os.urandom(n)
    with connect(server, timeout=60) as ws:
        ws.send(OP_BINARY, payload, chunk=chunk)
        assert ws.recv_message(timeout=60) == (OP_BINARY, payload)


def test_many_messages_in_one_write(server):
    """Back-to-back frames in one write are each delivered, in order."""
    msgs = [f"message {i} " * (i % 7) for i in range(200)]
    with connect(server) as ws:
        ws.send_raw(b"".join(frame(OP_TEXT, m) for m in msgs))
        for m in msgs:
            assert ws.recv_message() == (OP_TEXT, m.encode())


@pytest.fixture
def limited(module_server):
    return module_server("--websocket-max-message-size", "1000")


@pytest.mark.parametrize("n", [999, 1000])
def test_limit_allows_up_to_the_size(limited, n):
    with connect(limited) as ws:
        ws.send(OP_BINARY, b"x" * n)
        assert ws.recv_message() == (OP_BINARY, b"x" * n)


@pytest.mark.parametrize("n", [1001, 65536, 1 << 40], ids=["1001", "64KiB", "1TiB"])
def test_limit_fails_from_the_header(limited, n):
    """1009 as soon as the header announces too much: nothing of the payload
    is sent, so the close must come from the header alone."""
    with connect(limited) as ws:
        ws.send_raw(frame(OP_BINARY, b"", declared=n, key=ZERO_KEY))
        ws.expect_fail(1009, timeout=5)
    check_serving(limited)


def test_limit_counts_fragments(limited):
    """The limit is on the message: 3 x 400 bytes fails at the third header."""
    with connect(limited) as ws:
        ws.send(OP_BINARY, b"a" * 400, fin=False)
        ws.send(0, b"b" * 400, fin=False)
        ws.send_raw(frame(0, b"", declared=400, key=ZERO_KEY))
        ws.expect_fail(1009, timeout=5)


def test_limit_is_per_message(limited):
    """Many messages under the limit add up to far more than it: fine."""
    with connect(limited) as ws:
        for i in range(50):
            ws.send(OP_BINARY, bytes([i]) * 900)
        for i in range(50):
            assert ws.recv_message() == (OP_BINARY, bytes([i]) * 900)


def test_server_frames_are_valid_under_load(server):
    """Every frame the server writes passes recv_frame's RFC checks (unmasked,
    minimal lengths, no RSV): many sizes interleaved."""
    sizes = [0, 1, 125, 126, 65535, 65536, 3, 70000, 200]
    with connect(server) as ws:
        for n in sizes:
            ws.send(OP_BINARY, b"z" * n)
        for n in sizes:
            assert ws.recv_message() == (OP_BINARY, b"z" * n)


def test_server_closes_after_a_half_frame_and_eof(server):
    """A client that sends half a frame then shuts down its side: the server
    ends the connection (no hang, no crash)."""
    with connect(server) as ws:
        ws.send_raw(frame(OP_TEXT, "half a frame")[:8])
        ws.sock.shutdown(1)  # SHUT_WR
        try:
            assert ws.wait_eof(10)
        except Closed:
            pass
    check_serving(server)
