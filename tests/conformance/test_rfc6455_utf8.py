"""RFC 6455 5.6 and 8.1: text messages are UTF-8 (RFC 3629). Valid text in
any split (fragments, TCP writes) is delivered whole; invalid text fails the
connection with 1007 as soon as the first byte that cannot be part of valid
UTF-8 arrives ("fail fast"), even when the rest of a huge message was never
sent."""

import time

import pytest

from conformance_ws import OP_BINARY, OP_CONT, OP_TEXT, ZERO_KEY, check_serving, connect, frame

VALID = {
    "ascii": b"Hello, world",
    "empty": b"",
    "kosme": "\u03ba\u1f79\u03c3\u03bc\u03b5".encode(),
    "U+0080": "\u0080".encode(),
    "U+07FF": "\u07ff".encode(),
    "U+0800": "\u0800".encode(),
    "U+D7FF": "\ud7ff".encode(),
    "U+E000": "\ue000".encode(),
    "U+FFFD": "\ufffd".encode(),
    "U+FFFE-nonchar": "\ufffe".encode(),
    "U+FFFF-nonchar": "\uffff".encode(),
    "U+10000": "\U00010000".encode(),
    "U+10FFFF": "\U0010ffff".encode(),
    "emoji": "\U0001f600\U0001f343".encode(),
    "nul": b"a\x00b",
    "mixed": "a\u00e9\u20ac\U0001f600z".encode() * 50,
}

# (bytes, offset of the first byte that can no longer be valid UTF-8)
INVALID = {
    "lone-continuation-80": (b"ab\x80cd", 2),
    "lone-continuation-bf": (b"\xbf", 0),
    "continuations": (b"\x80\x81\x82", 0),
    "overlong-lead-c0": (b"\xc0\xaf", 0),
    "overlong-lead-c1": (b"\xc1\xbf", 0),
    "overlong-3-slash": (b"\xe0\x80\xaf", 1),
    "overlong-3-max": (b"\xe0\x9f\xbf", 1),
    "overlong-4-slash": (b"\xf0\x80\x80\xaf", 1),
    "overlong-4-max": (b"\xf0\x8f\xbf\xbf", 1),
    "surrogate-d800": (b"\xed\xa0\x80", 1),
    "surrogate-dbff": (b"\xed\xaf\xbf", 1),
    "surrogate-dc00": (b"\xed\xb0\x80", 1),
    "surrogate-dfff": (b"\xed\xbf\xbf", 1),
    "surrogate-pair": (b"\xed\xa0\x80\xed\xb0\x80", 1),
    "above-10ffff": (b"\xf4\x90\x80\x80", 1),
    "f5": (b"\xf5\x80\x80\x80", 0),
    "f7": (b"\xf7\xbf\xbf\xbf", 0),
    "five-byte": (b"\xf8\x88\x80\x80\x80", 0),
    "six-byte": (b"\xfc\x84\x80\x80\x80\x80", 0),
    "fe": (b"\xfe", 0),
    "ff": (b"\xff", 0),
    "2-byte-missing-cont": (b"\xc3x", 1),
    "3-byte-missing-cont": (b"\xe2\x82x", 2),
    "4-byte-missing-cont": (b"\xf0\x9f\x98x", 3),
    "valid-then-invalid": ("\u03ba\u1f79\u03c3\u03bc\u03b5".encode() + b"\xed\xa0\x80edited", 12),
}

TRUNCATED = {  # valid so far, cut by the end of the message
    "2-byte": b"ok\xc3",
    "3-byte": b"ok\xe2\x82",
    "4-byte": b"ok\xf0\x9f\x98",
}


@pytest.mark.parametrize("data", VALID.values(), ids=VALID.keys())
def test_valid_text(server, data):
    with connect(server) as ws:
        ws.send(OP_TEXT, data)
        assert ws.recv_message() == (OP_TEXT, data)


@pytest.mark.parametrize("data", [v for v, _ in INVALID.values()], ids=INVALID.keys())
def test_invalid_text_fails_1007(server, data):
    with connect(server) as ws:
        ws.send(OP_TEXT, data)
        ws.expect_fail(1007)


@pytest.mark.parametrize("data", [v for v, _ in INVALID.values()], ids=INVALID.keys())
def test_invalid_bytes_are_fine_in_binary(server, data):
    with connect(server) as ws:
        ws.send(OP_BINARY, data)
        assert ws.recv_message() == (OP_BINARY, data)


@pytest.mark.parametrize("data", TRUNCATED.values(), ids=TRUNCATED.keys())
def test_text_ending_inside_a_character_fails(server, data):
    with connect(server) as ws:
        ws.send(OP_TEXT, data)
        ws.expect_fail(1007)


def test_valid_text_split_at_every_byte_across_fragments(server):
    """Code points cut between fragments at every position are reassembled."""
    text = "\u00e9\u20ac\U0001f600\u03ba".encode()
    with connect(server) as ws:
        for cut in range(1, len(text)):
            ws.send_raw(frame(OP_TEXT, text[:cut], fin=False) + frame(OP_CONT, text[cut:]))
            assert ws.recv_message() == (OP_TEXT, text), cut


def test_valid_text_one_byte_per_fragment(server):
    text = "\U0001f600\u20ac\u00e9".encode() * 3
    with connect(server) as ws:
        ws.send_raw(b"".join(frame(OP_TEXT if i == 0 else OP_CONT, text[i:i + 1], fin=(i == len(text) - 1))
                             for i in range(len(text))))
        assert ws.recv_message() == (OP_TEXT, text)


def test_valid_text_one_byte_per_tcp_write(server):
    text = "\u03ba\u1f79\u03c3\u03bc\u03b5 \U0001f600".encode() * 10
    with connect(server) as ws:
        ws.send(OP_TEXT, text, chunk=1)
        assert ws.recv_message() == (OP_TEXT, text)


@pytest.mark.parametrize("name", ["surrogate-d800", "overlong-3-slash", "lone-continuation-80", "above-10ffff"])
def test_invalid_text_split_across_fragments(server, name):
    """The fault is found wherever the fragment boundary falls."""
    data, _ = INVALID[name]
    data = b"prefix " + data + b" suffix"
    for cut in range(1, len(data)):
        with connect(server) as ws:
            ws.send_raw(frame(OP_TEXT, data[:cut], fin=False) + frame(OP_CONT, data[cut:]))
            ws.expect_fail(1007)


@pytest.mark.parametrize("name", ["surrogate-d800", "five-byte", "3-byte-missing-cont", "valid-then-invalid"])
def test_fail_fast_within_a_frame(server, name):
    """The close arrives once the offending byte was sent, before the rest of a
    huge (8 MiB) frame: the server validates as bytes arrive."""
    data, bad_at = INVALID[name]
    declared = 8 * 1024 * 1024
    with connect(server) as ws:
        ws.send_raw(frame(OP_TEXT, b"", declared=declared, key=ZERO_KEY))
        # everything before the offending byte: nothing may come back yet
        ws.send_raw(b"valid prefix " + data[:bad_at])
        time.sleep(0.2)  # a negative window: a slow machine only makes it pass
        ws.sock.setblocking(False)
        try:
            early = ws.sock.recv(100)
        except BlockingIOError:
            early = b""
        ws.sock.setblocking(True)
        assert early == b"", f"server answered before the invalid byte: {early!r}"
        ws.send_raw(data[bad_at:bad_at + 1])
        ws.expect_fail(1007, timeout=5)


def test_fail_fast_across_fragments(server):
    """The invalid byte in the first fragment of an unfinished message: the
    close comes without waiting for the message's end."""
    with connect(server) as ws:
        ws.send_raw(frame(OP_TEXT, b"ok \xed\xa0\x80", fin=False))
        ws.expect_fail(1007, timeout=5)


def test_fail_fast_in_one_byte_writes(server):
    """Dribbled one byte per write, the close still follows the bad byte."""
    with connect(server) as ws:
        f = frame(OP_TEXT, b"", declared=1 << 20, key=ZERO_KEY) + b"abc\xc0"
        ws.send_raw(f, chunk=1)
        ws.expect_fail(1007, timeout=5)


def test_still_serving(server):
    check_serving(server)
