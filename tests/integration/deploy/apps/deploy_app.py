"""The raw ASGI 3 app of the deployment tests: `deploy_app:app` (no imports
beyond the standard library, so Daphne can serve it too).

HTTP routes:
  /scope          JSON: scheme, client, server, root_path, path, raw_path,
                  query_string, headers (latin-1 text)
  /hello          "hello\\n" with Content-Length
  /empty          204, no body
  /missing        404 with a body
  /stream         ?n=N&size=S: N body chunks of S bytes, no Content-Length
  /body           reads the body, answers its length
  /pid            the serving process's pid
  /sleep          ?s=S: sleeps, then answers the pid
WebSocket routes:
  /ws/scope       accept, send the scope as JSON (as /scope), then echo
  /ws/echo        accept, then echo
  /ws/reject      websocket.close before accepting (403)
"""

import asyncio
import json
import os
from urllib.parse import parse_qs


def scope_json(scope):
    return {
        "type": scope["type"],
        "scheme": scope.get("scheme"),
        "client": list(scope["client"]) if scope.get("client") else None,
        "server": list(scope["server"]) if scope.get("server") else None,
        "root_path": scope.get("root_path"),
        "path": scope["path"],
        "raw_path": (scope.get("raw_path") or b"").decode("latin-1"),
        "query_string": scope["query_string"].decode("latin-1"),
        "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
    }


def query(scope):
    return {k: v[0] for k, v in parse_qs(scope["query_string"].decode("latin-1")).items()}


async def read_body(receive):
    body = b""
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            raise ConnectionError("client went away")
        body += msg.get("body", b"")
        if not msg.get("more_body"):
            return body


async def respond(send, status, body=b"", content_type=b"text/plain", length=True):
    headers = [(b"content-type", content_type)]
    if length:
        headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def http(scope, receive, send):
    path = scope["path"]
    if path == "/scope":
        await read_body(receive)
        await respond(send, 200, json.dumps(scope_json(scope)).encode(), b"application/json")
    elif path == "/hello":
        await respond(send, 200, b"hello\n")
    elif path == "/empty":
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/missing":
        await respond(send, 404, b"no such thing\n")
    elif path == "/stream":
        q = query(scope)
        n, size = int(q.get("n", 3)), int(q.get("size", 10))
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/octet-stream")]})
        for i in range(n):
            await send({"type": "http.response.body", "body": bytes([97 + i % 26]) * size,
                        "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/body":
        body = await read_body(receive)
        await respond(send, 200, str(len(body)).encode())
    elif path == "/pid":
        await respond(send, 200, str(os.getpid()).encode())
    elif path == "/sleep":
        await asyncio.sleep(float(query(scope).get("s", 0.1)))
        await respond(send, 200, str(os.getpid()).encode())
    else:
        await respond(send, 404, b"unknown route\n")


async def websocket(scope, receive, send):
    msg = await receive()
    assert msg["type"] == "websocket.connect", msg
    if scope["path"] == "/ws/reject":
        await send({"type": "websocket.close"})
        return
    await send({"type": "websocket.accept"})
    if scope["path"] == "/ws/scope":
        await send({"type": "websocket.send", "text": json.dumps(scope_json(scope))})
    while True:
        msg = await receive()
        if msg["type"] == "websocket.disconnect":
            return
        if msg.get("text") is not None:
            await send({"type": "websocket.send", "text": msg["text"]})
        else:
            await send({"type": "websocket.send", "bytes": msg.get("bytes") or b""})


async def lifespan(scope, receive, send):
    while True:
        msg = await receive()
        if msg["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif msg["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope, receive, send):
    if scope["type"] == "http":
        await http(scope, receive, send)
    elif scope["type"] == "websocket":
        await websocket(scope, receive, send)
    elif scope["type"] == "lifespan":
        await lifespan(scope, receive, send)
