"""An app for tests/faults/test_queued_memory.py: it lets input pile up in
the server, then counts what the server had queued for it.

  GET /go           lets every /hoard scope start counting
  GET /block?until=F  blocks the event loop (time.sleep) until file F exists,
                    having created F.blocked, then 200
  GET /hello        200 "hello"
  GET /stats        {"disconnects": n, "cancelled": n, "received": n} as JSON
  POST /hoard       waits for /go, then answers "EVENTS BYTES": the body
                    events (and their bytes) that were queued at that moment
  WS /hoard         the same for messages: sends "EVENTS BYTES", then closes
  POST /never       never reads its body; counts its cancellation or
                    http.disconnect in /stats
  WS /never         accepts, never reads; counts its cancellation in /stats
"""

import asyncio
import json
import os
import sys
import time
from urllib.parse import parse_qs

# the helpers shared by the test apps (integration/apps/common.py; this app runs from its own folder)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "integration", "apps"))
from common import asgi_app  # noqa: E402

go = None  # an asyncio.Event, made on the app's loop
stats = {"disconnects": 0, "cancelled": 0, "received": 0}


def go_event():
    global go
    if go is None:
        go = asyncio.Event()
    return go


async def count_queued(receive, kinds):
    """Messages receive() hands over before the event loop runs once: those
    the server had already queued (taking one lets it read more, but what it
    reads reaches Python only on a later loop iteration)."""
    ran = []
    asyncio.get_running_loop().call_soon(ran.append, True)
    events = size = 0
    while True:
        msg = await receive()
        if ran or msg["type"] not in kinds:
            return events, size, msg
        events += 1
        size += len(msg.get("body") or msg.get("bytes") or msg.get("text") or b"")


async def respond(send, status, body):
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


async def http(scope, receive, send):
    path = scope["path"]
    if path == "/go":
        go_event().set()
        await respond(send, 200, b"go")
    elif path == "/block":
        until = parse_qs(scope["query_string"].decode())["until"][0]
        open(until + ".blocked", "w").close()
        while not os.path.exists(until):
            time.sleep(0.05)  # blocks the event loop on purpose
        await respond(send, 200, b"unblocked")
    elif path == "/stats":
        await respond(send, 200, json.dumps(stats).encode())
    elif path == "/hoard":
        await go_event().wait()
        events, size, _ = await count_queued(receive, ("http.request",))
        await respond(send, 200, f"{events} {size}".encode())
    elif path == "/never":
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            stats["cancelled"] += 1
            raise
    else:
        await respond(send, 200, b"hello")


async def websocket(scope, receive, send):
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    if scope["path"] == "/hoard":
        await go_event().wait()
        events, size, _ = await count_queued(receive, ("websocket.receive",))
        await send({"type": "websocket.send", "text": f"{events} {size}"})
        await send({"type": "websocket.close", "code": 1000})
    elif scope["path"] == "/never":
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            stats["cancelled"] += 1
            raise
    elif scope["path"] == "/recv-disconnect":
        # reads only after /go: its receive() must then see the disconnect
        await go_event().wait()
        while (await receive())["type"] != "websocket.disconnect":
            stats["received"] += 1
        stats["disconnects"] += 1


app = asgi_app(http, websocket)
