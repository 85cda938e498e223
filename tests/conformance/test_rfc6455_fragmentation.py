"""RFC 6455 5.4: fragmentation. Messages in any number of fragments (empty
ones too), control frames between fragments, and the two sequencing errors:
a continuation with no message started, and a new message before the last
one ended (both 1002)."""

import os

import pytest

from conformance_ws import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, check_serving, close_payload,
                            connect, frame)


def fragments(opcode, parts):
    return b"".join(frame(opcode if i == 0 else OP_CONT, p, fin=(i == len(parts) - 1)) for i, p in enumerate(parts))


PARTS = {
    "two": [b"hel", b"lo"],
    "fifty": [b"a"] * 50,
    "empty-ones": [b"", b"", b"abc", b""],
    "all-empty": [b"", b""],
    "mixed-lengths": [b"x" * 65536, b"y" * 126, b"z"],
}
# every shape in one write; the small ones also one byte per write
CASES = [(name, None) for name in PARTS] + [(name, 1) for name in PARTS if sum(map(len, PARTS[name])) < 1000]


@pytest.mark.parametrize("name,chunk", CASES, ids=[f"{n}-{'bytes' if c else 'whole'}" for n, c in CASES])
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
def test_fragmented_message(server, opcode, name, chunk):
    parts = PARTS[name]
    with connect(server) as ws:
        ws.send_raw(fragments(opcode, parts), chunk=chunk)
        assert ws.recv_message() == (opcode, b"".join(parts))


@pytest.mark.parametrize("control", ["ping", "pong", "ping-pong-ping"])
def test_control_frames_between_fragments(server, control):
    """5.4: control frames MAY be injected in the middle of a fragmented message."""
    inject = {"ping": frame(OP_PING, b"mid"), "pong": frame(OP_PONG, b"mid"),
              "ping-pong-ping": frame(OP_PING, b"1") + frame(OP_PONG, b"x") + frame(OP_PING, b"2")}[control]
    data = (frame(OP_TEXT, "frag", fin=False) + inject + frame(OP_CONT, "ment", fin=False) + inject
            + frame(OP_CONT, "ed"))
    with connect(server) as ws:
        ws.send_raw(data)
        pongs = []
        while True:
            f = ws.recv_frame()
            if f.opcode == OP_PONG:
                pongs.append(f.payload)
                continue
            assert f.opcode == OP_TEXT and f.fin and f.payload == b"fragmented", f
            break
    expected = {"ping": [b"mid", b"mid"], "pong": [], "ping-pong-ping": [b"1", b"2", b"1", b"2"]}[control]
    assert pongs == expected  # answered at once: before the message completes


def test_ping_answered_before_message_completes(server):
    """The pong for a ping inside an unfinished message is not held back."""
    with connect(server) as ws:
        ws.send_raw(frame(OP_TEXT, "start", fin=False) + frame(OP_PING, b"now"))
        assert ws.recv_pong(timeout=5) == b"now"
        ws.send(OP_CONT, b" end")
        assert ws.recv_message() == (OP_TEXT, b"start end")


@pytest.mark.parametrize("fin", [True, False], ids=["fin", "no-fin"])
@pytest.mark.parametrize("chunk", [None, 1], ids=["one-write", "byte-writes"])
def test_continuation_without_a_message_fails(server, fin, chunk):
    with connect(server) as ws:
        ws.send(OP_CONT, b"orphan", fin=fin, chunk=chunk)
        ws.expect_fail(1002)


def test_continuation_after_a_complete_message_fails(server):
    with connect(server) as ws:
        ws.send_raw(frame(OP_TEXT, "done") + frame(OP_CONT, "extra"))
        assert ws.recv_message() == (OP_TEXT, b"done")  # the reply first (strict)
        ws.expect_fail(1002)


@pytest.mark.parametrize("second", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
@pytest.mark.parametrize("second_fin", [True, False], ids=["fin", "no-fin"])
def test_new_message_before_the_last_ended_fails(server, second, second_fin):
    with connect(server) as ws:
        ws.send_raw(frame(OP_TEXT, "unfinished", fin=False) + frame(second, "intruder", fin=second_fin))
        ws.expect_fail(1002)


def test_close_in_the_middle_of_a_message(server):
    """A close between fragments is answered; the unfinished message is dropped."""
    with connect(server) as ws:
        ws.send_raw(frame(OP_TEXT, "never", fin=False) + frame(OP_CLOSE, close_payload(1000)))
        f = ws.expect_close()
        assert f.code == 1000
        assert ws.wait_eof()


def test_large_message_in_many_fragments(server):
    parts = [os.urandom(4096) for _ in range(256)]
    with connect(server, timeout=30) as ws:
        ws.send_raw(fragments(OP_BINARY, parts))
        assert ws.recv_message(timeout=30) == (OP_BINARY, b"".join(parts))


def test_still_serving(server):
    check_serving(server)
