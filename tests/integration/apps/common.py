"""Helpers shared by the raw ASGI test apps (imported from the server's cwd)."""

import hashlib
import json
from urllib.parse import parse_qs


def jsonable(obj):
    """Scope -> JSON-safe structure; bytes become {"__bytes__": latin-1 text}."""
    if isinstance(obj, (bytes, bytearray)):
        return {"__bytes__": bytes(obj).decode("latin-1")}
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return {"__repr__": repr(obj)}


def query(scope):
    q = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    return {k: v[0] for k, v in q.items()}


def report(_path, **data):
    """Append one JSON line to `path` (how apps tell the tests what happened)."""
    if not _path:
        return
    with open(_path, "a") as f:
        f.write(json.dumps(data) + "\n")
        f.flush()


async def read_body(receive):
    """Return (body, list of (chunk length, more_body))."""
    parts, chunks = [], []
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            raise ConnectionError("client disconnected while the body was read")
        data = msg.get("body", b"")
        parts.append(data)
        more = msg.get("more_body", False)
        chunks.append((len(data), more))
        if not more:
            return b"".join(parts), chunks


async def send_response(send, status=200, body=b"", headers=None, content_type=b"text/plain",
                        content_length=True):
    hdrs = [(b"content-type", content_type)] if content_type else []
    if content_length:
        hdrs.append((b"content-length", str(len(body)).encode()))
    hdrs += list(headers or [])
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": body})


async def send_json(send, data, status=200):
    await send_response(send, status, json.dumps(data).encode(), content_type=b"application/json")


async def serve_lifespan(receive, send, on_startup=None):
    """The lifespan protocol of an app with nothing to set up: complete startup
    (after on_startup(), if given) and shutdown."""
    while True:
        msg = await receive()
        if msg["type"] == "lifespan.startup":
            if on_startup is not None:
                on_startup()
            await send({"type": "lifespan.startup.complete"})
        elif msg["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def asgi_app(http=None, websocket=None):
    """An ASGI 3 app of an http and a websocket handler that also speaks lifespan properly."""

    async def app(scope, receive, send):
        kind = scope["type"]
        if kind == "lifespan":
            await serve_lifespan(receive, send)
        elif kind == "http" and http is not None:
            await http(scope, receive, send)
        elif kind == "websocket" and websocket is not None:
            await websocket(scope, receive, send)
        else:
            raise ValueError("unsupported scope type %r" % kind)

    return app


def http_app(handler):
    """Wrap an http handler into an ASGI 3 app that also speaks lifespan properly."""
    return asgi_app(http=handler)


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()
