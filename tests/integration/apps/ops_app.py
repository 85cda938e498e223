"""The app of the operations tests (tests/integration/ops): answers whose
status, blocking and WebSocket close codes the test picks.

HTTP: /status/<code> answers that status; /block?gate=FILE blocks the event
loop (time.sleep) until FILE exists (or /block?secs=S for S seconds), then
answers 200; /big?mb=N sends N MiB in 1 MiB chunks.
WebSocket: /ws/echo echoes every message; /ws/close/<code> echoes the first
message, then closes with that code. Lifespan startup waits for the file
named by OPS_STARTUP_GATE, when set.
"""

import asyncio
import os
import time
import urllib.parse


async def lifespan(scope, receive, send):
    while True:
        msg = await receive()
        if msg["type"] == "lifespan.startup":
            gate = os.environ.get("OPS_STARTUP_GATE")
            while gate and not os.path.exists(gate):
                await asyncio.sleep(0.02)
            await send({"type": "lifespan.startup.complete"})
        elif msg["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def respond(send, status, body=b""):
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


async def http(scope, receive, send):
    path = scope["path"]
    query = urllib.parse.parse_qs(scope.get("query_string", b"").decode())
    if path.startswith("/status/"):
        status = int(path.split("/")[2])
        await respond(send, status, b"" if status < 200 or status in (204, 304) else b"status\n")
    elif path == "/block":
        # Blocks the loop on purpose, until the file named by ?gate exists (at
        # most a minute), or for ?secs.
        gate = query.get("gate", [None])[0]
        deadline = time.monotonic() + (60 if gate else float(query.get("secs", ["1"])[0]))
        while time.monotonic() < deadline and not (gate and os.path.exists(gate)):
            time.sleep(0.02)
        await respond(send, 200, b"unblocked\n")
    elif path == "/big":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        chunk = b"x" * (1 << 20)
        for _ in range(int(query.get("mb", ["64"])[0])):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    else:
        await respond(send, 200, b"hello\n")


async def websocket(scope, receive, send):
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    parts = scope["path"].strip("/").split("/")
    close_code = int(parts[2]) if len(parts) > 2 and parts[1] == "close" else None
    while True:
        msg = await receive()
        if msg["type"] == "websocket.disconnect":
            return
        out = {"type": "websocket.send"}
        if msg.get("bytes") is not None:
            out["bytes"] = msg["bytes"]
        else:
            out["text"] = msg["text"]
        await send(out)
        if close_code is not None:
            await send({"type": "websocket.close", "code": close_code})
            return


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await lifespan(scope, receive, send)
    elif scope["type"] == "http":
        await http(scope, receive, send)
    else:
        await websocket(scope, receive, send)
