"""Raw ASGI app of the topics tests (tests/integration/topics/): `topics_app:app`.

WebSocket /ws (?topics=a,b subscribes at once; ?conflate=1): after the accept,
every text message from the client is a JSON command, answered with a text
message "ctl:<json>" (topic messages are everything else):
  {"op": "sub", "topics": [...], "conflate": bool}    bayleaf.subscribe
  {"op": "unsub", "topics": [...]}                    bayleaf.unsubscribe
  {"op": "send", "msg": {...}}                        send() of any message: the
                                                       reply names the exception
  {"op": "publish", "topic", "text"|"hex", "retain"}  topics.publish from here
  {"op": "say", "text"}                               sends "say:<text>" (an app message)
  {"op": "ext"}                                       the scope's extensions
HTTP:
  /publish?topic=&n=&size=&retain=&start=&via=loop|thread|sync   publish n messages
          "<i>:<padding>" (size bytes, i from start) from the loop, a new thread, or a sync
          function run through asgiref's sync_to_async (a sync view's path);
          answers "published <n>" once every publish() returned
  /hello  200
"""

import asyncio
import json
import threading

from asgiref.sync import sync_to_async

from bayleaf import topics
from common import query, send_response, serve_lifespan


def payload(i, size):
    head = f"{i}:"
    return head + "x" * max(0, size - len(head))


def publish_many(topic, n, size, retain, binary=False, start=0):
    for i in range(start, start + n):
        if binary:
            topics.publish(topic, bytes=payload(i, size).encode(), retain=retain)
        else:
            topics.publish(topic, text=payload(i, size), retain=retain)


async def http(scope, receive, send):
    q = query(scope)
    if scope["path"] == "/publish":
        topic, n, size = q["topic"], int(q.get("n", "1")), int(q.get("size", "8"))
        retain, via = q.get("retain") == "1", q.get("via", "loop")
        binary, start = q.get("binary") == "1", int(q.get("start", "0"))
        if via == "thread":
            t = threading.Thread(target=publish_many, args=(topic, n, size, retain, binary, start))
            t.start()
            await asyncio.get_running_loop().run_in_executor(None, t.join)
        elif via == "sync":
            await sync_to_async(publish_many)(topic, n, size, retain, binary, start)
        else:
            publish_many(topic, n, size, retain, binary, start)
        await send_response(send, 200, f"published {n}".encode())
        return
    await send_response(send, 200, b"hello")


async def ctl(send, **data):
    await send({"type": "websocket.send", "text": "ctl:" + json.dumps(data)})


async def websocket(scope, receive, send):
    msg = await receive()
    assert msg["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    q = query(scope)
    if q.get("topics"):
        await send({"type": "bayleaf.subscribe", "topics": q["topics"].split(","),
                    "conflate": q.get("conflate") == "1"})
    while True:
        msg = await receive()
        if msg["type"] == "websocket.disconnect":
            return
        cmd = json.loads(msg.get("text") or "{}")
        op = cmd.get("op")
        try:
            if op == "sub":
                m = {"type": "bayleaf.subscribe", "topics": cmd["topics"]}
                if "conflate" in cmd:
                    m["conflate"] = cmd["conflate"]
                await send(m)
            elif op == "unsub":
                await send({"type": "bayleaf.unsubscribe", "topics": cmd["topics"]})
            elif op == "send":
                await send(cmd["msg"])
            elif op == "publish":
                if "hex" in cmd:
                    topics.publish(cmd["topic"], bytes=bytes.fromhex(cmd["hex"]), retain=cmd.get("retain", False))
                else:
                    topics.publish(cmd["topic"], text=cmd["text"], retain=cmd.get("retain", False))
            elif op == "say":
                await send({"type": "websocket.send", "text": "say:" + cmd["text"]})
            elif op == "ext":
                await ctl(send, ext=sorted(scope.get("extensions", {})))
                continue
        except Exception as e:  # the reply names it: what the tests assert
            await ctl(send, op=op, error=type(e).__name__, message=str(e))
            continue
        await ctl(send, op=op, ok=True)


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await serve_lifespan(receive, send)
    elif scope["type"] == "http":
        await http(scope, receive, send)
    else:
        await websocket(scope, receive, send)
