"""Raw ASGI app of the Redis topics tests (tests/integration/topics_redis/):
`topics_redis_app:app`, run with --workers 2 --topics-redis.

WebSocket /ws?topics=a,b: accepts, sends "pid:<worker pid>" (which worker
serves this connection), subscribes to the topics, then answers each JSON
command with "ctl:<json>" (topic messages are everything else):
  {"op": "sub", "topics": [...]}                  bayleaf.subscribe
  {"op": "publish", "topic", "text", "retain"}    topics.publish from this worker
  {"op": "ping"}                                  just the reply
HTTP: /publish?topic=&n=&prefix=  n messages "<prefix><i>" from this worker,
      /startup  what the lifespan startup's publishes did (JSON),
      /hello 200.
With TOPICS_STARTUP_PUBLISH="topic=text[;topic=text...]" the lifespan startup
publishes each as a retained value, before the server accepts (text "*N":
N bytes of "x").
"""

import json
import os

from bayleaf import topics
from common import query, send_response, serve_lifespan

try:
    import _bayleaf
except ImportError:  # pragma: no cover - not under Bayleaf
    _bayleaf = None

# What the lifespan startup's publishes did: served by /startup.
startup = {"published": [], "native": None, "error": None}


def publish_at_startup():
    spec = os.environ.get("TOPICS_STARTUP_PUBLISH")
    if not spec:
        return
    startup["native"] = bool(_bayleaf is not None and _bayleaf.topics_active())
    try:
        for item in spec.split(";"):
            topic, text = item.split("=", 1)
            if text.startswith("*"):  # topic=*N: N bytes
                text = "x" * int(text[1:])
            topics.publish(topic, text=text, retain=True)
            startup["published"].append(topic)
    except Exception as e:  # reported by /startup
        startup["error"] = f"{type(e).__name__}: {e}"


async def http(scope, receive, send):
    q = query(scope)
    if scope["path"] == "/publish":
        n, size = int(q.get("n", "1")), int(q.get("size", "0"))
        for i in range(n):
            text = q.get("prefix", "") + str(i)
            topics.publish(q["topic"], text=text + "x" * max(0, size - len(text)))
        await send_response(send, 200, f"published {n} from {os.getpid()}".encode())
        return
    if scope["path"] == "/startup":
        await send_response(send, 200, json.dumps(startup).encode())
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
        await serve_lifespan(receive, send, on_startup=publish_at_startup)
    elif scope["type"] == "http":
        await http(scope, receive, send)
    else:
        await websocket(scope, receive, send)
