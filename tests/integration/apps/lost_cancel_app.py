"""`lost_cancel_app:app`: a WebSocket app that loses the cancel of its helper
task the way a Channels consumer on Debian 12's channels_redis can: redis-py 4.3
checks a pooled connection inside async_timeout.timeout(0), and async_timeout
4.0.2 turns a cancel that lands while that zero timeout is pending into its own
TimeoutError (Python 3.11). The helper then waits on, as BZPOPMIN does, and the
app waits for it after its client left, as Channels' await_many_dispatch does,
until --application-close-timeout cancels the app again. Writes "app returned"
to stderr when it ends."""
import asyncio
import sys

import async_timeout


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while (await receive())["type"] != "websocket.disconnect":
        pass
    gate = asyncio.get_running_loop().create_future()

    async def layer_receive():
        try:
            async with async_timeout.timeout(0):
                await gate
        except asyncio.TimeoutError:
            print("helper lost its cancel", file=sys.stderr, flush=True)
        await asyncio.sleep(3600)

    helper = asyncio.ensure_future(layer_receive())
    await asyncio.sleep(0)  # the helper is inside its zero timeout
    helper.cancel()
    try:
        await helper
    except asyncio.CancelledError:
        pass
    print("app returned", file=sys.stderr, flush=True)
