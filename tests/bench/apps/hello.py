"""Plain ASGI "hello world" app for the HTTP benchmark (bayleaf/uvicorn/daphne: hello:app)."""

BODY = b"Hello, world!"
HEADERS = [
    (b"content-type", b"text/plain"),
    (b"content-length", str(len(BODY)).encode("ascii")),
]


async def app(scope, receive, send):
    kind = scope["type"]
    if kind == "http":
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        await send({"type": "http.response.body", "body": BODY})
    elif kind == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    else:
        raise RuntimeError(f"hello app: unsupported scope type {kind!r}")
