"""An ASGI app for WebSocket beside the WSGI one: echoes every message."""


async def app(scope, receive, send):
    if scope["type"] != "websocket":
        raise RuntimeError("HTTP must go to the WSGI app, not here")
    msg = await receive()
    assert msg["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    while True:
        msg = await receive()
        if msg["type"] == "websocket.disconnect":
            return
        await send({"type": "websocket.send", "text": msg.get("text"), "bytes": msg.get("bytes")})
