"""permessage-deflate subscribers: a publish is compressed once, without
context (RFC 7692 lets a server reset its compressor per message whatever was
agreed), and every such subscriber gets the same frame; a connection that
keeps context (--ws-compression-context-takeover) gets topic frames plain, so
its compressor's window and the client's stay in step."""

import json
import zlib

import websockets

from harness import bayleaf_only
from ws.ws_support import run, url

from .conftest import APP
from .topics_support import TopicsClient, publish

pytestmark = bayleaf_only

DEFLATE = [("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits")]


def inflate(payload):
    return zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff")


def price_json(i):
    return json.dumps({"symbol": "BTC-USD", "seq": i, "book": [{"px": 97000 + k, "qty": k % 7}
                                                               for k in range(80)]})


def test_deflate_subscribers_share_one_compressed_frame(topics_server):
    text = price_json(1)
    assert len(text) > 2000
    with TopicsClient(topics_server, "/ws?topics=d.one", headers=DEFLATE) as a, \
            TopicsClient(topics_server, "/ws?topics=d.one", headers=DEFLATE) as b, \
            TopicsClient(topics_server, "/ws?topics=d.one") as plain:
        for c in (a, b, plain):
            c.ctl(op="ext")
        a.ctl(op="publish", topic="d.one", text=text)
        fa, fb, fp = a.ws.recv_frame(), b.ws.recv_frame(), plain.ws.recv_frame()
        assert fa.rsv == 4 and fb.rsv == 4 and fp.rsv == 0
        assert fa.payload == fb.payload and len(fa.payload) < len(text) // 2
        assert inflate(fa.payload).decode() == text
        assert fp.payload.decode() == text


def test_short_messages_go_plain_to_deflate_subscribers(topics_server):
    with TopicsClient(topics_server, "/ws?topics=d.short", headers=DEFLATE) as a:
        a.ctl(op="publish", topic="d.short", text="tiny")
        f = a.ws.recv_frame()
        assert f.rsv == 0 and f.payload == b"tiny"


def test_websockets_client_with_compression_reads_topic_messages(topics_server):
    async def go():
        async with websockets.connect(url(topics_server, "/ws?topics=d.ws"), compression="deflate") as ws:
            await ws.send(json.dumps({"op": "ext"}))
            assert (await ws.recv()).startswith("ctl:")
            assert ws.extensions and ws.extensions[0].name == "permessage-deflate"
            await ws.send(json.dumps({"op": "say", "text": price_json(0)}))
            for i in range(1, 50):
                await ws.send(json.dumps({"op": "publish", "topic": "d.ws", "text": price_json(i)}))
            got = []
            while len(got) < 49:
                m = await ws.recv()
                if not m.startswith(("ctl:", "say:")):
                    got.append(json.loads(m)["seq"])
            assert got == list(range(1, 50))
    run(go())


def test_context_takeover_connections_get_plain_topic_frames(start_server):
    server = start_server(APP, "--ws-compression-context-takeover")
    # websockets keeps context both ways: the app's messages are compressed
    # against earlier ones; topic frames in between must not disturb that.

    async def go():
        async with websockets.connect(url(server, "/ws?topics=d.ctx"), compression="deflate") as ws:
            for i in range(20):
                await ws.send(json.dumps({"op": "say", "text": price_json(i)}))
                await ws.send(json.dumps({"op": "publish", "topic": "d.ctx", "text": price_json(100 + i)}))
            says, pubs = [], []
            while len(says) < 20 or len(pubs) < 20:
                m = await ws.recv()
                if m.startswith("say:"):
                    says.append(json.loads(m[4:])["seq"])
                elif not m.startswith("ctl:"):
                    pubs.append(json.loads(m)["seq"])
            assert says == list(range(20)) and pubs == list(range(100, 120))
    run(go())
    with TopicsClient(server, "/ws?topics=d.ctx2", headers=DEFLATE) as a:
        a.ctl(op="publish", topic="d.ctx2", text=price_json(7))
        f = a.ws.recv_frame()
        assert f.rsv == 0 and json.loads(f.payload)["seq"] == 7
