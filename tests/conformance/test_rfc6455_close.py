"""RFC 6455 5.5.1 and 7: the closing handshake. A close from the client is
answered with a close (echoing the code), the server then ends TCP first
(7.1.1), the app sees the client's code; invalid codes, one-byte payloads,
over-long and non-UTF-8 reasons fail the connection; nothing is answered
after a close."""

import itertools
import json
import time
import urllib.request

import pytest

from conformance_ws import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_TEXT, check_serving, close_payload, connect,
                            frame)

VALID_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999]
INVALID_CODES = [0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]
REGISTERED_LATER = [1012, 1013, 1014]  # IANA, after RFC 6455: either answer is fine

_ids = itertools.count()


def app_close_code(server, ident, timeout=5.0):
    """The websocket.disconnect code the app saw for ?id=ident."""
    deadline = time.monotonic() + timeout
    while True:
        url = f"http://{server.host}:{server.port}/closes?id={ident}"
        with urllib.request.urlopen(url, timeout=5) as r:
            code = json.loads(r.read())["code"]
        if code is not None or time.monotonic() > deadline:
            return code
        time.sleep(0.02)


@pytest.mark.parametrize("code", VALID_CODES)
def test_valid_code_is_echoed_and_reaches_the_app(server, code):
    ident = f"valid{code}-{next(_ids)}"
    with connect(server, f"/c?id={ident}") as ws:
        ws.send_close(code, b"bye")
        f = ws.expect_close()
        assert f.code == code
        assert ws.wait_eof(), "7.1.1: the server closes TCP after the handshake"
    assert app_close_code(server, ident) == code


@pytest.mark.parametrize("code", INVALID_CODES)
def test_invalid_code_fails(server, code):
    with connect(server) as ws:
        ws.send(OP_CLOSE, close_payload(code))
        ws.expect_fail(1002)


@pytest.mark.parametrize("code", REGISTERED_LATER)
def test_codes_registered_after_the_rfc(server, code):
    """1012-1014 were registered by IANA later; echoing or 1002 are both sound."""
    with connect(server) as ws:
        ws.send(OP_CLOSE, close_payload(code))
        f = ws.expect_close()
        assert f.code in (code, 1002)
        assert ws.wait_eof()


def test_empty_close(server):
    """No payload: the reply is empty too (or 1000); the app sees 1005."""
    ident = f"empty-{next(_ids)}"
    with connect(server, f"/c?id={ident}") as ws:
        ws.send(OP_CLOSE, b"")
        f = ws.expect_close()
        assert f.payload == b"" or f.code == 1000
        assert ws.wait_eof()
    assert app_close_code(server, ident) == 1005


def test_one_byte_close_payload_fails(server):
    with connect(server) as ws:
        ws.send(OP_CLOSE, b"\x03")
        ws.expect_fail(1002)


@pytest.mark.parametrize("reason", [b"", b"x", "\u00e9t\u00e9 \u20ac\U0001f600".encode(), b"r" * 123],
                         ids=["none", "1", "utf8", "123-max"])
def test_reason_is_echoed(server, reason):
    with connect(server) as ws:
        ws.send_close(1000, reason)
        f = ws.expect_close()
        assert f.code == 1000 and f.reason in (reason, b"")
        assert ws.wait_eof()


def test_reason_of_124_bytes_fails(server):
    """Payload 126 bytes: over the control frame limit."""
    with connect(server) as ws:
        ws.send(OP_CLOSE, close_payload(1000, b"r" * 124))
        ws.expect_fail(1002)


@pytest.mark.parametrize("reason", [b"\xff", b"ok\xed\xa0\x80", b"\xc0\xaf", b"cut\xe2\x82"],
                         ids=["ff", "surrogate", "overlong", "truncated"])
def test_invalid_utf8_reason_fails(server, reason):
    with connect(server) as ws:
        ws.send_close(1000, reason)
        ws.expect_fail((1002, 1007))


def test_close_in_one_byte_writes(server):
    with connect(server) as ws:
        ws.send_close(1000, b"slowly", chunk=1)
        f = ws.expect_close()
        assert f.code == 1000
        assert ws.wait_eof()


@pytest.mark.parametrize("reason", [b"ascii reason", "\u20acuro".encode()], ids=["ascii", "utf8"])
@pytest.mark.parametrize("cut", [1, 2, 3], ids=["in-code", "after-code", "in-reason"])
def test_close_payload_split_across_tcp_writes(server, reason, cut):
    """A close frame arriving in two reads is the same close frame (a non-ASCII
    reason cut inside a character too: wslay must get it whole, gateway/proto/ws.c)."""
    data = frame(OP_CLOSE, close_payload(1000, reason))
    split = 6 + cut  # 2 header bytes + 4 mask bytes, then `cut` payload bytes
    with connect(server) as ws:
        ws.send_raw(data[:split])
        time.sleep(0.1)
        ws.send_raw(data[split:])
        f = ws.expect_close()
        assert f.code == 1000, f
        assert ws.wait_eof()


@pytest.mark.parametrize("after", ["close", "text", "ping", "fragment"])
def test_nothing_is_answered_after_a_close(server, after):
    """7.1.2 / 5.5.1: after its close, the client's frames are ignored: one
    close comes back, no echo, no pong, and TCP ends."""
    extra = {"close": frame(OP_CLOSE, close_payload(1001)), "text": frame(OP_TEXT, "late"),
             "ping": frame(OP_PING, "late"), "fragment": frame(OP_TEXT, "la", fin=False)}[after]
    with connect(server) as ws:
        ws.send_raw(frame(OP_CLOSE, close_payload(1000)) + extra)
        f = ws.recv_frame()
        assert f.opcode == OP_CLOSE and f.code == 1000, f
        assert ws.wait_eof()
        assert not ws.buf, f"bytes after the close frame: {bytes(ws.buf)!r}"


def test_message_then_close_in_one_write(server):
    """The close is answered; the echo may or may not precede it (the app
    answers asynchronously), but nothing follows the close frame."""
    with connect(server) as ws:
        ws.send_raw(frame(OP_BINARY, b"m" * 300000) + frame(OP_CLOSE, close_payload(1000)))
        while True:
            f = ws.recv_frame()
            if f.opcode == OP_CLOSE:
                break
            assert f.opcode in (OP_BINARY, OP_CONT), f
        assert f.code == 1000
        assert ws.wait_eof()


def test_close_between_fragments_is_answered(server):
    with connect(server) as ws:
        ws.send_raw(frame(OP_TEXT, "part", fin=False) + frame(OP_CLOSE, close_payload(4000, b"mid")))
        f = ws.expect_close()
        assert f.code == 4000
        assert ws.wait_eof()


def test_server_ends_tcp_without_waiting_for_the_client(server):
    """After the closing handshake the server closes TCP (7.1.1): the client
    never has to."""
    with connect(server) as ws:
        ws.send_close(1000)
        ws.expect_close()
        t0 = time.monotonic()
        assert ws.wait_eof(6)
        # at once, not by the 5 s closing timeout (started before t0): generous
        # for a loaded, sanitized run
        assert time.monotonic() - t0 < 4


def test_still_serving(server):
    check_serving(server)
