"""ASGI app for tests/conformance (run from this directory: `conf_app:app`).

WebSocket, any path but /never: accept, echo every message back (text as
text, bytes as bytes); the disconnect code is remembered under ?id= for /closes.
/never: never answers the handshake (waits for the disconnect).
HTTP:
  /hello          200 "hello"
  /closes?id=X    JSON: the websocket.disconnect code the app saw for id X (or null)
  /echo           200 with the request body
  /scope          JSON: method, path, raw_path, query_string, headers, http_version
  /sleep?s=N      async sleep N seconds, then 200
  /gc             JSON {"objects": len(gc.get_objects()) after gc.collect()}
"""

import asyncio
import gc
import os
import sys

# the helpers shared by the test apps (integration/apps/common.py; this app runs from its own folder)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "integration", "apps"))
from common import asgi_app, query as params, send_json, send_response  # noqa: E402

CLOSES = {}


async def http(scope, receive, send):
    body = []
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            return
        body.append(msg.get("body", b""))
        if not msg.get("more_body"):
            break
    path, q = scope["path"], params(scope)
    if path == "/closes":
        await send_json(send, {"code": CLOSES.get(q.get("id"))})
    elif path == "/scope":
        info = {"method": scope["method"], "path": scope["path"], "http_version": scope["http_version"],
                "raw_path": scope.get("raw_path", b"").decode("latin-1"),
                "query_string": scope["query_string"].decode("latin-1"),
                "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
                "body": b"".join(body).decode("latin-1")}
        await send_json(send, info)
    elif path == "/echo":
        await send_response(send, 200, b"".join(body))
    elif path == "/sleep":
        await asyncio.sleep(float(q.get("s", "1")))
        await send_response(send, 200, b"slept")
    elif path == "/gc":
        gc.collect()
        await send_json(send, {"objects": len(gc.get_objects())})
    else:
        await send_response(send, 200, b"hello")


async def websocket(scope, receive, send):
    ident = params(scope).get("id")
    msg = await receive()
    assert msg["type"] == "websocket.connect"
    if scope["path"] == "/never":
        while (await receive())["type"] != "websocket.disconnect":
            pass
        return
    await send({"type": "websocket.accept"})
    while True:
        msg = await receive()
        if msg["type"] == "websocket.disconnect":
            if ident:
                CLOSES[ident] = msg.get("code")
            return
        try:
            if msg.get("text") is not None:
                await send({"type": "websocket.send", "text": msg["text"]})
            else:
                await send({"type": "websocket.send", "bytes": msg.get("bytes") or b""})
        except OSError:
            pass  # the connection failed meanwhile: the disconnect follows


app = asgi_app(http, websocket)
