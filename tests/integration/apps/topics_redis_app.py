"""Raw ASGI app of the Redis topics tests (tests/integration/topics_redis/):
`topics_redis_app:app`, run with --workers 2 --topics-redis.

WebSocket /ws?topics=a,b: accepts, sends "pid:<worker pid>" (which worker
serves this connection), subscribes to the topics, then answers each JSON
command with "ctl:<json>" (topic messages are everything else):
  {"op": "sub", "topics": [...]}                  bayleaf.subscribe
  {"op": "publish", "topic", "text", "retain"}    topics.publish from this worker
  {"op": "ping"}                                  just the reply
HTTP: /publish?topic=&n=&prefix=  n messages "<prefix><i>" from this worker,
      /hello 200.
"""

import json
import os

from bayleaf import topics
from common import query, send_response, serve_lifespan


async def http(scope, receive, send):
    q = query(scope)
    if scope["path"] == "/publish":
        n, size = int(q.get("n", "1")), int(q.get("size", "0"))
        for i in range(n):
            text = q.get("prefix", "") + str(i)
            topics.publish(q["topic"], text=text + "x" * max(0, size - len(text)))
        await send_response(send, 200, f"published {n} from {os.getpid()}".encode())
        return
    await send_response(send, 200, b"hello")


async def websocket(scope, receive, send):
    msg = await receive()
    assert msg["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": f"pid:{os.getpid()}"})
    q = query(scope)
    if q.get("topics"):
        await send({"type": "bayleaf.subscribe", "topics": q["topics"].split(",")})
    while True:
        msg = await receive()
        if msg["type"] == "websocket.disconnect":
            return
        cmd = json.loads(msg.get("text") or "{}")
        op = cmd.get("op")
        if op == "sub":
            await send({"type": "bayleaf.subscribe", "topics": cmd["topics"]})
        elif op == "publish":
            topics.publish(cmd["topic"], text=cmd["text"], retain=cmd.get("retain", False))
        await send({"type": "websocket.send", "text": "ctl:" + json.dumps({"op": op, "ok": True})})


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await serve_lifespan(receive, send)
    elif scope["type"] == "http":
        await http(scope, receive, send)
    else:
        await websocket(scope, receive, send)
