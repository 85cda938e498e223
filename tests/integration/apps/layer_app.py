"""A channels_redis layer with a receive of its own running for the whole
life of the process (as a layer's reader does), beside the app's tasks.

GET / answers 200; GET /linger answers 200, then its task keeps running (an
app task still running at shutdown). LAYER_REDIS_URL names the Redis server.
"""

import asyncio
import os

from channels_redis.core import RedisChannelLayer

layer = RedisChannelLayer(hosts=[os.environ["LAYER_REDIS_URL"]])
_background = []


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                channel = await layer.new_channel()
                _background.append(asyncio.ensure_future(layer.receive(channel)))
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok\n"})
    if scope["path"] == "/linger":
        await asyncio.sleep(3600)
