"""ASGI app for tests/faults/test_refleak_churn.py (run from this directory:
`refleak_app:app`): apps that push to a client that never reads, so that their
send() waits for the socket, and the Python allocator's block count.

HTTP routes:
  /stream             a chunked body of 64 KiB parts until send() raises
  /blocks             JSON {"blocks": sys.getallocatedblocks()} after gc.collect()
  /stats              JSON of STATS
WebSocket routes:
  /push               accept; 64 KiB binary messages until send() raises

STATS: "waiting" counts apps whose send() is waiting now (it returned a future,
not a ready result); "failed" those whose waiting send() raised OSError (the
client left); "finished" the push apps that returned.
"""

import asyncio
import gc
import json
import os
import sys

# the helpers shared by the test apps (integration/apps/common.py; this app runs from its own folder)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "integration", "apps"))
from common import asgi_app  # noqa: E402

STATS = {"waiting": 0, "failed": 0, "finished": 0}
BLOCK = b"r" * 65536


async def push_until_gone(send, message):
    """send(message) until it raises; True if it raised while waiting."""
    try:
        while True:
            awaitable = send(message)
            waiting = isinstance(awaitable, asyncio.Future)
            STATS["waiting"] += waiting
            try:
                await awaitable
            finally:
                STATS["waiting"] -= waiting
    except OSError:
        STATS["failed"] += waiting
    finally:
        STATS["finished"] += 1


async def respond_json(send, obj):
    body = json.dumps(obj).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


async def http(scope, receive, send):
    msg = await receive()
    assert msg["type"] == "http.request" and not msg.get("more_body"), msg
    if scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await push_until_gone(send, {"type": "http.response.body", "body": BLOCK, "more_body": True})
    elif scope["path"] == "/blocks":
        gc.collect()
        await respond_json(send, {"blocks": sys.getallocatedblocks()})
    else:
        await respond_json(send, STATS)


async def websocket(scope, receive, send):
    msg = await receive()
    assert msg["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    await push_until_gone(send, {"type": "websocket.send", "bytes": BLOCK})


app = asgi_app(http, websocket)
