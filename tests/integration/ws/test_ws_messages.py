"""Messages both ways, fragmentation, UTF-8 validation, size limits and
protocol errors (each must fail the connection with the right close code and
leave the server serving)."""

import asyncio
import os
import struct
import time

import pytest
import websockets

from harness import IS_BAYLEAF, bayleaf_only

from .ws_support import (APP, OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT,
                         check_echo, close_payload, events, frame, open_ws, outq, run, url, wait_event)

LIMIT = 1000  # --websocket-max-message-size for the `limited` server


@pytest.fixture
def limited(shared_server):
    return shared_server(APP, "--websocket-max-message-size", str(LIMIT))


# --------------------------------------------------------------------------
# echo through the websockets client
# --------------------------------------------------------------------------

def test_text_and_binary_echo(ws_server):
    async def go():
        async with websockets.connect(url(ws_server, "/echo"), ping_interval=None) as ws:
            for msg in ["hello", "héllo ✓ \U0001F343", "x" * 200, b"\x00\x01\xff", bytes(range(256)) * 10]:
                await ws.send(msg)
                got = await ws.recv()
                assert got == msg and type(got) is type(msg)
    run(go())


def test_empty_messages(ws_server):
    async def go():
        async with websockets.connect(url(ws_server, "/echo"), ping_interval=None) as ws:
            await ws.send("")
            assert await ws.recv() == ""
            await ws.send(b"")
            assert await ws.recv() == b""
            await ws.send("after")
            assert await ws.recv() == "after"
    run(go())


def test_many_messages_in_order(ws_server):
    async def go():
        async with websockets.connect(url(ws_server, "/echo"), ping_interval=None) as ws:
            for i in range(500):
                await ws.send(f"m{i}")
            for i in range(500):
                assert await ws.recv() == f"m{i}"
    run(go())


@pytest.mark.parametrize("size", [65535, 65536, 1 << 20], ids=["64k-1", "64k", "limit"])
def test_large_messages_up_to_the_limit(ws_server, size):
    data = os.urandom(size)
    text = "é" * (size // 2)  # 2 bytes each in UTF-8

    async def go():
        async with websockets.connect(url(ws_server, "/echo"), ping_interval=None, max_size=None) as ws:
            await ws.send(data)
            assert await ws.recv() == data
            await ws.send(text)
            assert await ws.recv() == text
    run(go(), timeout=30)


def test_message_at_custom_limit_passes(limited):
    with open_ws(limited, "/echo") as ws:
        ws.send_binary(b"a" * LIMIT)
        op, data = ws.recv_message(5)
        assert (op, data) == (OP_BINARY, b"a" * LIMIT)
        # fragmented up to the limit too
        ws.send(frame(OP_TEXT, "b" * 600, fin=False) + frame(OP_CONT, "b" * 400))
        assert ws.recv_text(5) == "b" * LIMIT


@pytest.mark.parametrize("how", ["one-frame", "fragments", "64-bit-length"])
def test_message_over_limit_1009(limited, tmp_path, how):
    out = tmp_path / "app.jsonl"
    with open_ws(limited, "/echo" + outq(out)) as ws:
        if how == "one-frame":
            ws.send_binary(b"z" * (LIMIT + 1))
        elif how == "fragments":
            ws.send(frame(OP_BINARY, b"z" * 600, fin=False) + frame(OP_CONT, b"z" * 401))
        else:
            # claims 2**40 bytes: must be refused from the header alone
            ws.send(struct.pack("!BBQ", 0x82, 0xFF, 1 << 40) + b"\0\0\0\0" + b"z" * 100)
        f = ws.expect_close(5)
        assert f.close_code == 1009, f
        assert ws.wait_closed(5)
    rec = wait_event(out, "disconnect")
    assert rec["code"] == 1009 if IS_BAYLEAF else rec["code"] in (1009, 1006), rec
    check_echo(limited)


def test_default_limit_1009(ws_server, tmp_path):
    out = tmp_path / "app.jsonl"
    with open_ws(ws_server, "/echo" + outq(out)) as ws:
        ws.send(frame(OP_BINARY, b"q" * ((1 << 20) + 1), key=b"\0\0\0\0"))
        f = ws.expect_close(5)
        assert f.close_code == 1009, f
    wait_event(out, "disconnect")


@bayleaf_only
def test_limit_zero_means_unlimited(start_server):
    server = start_server(APP, "--websocket_max_message_size", "0")
    data = b"u" * (3 << 20)
    with open_ws(server, "/echo") as ws:
        ws.send(frame(OP_BINARY, data, key=b"\0\0\0\0"))
        op, got = ws.recv_message(10)
        assert op == OP_BINARY and got == data


FRAME_LIMIT = 1000  # --websocket-max-frame-size for the `frame_limited` server


@pytest.fixture
def frame_limited(shared_server):
    return shared_server(APP, "--websocket-max-frame-size", str(FRAME_LIMIT))


@bayleaf_only
def test_frames_at_frame_limit_delivered(frame_limited):
    with open_ws(frame_limited, "/echo") as ws:
        ws.send_binary(b"f" * FRAME_LIMIT)
        assert ws.recv_message(5) == (OP_BINARY, b"f" * FRAME_LIMIT)
        # the limit is per frame: a message of three full frames is fine
        ws.send(frame(OP_TEXT, "a" * FRAME_LIMIT, fin=False) + frame(OP_CONT, "b" * FRAME_LIMIT, fin=False) +
                frame(OP_CONT, "c" * FRAME_LIMIT))
        assert ws.recv_text(5) == "a" * FRAME_LIMIT + "b" * FRAME_LIMIT + "c" * FRAME_LIMIT


@bayleaf_only
@pytest.mark.parametrize("how", ["first", "continuation", "header-only"])
def test_frame_over_frame_limit_1009(frame_limited, tmp_path, how):
    """--websocket-max-frame-size was parsed and never enforced: 1009 now,
    from the frame header."""
    out = tmp_path / "app.jsonl"
    with open_ws(frame_limited, "/echo" + outq(out)) as ws:
        if how == "first":
            ws.send_binary(b"z" * (FRAME_LIMIT + 1))
        elif how == "continuation":
            ws.send(frame(OP_BINARY, b"z" * 10, fin=False) + frame(OP_CONT, b"z" * (FRAME_LIMIT + 1)))
        else:
            ws.send(struct.pack("!BBH", 0x82, 0xFE, FRAME_LIMIT + 1) + b"\0\0\0\0")
        f = ws.expect_close(5)
        assert f.close_code == 1009, f
        assert ws.wait_closed(5)
    rec = wait_event(out, "disconnect")
    assert rec["code"] == 1009, rec
    check_echo(frame_limited)


# --------------------------------------------------------------------------
# fragmentation (raw frames)
# --------------------------------------------------------------------------

def test_fragmented_text_with_ping_in_the_middle(ws_server):
    with open_ws(ws_server, "/echo") as ws:
        ws.send(frame(OP_TEXT, "Hello, ", fin=False) + frame(OP_PING, b"mid") +
                frame(OP_CONT, "wor", fin=False) + frame(OP_CONT, "ld!"))
        f = ws.recv_frame(5)
        assert (f.opcode, f.payload, f.fin) == (OP_PONG, b"mid", True), f
        f = ws.recv_frame(5)
        assert (f.opcode, f.payload, f.fin) == (OP_TEXT, b"Hello, world!", True), f


def test_fragmented_binary_many_pieces_and_empty_fragments(ws_server):
    pieces = [os.urandom(n) for n in (1, 0, 125, 126, 0, 65536, 3, 0)]
    data = b"".join(pieces)
    frames = frame(OP_BINARY, pieces[0], fin=False)
    for p in pieces[1:-1]:
        frames += frame(OP_CONT, p, fin=False)
    frames += frame(OP_CONT, pieces[-1], fin=True)
    with open_ws(ws_server, "/echo") as ws:
        ws.send(frames)
        op, got = ws.recv_message(5)
        assert op == OP_BINARY and got == data


def test_fragments_sent_byte_by_byte(ws_server):
    """Frame headers and payloads split over many TCP segments."""
    import socket as so
    data = frame(OP_TEXT, "split ", fin=False) + frame(OP_CONT, "é" * 10 + "end")
    with open_ws(ws_server, "/echo") as ws:
        ws.raw.sock.setsockopt(so.IPPROTO_TCP, so.TCP_NODELAY, 1)
        for i in range(len(data)):
            ws.send(data[i:i + 1])
        assert ws.recv_text(5) == "split " + "é" * 10 + "end"


def test_utf8_character_split_across_fragments_is_valid(ws_server):
    euro = "€".encode()  # e2 82 ac
    with open_ws(ws_server, "/echo") as ws:
        ws.send(frame(OP_TEXT, b"a" + euro[:1], fin=False) + frame(OP_CONT, euro[1:2], fin=False) +
                frame(OP_CONT, euro[2:] + b"b"))
        assert ws.recv_text(5) == "a€b"


def test_pings_with_payload_answered(ws_server):
    with open_ws(ws_server, "/echo") as ws:
        for payload in (b"", b"p", os.urandom(125)):
            ws.send_frame(OP_PING, payload)
            f = ws.recv_frame(5)
            assert (f.opcode, f.payload) == (OP_PONG, payload)
        # an unsolicited pong is ignored
        ws.send_frame(OP_PONG, b"unsolicited")
        ws.send_text("still here")
        assert ws.recv_text(5) == "still here"


# --------------------------------------------------------------------------
# connection failures
# --------------------------------------------------------------------------

def expect_failure(server, tmp_path, data, code, path="/echo"):
    """Send data on a fresh connection; expect a close frame with `code`, the
    TCP connection closed, the app told, and the server still serving."""
    out = tmp_path / "app.jsonl"
    with open_ws(server, path + outq(out)) as ws:
        ws.send(data)
        f = ws.expect_close(5)
        assert f.close_code == code, (f, f.close_code)
        assert ws.wait_closed(5), "server kept the connection open after failing it"
    rec = wait_event(out, "disconnect")
    # bayleaf tells the app the code it failed the connection with
    assert rec["code"] == code if IS_BAYLEAF else rec["code"] in (code, 1006), rec
    check_echo(server)


INVALID_UTF8 = [
    b"\xff",
    b"\xc3\x28",              # bad continuation
    b"\xed\xa0\x80",          # surrogate
    b"\xc0\xaf",              # overlong
    b"\xf4\x90\x80\x80",      # above U+10FFFF
    b"ok\xc3",                # truncated at the end
]


@pytest.mark.parametrize("bad", INVALID_UTF8, ids=lambda b: b.hex())
def test_invalid_utf8_single_frame_1007(ws_server, tmp_path, bad):
    expect_failure(ws_server, tmp_path, frame(OP_TEXT, b"valid " + bad), 1007)


@pytest.mark.parametrize("first, second", [
    (b"abc\xc3", b"\x28def"),       # bad continuation after the split
    (b"abc\xff", b"def"),           # bad in the first fragment
    (b"abc", b"def\xed\xa0\x80"),   # bad in the last fragment
    (b"abc\xe2\x82", b""),          # message ends inside a character
], ids=["split", "first", "last", "truncated"])
def test_invalid_utf8_across_fragments_1007(ws_server, tmp_path, first, second):
    expect_failure(ws_server, tmp_path, frame(OP_TEXT, first, fin=False) + frame(OP_CONT, second), 1007)


def test_invalid_utf8_in_binary_is_fine(ws_server):
    with open_ws(ws_server, "/echo") as ws:
        ws.send_binary(b"\xff\xfe\xc3\x28")
        op, data = ws.recv_message(5)
        assert (op, data) == (OP_BINARY, b"\xff\xfe\xc3\x28")


PROTOCOL_ERRORS = {
    "unmasked": frame(OP_TEXT, "hi", masked=False),
    "rsv1": frame(OP_TEXT, "hi", rsv=4),
    "rsv2": frame(OP_TEXT, "hi", rsv=2),
    "rsv3": frame(OP_BINARY, "hi", rsv=1),
    "rsv-on-ping": frame(OP_PING, "hi", rsv=4),
    **{f"opcode-{op:x}": frame(op, "x") for op in (3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF)},
    "ping-126": frame(OP_PING, b"p" * 126),
    "pong-126": frame(OP_PONG, b"p" * 126),
    "close-126": frame(OP_CLOSE, close_payload(1000, b"r" * 124)),
    "ping-fragmented": frame(OP_PING, b"p", fin=False),
    "close-fragmented": frame(OP_CLOSE, close_payload(1000), fin=False),
    "continuation-first": frame(OP_CONT, "orphan"),
    "continuation-after-complete": frame(OP_TEXT, "done") + frame(OP_CONT, "orphan"),
    "text-inside-fragmented": frame(OP_TEXT, "a", fin=False) + frame(OP_TEXT, "b"),
    "binary-inside-fragmented": frame(OP_BINARY, "a", fin=False) + frame(OP_BINARY, "b", fin=False),
    "close-1-byte": frame(OP_CLOSE, b"\x03"),
    "close-reason-bad-utf8": frame(OP_CLOSE, close_payload(1000, b"bad \xff reason")),
    "length-64-bit-msb": struct.pack("!BBQ", 0x82, 0xFF, 1 << 63) + b"\0\0\0\0",
}
CLOSE_CODES_INVALID = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]


@pytest.mark.parametrize("name", list(PROTOCOL_ERRORS))
def test_protocol_error_1002(ws_server, tmp_path, name):
    code = 1002
    if name == "close-reason-bad-utf8":
        # RFC 6455 leaves 1002 vs 1007 open here; the brief asks for 1002
        code = 1002
    expect_failure(ws_server, tmp_path, PROTOCOL_ERRORS[name], code)


@pytest.mark.parametrize("close_code", CLOSE_CODES_INVALID)
def test_close_with_invalid_code_1002(ws_server, tmp_path, close_code):
    expect_failure(ws_server, tmp_path, frame(OP_CLOSE, struct.pack("!H", close_code) + b"x"), 1002)


@bayleaf_only
@pytest.mark.parametrize("name, data", [
    ("len16-for-5", frame(OP_TEXT, "hello", length_form=16)),
    ("len64-for-5", frame(OP_TEXT, "hello", length_form=64)),
    ("len64-for-300", frame(OP_BINARY, b"x" * 300, length_form=64)),
])
def test_non_minimal_length_1002(ws_server, tmp_path, name, data):
    """RFC 6455 5.2: the minimal number of bytes MUST be used for the length."""
    expect_failure(ws_server, tmp_path, data, 1002)


def test_data_after_failure_is_ignored(ws_server, tmp_path):
    """The message before the offending frame reaches the app, nothing after it does;
    the server may or may not get the echo out before it fails the connection."""
    out = tmp_path / "app.jsonl"
    with open_ws(ws_server, "/echo" + outq(out, log=1)) as ws:
        ws.send(frame(OP_TEXT, "before") + frame(OP_TEXT, "bad", rsv=4) + frame(OP_TEXT, "after"))
        data = []
        while True:
            f = ws.recv_frame(5)
            if f.opcode == OP_CLOSE:
                break
            data.append(f.payload)
        assert f.close_code == 1002
        # bayleaf holds the close for the app's reply (1 s at most)
        assert data == [b"before"] if IS_BAYLEAF else data in ([], [b"before"]), data
        assert ws.wait_closed(5)
    wait_event(out, "disconnect")
    received = [e["message"] for e in events(out) if e["event"] == "received"]
    first = received[0]
    assert (first["type"], first.get("text"), first.get("bytes")) == ("websocket.receive", "before", None), received
    assert [m["type"] for m in received] == ["websocket.receive", "websocket.disconnect"], received
    assert received[1]["code"] in (1002, 1006)


@bayleaf_only
def test_fault_held_for_an_app_that_does_not_reply(ws_server):
    """The close waits for the app's reply to the message before the fault,
    but not past 1 s: an app asleep gets no say, 1002 comes."""
    with open_ws(ws_server, "/slow?delay=60") as ws:
        ws.send(frame(OP_TEXT, "before") + frame(5, b"x"))
        f = ws.expect_close(10)
        assert f.close_code == 1002, f
        ws.send_close(1000)
        assert ws.wait_closed(5)
    check_echo(ws_server)


def test_garbage_after_handshake(ws_server, tmp_path):
    """An HTTP request where frames are expected: an unmasked frame with opcode 7 ('G')."""
    expect_failure(ws_server, tmp_path, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1002)


# --------------------------------------------------------------------------
# idle sessions give their framing state back (ws.c bl_ws_sleep_if_idle) and
# pick up where they left off; the sweep runs every second
# --------------------------------------------------------------------------

# two sweeps and then some; a fixed idle spell is the stimulus, not a bound: a
# slow machine can only miss the sweep (pass without exercising it), never fail
IDLE = 2.5


def test_idle_connection_carries_on(ws_server):
    with open_ws(ws_server, "/echo") as ws:
        ws.send_text("before")
        assert ws.recv_text() == "before"
        time.sleep(IDLE)
        ws.send_frame(OP_PING, b"still there?")
        f = ws.recv_frame()
        assert (f.opcode, f.payload) == (OP_PONG, b"still there?")
        ws.send_text("héllo after a nap")
        assert ws.recv_text() == "héllo after a nap"


def test_message_split_across_an_idle_spell(ws_server):
    """A fragmented message, and a frame cut mid-header and mid-payload, each
    waiting longer than the sweep: nothing is lost, UTF-8 is still checked
    across the pause."""
    with open_ws(ws_server, "/echo") as ws:
        ws.send_frame(OP_TEXT, "caf\u00e9 ".encode()[:4], fin=False)  # ends inside "é"
        time.sleep(IDLE)
        ws.send_frame(OP_CONT, "caf\u00e9 ".encode()[4:] + b"au lait", fin=True)
        assert ws.recv_text() == "caf\u00e9 au lait"
        whole = frame(OP_TEXT, b"in pieces")
        ws.send(whole[:1])
        time.sleep(IDLE)
        ws.send(whole[1:8])
        time.sleep(IDLE)
        ws.send(whole[8:])
        assert ws.recv_text() == "in pieces"
        ws.send_frame(OP_TEXT, b"\xc3", fin=False)
        time.sleep(IDLE)
        ws.send_frame(OP_CONT, b"\x28", fin=True)  # invalid continuation byte
        assert ws.expect_close().close_code == 1007


def test_idle_compressed_connection_carries_on(ws_server):
    async def go():
        async with websockets.connect(url(ws_server, "/echo"), ping_interval=None,
                                      compression="deflate") as ws:
            assert ws.extensions, "permessage-deflate was not agreed"
            for i in range(3):
                msg = '{"price": %d, "pad": "%s"}' % (i, "x" * 500)
                await ws.send(msg)
                assert await ws.recv() == msg
                await asyncio.sleep(IDLE)
    run(go())
