"""ASGI app for tests/faults (run from this directory: `fault_app:app`):
applications that fail, hang or block, and counters the tests read back.

WebSocket routes:
  /echo               accept, echo every message
  /raise-connect      raise on websocket.connect (before accepting)
  /raise-receive      accept, echo; raise on the first message containing "boom"
  /raise-disconnect   accept, echo; raise when websocket.disconnect arrives
  /never-return       accept; after the disconnect, sleep for an hour (cancelled
                      by --application-close-timeout: counted in "cancelled")
  /block              accept; a text "block S" blocks the event loop with
                      time.sleep(S), then answers "unblocked"; "block-until F"
                      creates F.blocked, blocks until the file F exists (at
                      most 120 s), then answers "unblocked"
  /push?mb=N          accept; send N MiB in 64 KiB binary messages, count when done
HTTP routes:
  /hello              200 "hello"
  /upload             read the body, then 200 "hello"; an http.disconnect while
                      reading (counted in "request_disconnects") ends it
  /raise              raise before responding
  /raise-mid          start a streamed response, send a part, then raise
  /never              never respond (until cancelled)
  /block?s=S          time.sleep(S) on the event loop, then 200
  /stream?mb=N        N MiB as a streamed (chunked) body; when send() fails, the
                      next receive()'s type goes in "stream_after_fail"
  /race-final         a second task's paced 256 KiB body still waits for the client
                      when the first ends the response: "race_woken" when that
                      send() returns, "race_stuck" when it fails or waits 30 s
  /gc                 JSON {"objects": ...} after gc.collect() (?types=N: the N
                      most common types too)
  /stats              JSON of the counters below
"""

import asyncio
import gc
import os
import sys
import time

# the helpers shared by the test apps (integration/apps/common.py; this app runs from its own folder)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "integration", "apps"))
from common import asgi_app, query as params, send_json, send_response  # noqa: E402

STATS = {"raised": 0, "cancelled": 0, "disconnects": 0, "pushed": 0, "push_failed": 0, "streamed": 0,
         "stream_failed": 0, "stream_after_fail": None, "request_disconnects": 0,
         "race_woken": 0, "race_stuck": 0}


async def http(scope, receive, send):
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            STATS["request_disconnects"] += 1
            if scope["path"] == "/upload":
                return  # the request was cut short: nobody to answer
            break
        if not msg.get("more_body"):
            break
    path, q = scope["path"], params(scope)
    if path == "/raise":
        STATS["raised"] += 1
        raise RuntimeError("fault_app: raising before the response, on purpose")
    if path == "/raise-mid":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        STATS["raised"] += 1
        raise RuntimeError("fault_app: raising mid-response, on purpose")
    if path == "/never":
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            STATS["cancelled"] += 1
            raise
    elif path == "/block":
        time.sleep(float(q.get("s", "1")))  # blocks the event loop on purpose
        await send_response(send, 200, b"unblocked")
    elif path == "/stream":
        total = int(float(q.get("mb", "1")) * 1024 * 1024)
        block = b"s" * 65536
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        sent = 0
        try:
            while sent < total:
                await send({"type": "http.response.body", "body": block, "more_body": True})
                sent += len(block)
            await send({"type": "http.response.body", "body": b""})
            STATS["streamed"] += 1
        except OSError:
            STATS["stream_failed"] += 1
            # what receive() says now that the client is gone (http.disconnect)
            msg = await asyncio.wait_for(receive(), 5)
            STATS["stream_after_fail"] = msg["type"]
    elif path == "/race-final":
        # another task's paced body is still waiting when this one ends the response
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        waiter = asyncio.ensure_future(send({"type": "http.response.body", "body": b"r" * 262144,
                                             "more_body": True}))
        await asyncio.sleep(0)  # the waiter posts its body and waits for the client
        await send({"type": "http.response.body", "body": b""})
        try:
            await asyncio.wait_for(waiter, 30)
            STATS["race_woken"] += 1
        except (asyncio.TimeoutError, OSError):
            STATS["race_stuck"] += 1
    elif path == "/gc":
        gc.collect()
        info = {"objects": len(gc.get_objects())}
        if q.get("types"):  # the most common types, to name a leak
            counts = {}
            for o in gc.get_objects():
                name = type(o).__qualname__
                counts[name] = counts.get(name, 0) + 1
            info["types"] = dict(sorted(counts.items(), key=lambda kv: -kv[1])[:int(q["types"])])
        await send_json(send, info)
    elif path == "/stats":
        await send_json(send, STATS)
    else:
        await send_response(send, 200, b"hello")


async def echo_until_disconnect(receive, send, on_message=None):
    while True:
        msg = await receive()
        if msg["type"] == "websocket.disconnect":
            STATS["disconnects"] += 1
            return msg
        if on_message is not None:
            await on_message(msg)
            continue
        try:
            if msg.get("text") is not None:
                await send({"type": "websocket.send", "text": msg["text"]})
            else:
                await send({"type": "websocket.send", "bytes": msg.get("bytes") or b""})
        except OSError:
            pass


async def websocket(scope, receive, send):
    path, q = scope["path"], params(scope)
    msg = await receive()
    assert msg["type"] == "websocket.connect"
    if path == "/raise-connect":
        STATS["raised"] += 1
        raise RuntimeError("fault_app: raising on connect, on purpose")
    await send({"type": "websocket.accept"})
    if path == "/raise-receive":
        async def boom(msg):
            if "boom" in (msg.get("text") or ""):
                STATS["raised"] += 1
                raise RuntimeError("fault_app: raising in receive, on purpose")
            await send({"type": "websocket.send", "text": msg.get("text") or ""})
        await echo_until_disconnect(receive, send, boom)
    elif path == "/raise-disconnect":
        await echo_until_disconnect(receive, send)
        STATS["raised"] += 1
        raise RuntimeError("fault_app: raising on disconnect, on purpose")
    elif path == "/never-return":
        await echo_until_disconnect(receive, send)
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            STATS["cancelled"] += 1
            raise
    elif path == "/block":
        async def block(msg):
            text = msg.get("text") or ""
            if text.startswith("block "):
                time.sleep(float(text.split()[1]))  # blocks the event loop on purpose
                await send({"type": "websocket.send", "text": "unblocked"})
            elif text.startswith("block-until "):
                release = text.split(None, 1)[1]
                open(release + ".blocked", "w").close()  # the test knows Python is asleep
                deadline = time.monotonic() + 120
                while not os.path.exists(release) and time.monotonic() < deadline:
                    time.sleep(0.05)  # blocks the event loop on purpose
                await send({"type": "websocket.send", "text": "unblocked"})
            else:
                await send({"type": "websocket.send", "text": text})
        await echo_until_disconnect(receive, send, block)
    elif path == "/push":
        total = int(float(q.get("mb", "1")) * 1024 * 1024)
        block = b"p" * 65536
        sent = 0
        try:
            while sent < total:
                await send({"type": "websocket.send", "bytes": block})
                sent += len(block)
            STATS["pushed"] += 1
        except OSError:
            STATS["push_failed"] += 1
        await echo_until_disconnect(receive, send)
    else:
        await echo_until_disconnect(receive, send)


app = asgi_app(http, websocket)
