"""A plain ASGI app for the install tests: a WebSocket echo whose "whoami"
message answers with the interpreter serving it (no Django: every CPython)."""

import json
import sys

import bayleaf


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "websocket":
        raise ValueError("websocket only")
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text == "whoami":
            text = json.dumps({"version": sys.version.split()[0], "prefix": sys.prefix,
                               "base_prefix": sys.base_prefix, "bayleaf": bayleaf.__file__})
        await send({"type": "websocket.send", "text": text})
