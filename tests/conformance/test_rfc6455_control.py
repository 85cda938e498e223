"""RFC 6455 5.4-5.5: control frames (ping/pong), reserved bits and reserved
opcodes. Control frames are at most 125 bytes and never fragmented; a pong
echoes its ping's data; unsolicited pongs are ignored; RSV bits without an
extension and unknown opcodes fail the connection with 1002."""

import pytest

from conformance_ws import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, check_serving, close_payload,
                            connect, frame)


# --------------------------------------------------------------------------
# ping / pong
# --------------------------------------------------------------------------

@pytest.mark.parametrize("payload", [b"", b"p", b"hello ping", bytes(range(124)), b"\xff" * 125,
                                     "\u00e9\u20ac".encode() * 20],
                         ids=["empty", "1", "text", "124-binary", "125", "utf8"])
def test_pong_echoes_ping_data(server, payload):
    """5.5.2/5.5.3: the pong carries the ping's application data."""
    with connect(server) as ws:
        ws.send(OP_PING, payload)
        assert ws.recv_pong() == payload


def test_ping_125_in_one_byte_writes(server):
    with connect(server) as ws:
        ws.send(OP_PING, b"x" * 125, chunk=1)
        assert ws.recv_pong() == b"x" * 125


@pytest.mark.parametrize("n", [126, 1000, 65536])
def test_ping_over_125_fails(server, n):
    """5.5: 'All control frames MUST have a payload length of 125 bytes or less'."""
    with connect(server) as ws:
        ws.send(OP_PING, b"p" * n)
        ws.expect_fail(1002)


@pytest.mark.parametrize("opcode", [OP_PING, OP_PONG, OP_CLOSE])
def test_fragmented_control_frame_fails(server, opcode):
    """5.5: 'Control frames MUST NOT be fragmented'."""
    payload = close_payload(1000) if opcode == OP_CLOSE else b"frag"
    with connect(server) as ws:
        ws.send(opcode, payload, fin=False)
        ws.expect_fail(1002)


@pytest.mark.parametrize("payload", [b"", b"unsolicited", b"u" * 125])
def test_unsolicited_pong_is_ignored(server, payload):
    """5.5.3: an unsolicited pong is not answered; the connection goes on."""
    with connect(server) as ws:
        ws.send(OP_PONG, payload)
        ws.send(OP_TEXT, b"after pong")
        assert ws.recv_message() == (OP_TEXT, b"after pong")


def test_unsolicited_pong_then_ping(server):
    with connect(server) as ws:
        ws.send_raw(frame(OP_PONG, b"pong first") + frame(OP_PING, b"then ping"))
        assert ws.recv_pong() == b"then ping"


@pytest.mark.parametrize("chunk", [None, 1], ids=["one-write", "byte-writes"])
def test_ten_pings_all_answered(server, chunk):
    """5.5.3 lets an endpoint answer only the latest of several pings; bayleaf
    answers each: every pong matches a ping, the last one is answered, in order."""
    pings = [b"ping %d" % i for i in range(10)]
    with connect(server) as ws:
        ws.send_raw(b"".join(frame(OP_PING, p) for p in pings), chunk=chunk)
        ws.send(OP_TEXT, b"marker")
        pongs = []
        while True:
            f = ws.recv_frame()
            if f.opcode == OP_TEXT:
                break
            assert f.opcode == OP_PONG, f
            pongs.append(f.payload)
    assert pongs and pongs[-1] == pings[-1]
    assert pongs == [p for p in pings if p in pongs], "pongs out of order or unknown"


def test_pong_answers_interleave_with_echoes(server):
    """Pings and data in one burst: every pong and every echo arrives."""
    with connect(server) as ws:
        burst = b"".join(frame(OP_TEXT, f"m{i}") + frame(OP_PING, b"%d" % i) for i in range(20))
        ws.send_raw(burst)
        texts, pongs = [], []
        while len(texts) < 20 or len(pongs) < 20:
            f = ws.recv_frame()
            (texts if f.opcode == OP_TEXT else pongs).append(f.payload)
    assert texts == [f"m{i}".encode() for i in range(20)]
    assert pongs == [b"%d" % i for i in range(20)]


# --------------------------------------------------------------------------
# reserved bits (5.2: MUST be 0 unless an extension defines them)
# --------------------------------------------------------------------------

@pytest.mark.parametrize("rsv", range(1, 8))
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY, OP_PING, OP_CLOSE],
                         ids=["text", "binary", "ping", "close"])
def test_reserved_bits_fail(server, opcode, rsv):
    payload = close_payload(1000) if opcode == OP_CLOSE else b"rsv"
    with connect(server) as ws:
        ws.send(opcode, payload, rsv=rsv)
        ws.expect_fail(1002)


@pytest.mark.parametrize("rsv", [1, 2, 4])
def test_reserved_bits_after_a_valid_message(server, rsv):
    """Strict (as Autobahn's strictest expectations): the valid message
    reaches the app and its echo goes out before the 1002, which waits for the
    app's reply (1 s at most). The close used to overtake the reply."""
    with connect(server) as ws:
        ws.send_raw(frame(OP_TEXT, "valid") + frame(OP_TEXT, "bad", rsv=rsv) + frame(OP_PING, "never"))
        assert ws.recv_message() == (OP_TEXT, b"valid")
        ws.expect_fail(1002)


def test_reserved_bits_in_one_byte_writes(server):
    with connect(server) as ws:
        ws.send(OP_TEXT, b"x" * 10, rsv=3, chunk=1)
        ws.expect_fail(1002)


def test_reserved_bits_on_a_continuation(server):
    with connect(server) as ws:
        ws.send(OP_TEXT, b"first", fin=False)
        ws.send(OP_CONT, b"second", rsv=4)
        ws.expect_fail(1002)


# --------------------------------------------------------------------------
# reserved opcodes (5.2: 'if an unknown opcode is received, the receiving
# endpoint MUST _Fail the WebSocket Connection_')
# --------------------------------------------------------------------------

@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
@pytest.mark.parametrize("payload", [b"", b"reserved"], ids=["empty", "payload"])
def test_reserved_opcodes_fail(server, opcode, payload):
    with connect(server) as ws:
        ws.send(opcode, payload)
        ws.expect_fail(1002)


@pytest.mark.parametrize("opcode", [5, 0xB])
def test_reserved_opcode_after_a_valid_message(server, opcode):
    """Strict: the echo of the message before the fault, then 1002."""
    with connect(server) as ws:
        ws.send_raw(frame(OP_TEXT, "before") + frame(opcode, b"x") + frame(OP_PING))
        assert ws.recv_message() == (OP_TEXT, b"before")
        ws.expect_fail(1002)


@pytest.mark.parametrize("bad", ["rsv2", "opcode-3"])
def test_messages_then_fault_replies_first(server, bad):
    """Several messages, then a fault, all in one write: every echo goes out,
    in order, before the 1002 (the close waits until the app has taken them
    all and answered)."""
    msgs = [f"hello {i}" for i in range(5)]
    fault = frame(OP_TEXT, "x", rsv=2) if bad == "rsv2" else frame(3, b"x")
    with connect(server) as ws:
        ws.send_raw(b"".join(frame(OP_TEXT, m) for m in msgs) + fault)
        for m in msgs:
            assert ws.recv_message() == (OP_TEXT, m.encode())
        ws.expect_fail(1002)


def test_still_serving_after_protocol_errors(server):
    check_serving(server)
