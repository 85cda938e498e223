"""permessage-deflate (RFC 7692): negotiation with python3-websockets' client
in every parameter combination, messages both ways (large, many, empty,
fragmented and hand-made with zlib over a raw socket), context takeover when
switched on, and the failures: a decompression bomb (1009), RSV1 without the
extension, on control or continuation frames (1002), bad data or UTF-8 (1007)."""

import itertools
import json
import os
import random
import struct
import zlib

import pytest
import websockets
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

from .ws_support import (APP, OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_TEXT, check_echo, events,
                         frame, open_ws, outq, run, url, wait_event)

EXT = "sec-websocket-extensions"
NCT = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
LIMIT = 1 << 20  # bayleaf's default --websocket-max-message-size


@pytest.fixture
def takeover(shared_server):
    """Context takeover allowed, 10-bit windows."""
    return shared_server(APP, "--ws-compression-context-takeover", "--ws-compression-window-bits",
                         "10")


@pytest.fixture
def no_threshold(shared_server):
    return shared_server(APP, "--ws-compression-threshold", "0")


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def deflate(data, comp=None, bits=15):
    """One message as a client compresses it: sync flush, 00 00 ff ff dropped."""
    if isinstance(data, str):
        data = data.encode()
    c = comp or zlib.compressobj(wbits=-bits)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def inflate(payload, decomp=None):
    d = decomp or zlib.decompressobj(wbits=-15)
    return d.decompress(payload + b"\x00\x00\xff\xff")


def open_deflate(server, path="/echo", offer="permessage-deflate; client_max_window_bits"):
    ws = open_ws(server, path, headers=[("Sec-WebSocket-Extensions", offer)])
    assert ws.response.header(EXT) is not None, ws.response
    return ws


def recv_raw_message(ws, timeout=5):
    """(opcode, rsv of the first frame, payload) of the next data message."""
    op = rsv = None
    parts = []
    while True:
        f = ws.recv_frame(timeout)
        if f.opcode == OP_CLOSE:
            raise AssertionError(f"close while waiting for a message: {f!r}")
        if f.opcode >= 0x8:
            continue
        if op is None:
            op, rsv = f.opcode, f.rsv
        else:
            assert f.rsv == 0, f"RSV bits on a continuation frame: {f!r}"
        parts.append(f.payload)
        if f.fin:
            return op, rsv, b"".join(parts)


def ticker(seq, rnd):
    """A ~2 KiB JSON market ticker, like a real-time feed."""
    rows = [{"symbol": f"SYM{i:02d}-USD", "bid": round(rnd.uniform(1, 5e4), 4),
             "ask": round(rnd.uniform(1, 5e4), 4), "volume": round(rnd.uniform(1e3, 1e7), 2),
             "ts": 1700000000000 + seq} for i in range(16)]
    return json.dumps({"type": "ticker", "seq": seq, "data": rows}, separators=(",", ":"))


def client_factory(**params):
    return ClientPerMessageDeflateFactory(**params)


async def echo_all(ws, messages):
    for m in messages:
        await ws.send(m)
        got = await ws.recv()
        assert got == m, (type(got), len(got), len(m))


SAMPLES = ["x" * 10000, "hi", "", "héllo ✓ \U0001F343" * 50, b"\x00" * 5000, b"", os.urandom(3000),
           ticker(1, random.Random(1))]


# --------------------------------------------------------------------------
# negotiation with python3-websockets
# --------------------------------------------------------------------------

def test_without_compression(ws_server):
    async def go():
        async with websockets.connect(url(ws_server, "/echo"), ping_interval=None,
                                      compression=None) as ws:
            assert EXT not in ws.response_headers
            assert ws.extensions == []
            await echo_all(ws, SAMPLES)
    run(go())


def test_default_client_offer(ws_server):
    """websockets' default offer (client_max_window_bits): both directions
    without context takeover, nothing else named."""
    async def go():
        async with websockets.connect(url(ws_server, "/echo"), ping_interval=None) as ws:
            assert ws.response_headers[EXT] == NCT
            assert len(ws.extensions) == 1
            await echo_all(ws, SAMPLES)
    run(go())


COMBOS = list(itertools.product(
    [False, True],            # server_no_context_takeover
    [False, True],            # client_no_context_takeover
    [None, 9, 12, 15],        # server_max_window_bits
    [None, True, 9, 11],      # client_max_window_bits (Python's zlib can't do 8)
))


@pytest.mark.parametrize("snct, cnct, sbits, cbits", COMBOS,
                         ids=[f"snct{int(a)}-cnct{int(b)}-s{c}-c{d}" for a, b, c, d in COMBOS])
def test_parameter_combinations(ws_server, snct, cnct, sbits, cbits):
    fac = client_factory(server_no_context_takeover=snct, client_no_context_takeover=cnct,
                         server_max_window_bits=sbits, client_max_window_bits=cbits)

    async def go():
        async with websockets.connect(url(ws_server, "/echo"), ping_interval=None,
                                      extensions=[fac], compression=None) as ws:
            want = NCT + (f"; server_max_window_bits={sbits}" if sbits else "")
            assert ws.response_headers[EXT] == want
            rnd = random.Random(7)
            await echo_all(ws, SAMPLES + [ticker(i, rnd) for i in range(20)])
    run(go())


def test_server_window_8_is_declined_for_the_next_offer(ws_server):
    """zlib can't compress with a 256-byte window: that offer is skipped."""
    with open_ws(ws_server, "/echo", headers=[
            ("Sec-WebSocket-Extensions", "permessage-deflate; server_max_window_bits=8"),
            ("Sec-WebSocket-Extensions", "permessage-deflate; server_max_window_bits=9")]) as ws:
        assert ws.response.header(EXT) == NCT + "; server_max_window_bits=9"
    with open_ws(ws_server, "/echo", headers=[
            ("Sec-WebSocket-Extensions", "permessage-deflate; server_max_window_bits=8")]) as ws:
        assert ws.response.header(EXT) is None
        ws.send_text("x" * 500)
        op, rsv, data = recv_raw_message(ws)
        assert (op, rsv, data) == (OP_TEXT, 0, b"x" * 500)


@pytest.mark.parametrize("offer", [
    "permessage-deflate; foo",
    "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
    "permessage-deflate; client_max_window_bits=16",
    "permessage-deflate; server_max_window_bits=010",
    "permessage-deflate; server_no_context_takeover=yes",
    "permessage-deflate; =",
])
def test_refused_offers_fall_back(ws_server, offer):
    with open_ws(ws_server, "/echo", headers=[("Sec-WebSocket-Extensions", offer)]) as ws:
        assert ws.response.header(EXT) is None
        ws.send_text("plain")
        assert ws.recv_text(5) == "plain"
    two = offer + ', x-other; a="1,2", permessage-deflate; server_max_window_bits="11"'
    with open_ws(ws_server, "/echo", headers=[("Sec-WebSocket-Extensions", two)]) as ws:
        assert ws.response.header(EXT) == NCT + "; server_max_window_bits=11"


def test_extension_header_beside_subprotocol_and_app_headers(ws_server):
    with open_ws(ws_server, "/accept?sub=chat&hdr=x-app:1", headers=[
            ("Sec-WebSocket-Protocol", "chat"),
            ("Sec-WebSocket-Extensions", "permessage-deflate")]) as ws:
        r = ws.response
        assert (r.header(EXT), r.header("sec-websocket-protocol"), r.header("x-app")) == \
            (NCT, "chat", "1")
        op, rsv, data = recv_raw_message(ws)
        assert data == b"sub=chat"


@pytest.mark.parametrize("snct, cnct, cbits", list(itertools.product(
    [False, True], [False, True], [None, True, 9, 12])))
def test_context_takeover_server(takeover, snct, cnct, cbits):
    """--ws-compression-context-takeover --ws-compression-window-bits 10: the
    contexts are kept unless the client says no, windows capped at 10 bits;
    websockets decodes our messages with its kept context and we decode its."""
    fac = client_factory(server_no_context_takeover=snct, client_no_context_takeover=cnct,
                         client_max_window_bits=cbits)

    async def go():
        async with websockets.connect(url(takeover, "/echo"), ping_interval=None,
                                      extensions=[fac], compression=None) as ws:
            parts = ["permessage-deflate"]
            if snct:
                parts.append("server_no_context_takeover")
            if cnct:
                parts.append("client_no_context_takeover")
            parts.append("server_max_window_bits=10")
            if cbits is not None and not cnct:
                parts.append(f"client_max_window_bits={min(10, 15 if cbits is True else cbits)}")
            assert ws.response_headers[EXT] == "; ".join(parts)
            rnd = random.Random(3)
            await echo_all(ws, [ticker(i, rnd) for i in range(50)] + SAMPLES)
    run(go())


# --------------------------------------------------------------------------
# messages
# --------------------------------------------------------------------------

def test_large_messages(ws_server):
    rnd = random.Random(5)
    text = "".join(ticker(i, rnd) for i in range(500))[:LIMIT]
    async def go():
        async with websockets.connect(url(ws_server, "/echo"), ping_interval=None,
                                      max_size=None) as ws:
            assert ws.response_headers[EXT] == NCT
            await echo_all(ws, [text, os.urandom(LIMIT), b"\x00" * LIMIT, "é" * (LIMIT // 2)])
    run(go(), timeout=60)


def test_many_small_messages_in_order(ws_server):
    rnd = random.Random(11)
    msgs = [ticker(i, rnd)[: rnd.randrange(1, 2500)] for i in range(1000)]
    async def go():
        async with websockets.connect(url(ws_server, "/echo"), ping_interval=None) as ws:
            for m in msgs:
                await ws.send(m)
            for m in msgs:
                assert await ws.recv() == m
    run(go(), timeout=60)


def test_threshold(ws_server, no_threshold):
    """Replies under --ws-compression-threshold (128) go out plain."""
    with open_deflate(ws_server) as ws:
        for size, compressed in [(1, 0), (127, 0), (128, 4), (5000, 4)]:
            ws.send_frame(OP_TEXT, deflate("a" * size), rsv=4)
            op, rsv, data = recv_raw_message(ws)
            assert (op, rsv) == (OP_TEXT, compressed), size
            assert (inflate(data) if rsv else data) == b"a" * size
        # incompressible: sent plain rather than bigger
        noise = os.urandom(1000)
        ws.send_binary(noise)
        assert recv_raw_message(ws) == (OP_BINARY, 0, noise)
    with open_deflate(no_threshold) as ws:
        ws.send_text("a" * 20)
        op, rsv, data = recv_raw_message(ws)
        assert (op, rsv, inflate(data)) == (OP_TEXT, 4, b"a" * 20)
        # nothing to gain: plain
        for text in ("hi", ""):
            ws.send_text(text)
            assert recv_raw_message(ws) == (OP_TEXT, 0, text.encode())


def test_fragmented_compressed_message(ws_server):
    """RSV1 on the first frame only; control frames may come between."""
    rnd = random.Random(2)
    text = "".join(ticker(i, rnd) for i in range(20))
    payload = deflate(text)
    cuts = sorted(rnd.sample(range(1, len(payload)), 6))
    pieces = [payload[a:b] for a, b in zip([0] + cuts, cuts + [len(payload)])]
    with open_deflate(ws_server) as ws:
        data = frame(OP_TEXT, pieces[0], fin=False, rsv=4)
        for i, p in enumerate(pieces[1:], 1):
            data += frame(OP_CONT, p, fin=i == len(pieces) - 1)
            if i == 2:
                data += frame(OP_PING, b"between")
        # a fragment may be empty
        ws.send(data[:5])
        ws.send(data[5:] + frame(OP_BINARY, b"", fin=False, rsv=4) + frame(OP_CONT, deflate(b"abc")))
        op, rsv, got = recv_raw_message(ws)
        assert (op, rsv) == (OP_TEXT, 4) and inflate(got) == text.encode()
        op, rsv, got = recv_raw_message(ws)
        assert (op, rsv, got) == (OP_BINARY, 0, b"abc")


def test_raw_messages_made_with_zlib(ws_server):
    """Different shapes of valid DEFLATE: final block, fixed Huffman, stored
    blocks, several blocks, a 9-bit window."""
    msg = ("permessage-deflate " * 40).encode()
    c_final = zlib.compressobj(wbits=-15)
    final = c_final.compress(msg) + c_final.flush(zlib.Z_FINISH)
    c_fixed = zlib.compressobj(wbits=-15, strategy=zlib.Z_FIXED)
    stored = zlib.compressobj(level=0, wbits=-15)
    c_multi = zlib.compressobj(wbits=-15)
    multi = c_multi.compress(msg[:300]) + c_multi.flush(zlib.Z_FULL_FLUSH) + \
        c_multi.compress(msg[300:]) + c_multi.flush(zlib.Z_SYNC_FLUSH)
    shapes = [final, deflate(msg, c_fixed), deflate(msg, stored), multi[:-4], deflate(msg, bits=9)]
    with open_deflate(ws_server) as ws:
        for payload in shapes:
            ws.send_frame(OP_BINARY, payload, rsv=4)
            op, rsv, got = recv_raw_message(ws)
            assert op == OP_BINARY and inflate(got) == msg


def test_empty_messages(ws_server):
    with open_deflate(ws_server) as ws:
        for payload in (b"", b"\x00", deflate(b"")):
            ws.send_frame(OP_TEXT, payload, rsv=4)
            assert recv_raw_message(ws) == (OP_TEXT, 0, b"")
        ws.send_frame(OP_BINARY, b"", rsv=4)
        assert recv_raw_message(ws) == (OP_BINARY, 0, b"")


def test_client_context_takeover_raw(takeover):
    """A client keeping its compression context: the 2nd message refers to the
    1st; our replies keep ours."""
    with open_deflate(takeover, offer="permessage-deflate; client_max_window_bits") as ws:
        assert ws.response.header(EXT) == \
            "permessage-deflate; server_max_window_bits=10; client_max_window_bits=10"
        comp = zlib.compressobj(wbits=-10)
        decomp = zlib.decompressobj(wbits=-10)
        rnd = random.Random(9)
        sizes = []
        for i in range(30):
            text = ticker(i, rnd)
            payload = deflate(text, comp)
            ws.send_frame(OP_TEXT, payload, rsv=4)
            op, rsv, got = recv_raw_message(ws)
            assert (op, rsv) == (OP_TEXT, 4)
            assert inflate(got, decomp) == text.encode()
            sizes.append(len(got))
        # a message under the threshold goes plain and leaves the context alone
        ws.send_text("tiny")
        assert recv_raw_message(ws) == (OP_TEXT, 0, b"tiny")
        text = ticker(99, rnd)
        ws.send_frame(OP_TEXT, deflate(text, comp), rsv=4)
        op, rsv, got = recv_raw_message(ws)
        assert inflate(got, decomp) == text.encode()


# --------------------------------------------------------------------------
# failures
# --------------------------------------------------------------------------

def expect_failure(server, tmp_path, data, code, offer="permessage-deflate"):
    out = tmp_path / "app.jsonl"
    headers = [("Sec-WebSocket-Extensions", offer)] if offer else []
    with open_ws(server, "/echo" + outq(out), headers=headers) as ws:
        assert (ws.response.header(EXT) is not None) == bool(offer)
        ws.send(data)
        f = ws.expect_close(5)
        assert f.close_code == code, (f, f.close_code)
        assert ws.wait_closed(5), "server kept the connection open after failing it"
    rec = wait_event(out, "disconnect")
    assert rec["code"] == code, rec
    check_echo(server)
    return out


@pytest.mark.parametrize("size", [LIMIT + 1, 50 << 20], ids=["limit+1", "50MB"])
def test_decompression_bomb_1009(ws_server, tmp_path, size):
    """Zeros compress ~1000:1: the wire size is far under the limit, the
    inflated size over it. The server stops inflating at the limit."""
    bomb = deflate(b"\x00" * size)
    assert len(bomb) < LIMIT // 10
    out = expect_failure(ws_server, tmp_path, frame(OP_BINARY, bomb, rsv=4), 1009)
    assert [e for e in events(out) if e.get("event") == "received"] == []


def test_bomb_in_fragments_1009(ws_server, tmp_path):
    bomb = deflate("a" * (2 * LIMIT))
    half = len(bomb) // 2
    expect_failure(ws_server, tmp_path, frame(OP_TEXT, bomb[:half], fin=False, rsv=4) +
                   frame(OP_CONT, bomb[half:]), 1009)


def test_message_at_limit_compressed(ws_server):
    with open_deflate(ws_server) as ws:
        ws.send_frame(OP_BINARY, deflate(b"\x00" * LIMIT), rsv=4)
        op, rsv, got = recv_raw_message(ws, timeout=10)
        assert (op, rsv) == (OP_BINARY, 4) and inflate(got) == b"\x00" * LIMIT


@pytest.mark.bayleaf_only
def test_bomb_without_message_limit_1009(start_server, tmp_path):
    """--websocket-max-message-size 0 lifts the message limit, not the inflate
    cap (64 MiB): a ~64 KB message of zeros can't inflate to 64 MiB + 1."""
    server = start_server(APP, "--websocket-max-message-size", "0")
    cap = 64 << 20
    with open_deflate(server) as ws:  # up to the cap is fine
        ws.send_frame(OP_BINARY, deflate(b"\x00" * (8 << 20)), rsv=4)
        op, rsv, got = recv_raw_message(ws, timeout=30)
        assert op == OP_BINARY and len(inflate(got)) == 8 << 20
    bomb = deflate(b"\x00" * (cap + 1))
    assert len(bomb) < 100_000
    expect_failure(server, tmp_path, frame(OP_BINARY, bomb, rsv=4), 1009)
    # a compressed message too long to inflate under the cap: refused from its
    # header, before the server reassembles 80 MiB of it
    with open_deflate(server) as ws:
        ws.send(struct.pack("!BBQ", 0xC2, 0xFF, 80 << 20) + b"\0\0\0\0" + b"z" * 1000)
        f = ws.expect_close(5)
        assert f.close_code == 1009, f


@pytest.mark.parametrize("name, data, offer", [
    ("rsv1-not-negotiated", frame(OP_TEXT, deflate("Hello"), rsv=4), None),
    ("compressed-ping", frame(OP_PING, deflate("ping"), rsv=4), "permessage-deflate"),
    ("compressed-close", frame(OP_CLOSE, b"\x03\xe8", rsv=4), "permessage-deflate"),
    ("rsv1-on-continuation", frame(OP_TEXT, b"\xf2\x48", fin=False, rsv=4) +
     frame(OP_CONT, b"\xcd\xc9\xc9\x07\x00", rsv=4), "permessage-deflate"),
    ("rsv1-on-continuation-of-plain", frame(OP_TEXT, b"a", fin=False) +
     frame(OP_CONT, deflate("b"), rsv=4), "permessage-deflate"),
    ("rsv2", frame(OP_TEXT, deflate("Hello"), rsv=2), "permessage-deflate"),
    ("rsv1-rsv3", frame(OP_TEXT, deflate("Hello"), rsv=5), "permessage-deflate"),
])
def test_protocol_errors_1002(ws_server, tmp_path, name, data, offer):
    expect_failure(ws_server, tmp_path, data, 1002, offer)


@pytest.mark.parametrize("name, data", [
    ("bad-utf8", frame(OP_TEXT, deflate(b"ok \xc3\x28"), rsv=4)),
    ("utf8-cut-at-end", frame(OP_TEXT, deflate(b"caf\xc3"), rsv=4)),
    ("surrogate-fragmented", frame(OP_TEXT, deflate(b"a\xed\xa0\x80b")[:2], fin=False, rsv=4) +
     frame(OP_CONT, deflate(b"a\xed\xa0\x80b")[2:])),
    ("not-deflate", frame(OP_BINARY, b"\xff\xff\xff\xff", rsv=4)),
    # an empty final block (fixed Huffman), then another block
    ("bytes-after-final-block", frame(OP_BINARY, b"\x03\x00" + b"\x02\x00", rsv=4)),
])
def test_bad_compressed_data_1007(ws_server, tmp_path, name, data):
    expect_failure(ws_server, tmp_path, data, 1007)


def test_compression_off(shared_server):
    server = shared_server(APP, "--ws-compression", "off")
    async def go():
        async with websockets.connect(url(server, "/echo"), ping_interval=None) as ws:
            assert EXT not in ws.response_headers
            await echo_all(ws, SAMPLES)
    run(go())
