"""Apps that cancel their own receive() and send() (tests/integration/test_cancel_safety.py).

?out=FILE makes an app append JSON lines to FILE (apps/common.py:report).

HTTP routes:
  /poll-body   reads the body with asyncio.wait_for(receive(), 1 ms) in a loop (?zero=1:
               every other call's timeout is 0); the timeouts are counted and the first one
               reported; responds with the body's length,
               sha256 and the number of timeouts
  /two-readers reads the body with receive() in a task while a second task polls
               receive() under a 1 ms asyncio.timeout, as Starlette's is_disconnected()
               does; whatever either takes is appended in the order it was taken (the
               reading task is cancelled once the poller took the last chunk); same
               response
  /send-timeout  pushes ?n= chunks of ?size= bytes, each send() in wait_for(.., 10 ms)
               (a timeout means "still queued", the next chunk follows); reports
               {"event": "timeout"} on the first one
  /spin        responds, then loops on receive() (http.disconnect at once) until
               /stop-spin is requested; reports how many calls it made
  /stop-spin   ends /spin's loop
  /exit        sys.exit(3) before responding
  /ok          200 "ok"
WebSocket routes:
  /poll        accept; receive with wait_for(receive(), 1 ms) (?zero=1: every other call's
               timeout is 0; ?readers=2: two tasks, each
               under asyncio.timeout(1 ms)) until the text "end"; then sends one text
               message: JSON {messages, timeouts}, the messages in the order taken
  /two-senders accept; the handler and a background task each send ?n= binary
               messages of ?size= bytes ("main:<i>:" / "bg:<i>:" + padding); the
               background task wraps each send() in wait_for(.., 10 ms) and goes on
               after a timeout; then close 1000; reports send errors
  /churn       accept; ?n= receive() calls cancelled by wait_for, then ?n= send() calls
               cancelled while the client reads nothing (8 MiB queued first); reports the Receivers and
               cancelled futures still alive after each round (none must pile up)
  /exit        accept; sys.exit(4) on the first message
  /echo        accept; echo text messages
"""

import asyncio
import gc
import hashlib
import json
import sys

from common import asgi_app, query, report

SPIN = {"stop": False}


def out_of(scope):
    return query(scope).get("out")


async def respond(send, body, status=200):
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def summary(parts, timeouts):
    data = b"".join(parts)
    return json.dumps({"length": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                       "timeouts": timeouts}).encode()


async def poll_body(scope, receive, send):
    out = out_of(scope)
    zero = query(scope).get("zero") == "1"
    parts, timeouts, calls = [], 0, 0
    while True:
        calls += 1
        try:
            # wait_for(.., 0) cancels its task before it runs, message at hand or not
            msg = await asyncio.wait_for(receive(), 0 if zero and calls % 2 else 0.001)
        except asyncio.TimeoutError:
            timeouts += 1
            if timeouts == 1:
                report(out, event="timeout")
            continue
        if msg["type"] != "http.request":
            report(out, event="unexpected", type=msg["type"])
            return
        parts.append(msg.get("body", b""))
        if not msg.get("more_body", False):
            break
    await respond(send, summary(parts, timeouts))


async def two_readers(scope, receive, send):
    out = out_of(scope)
    parts, state = [], {"timeouts": 0, "done": False}
    finished = asyncio.Event()

    def took(msg):
        # In the task that took it, at once: appended in the order taken.
        if msg["type"] != "http.request":
            report(out, event="unexpected", type=msg["type"])
            state["done"] = True
        else:
            parts.append(msg.get("body", b""))
            state["done"] = not msg.get("more_body", False)
        if state["done"]:
            finished.set()

    async def poller():
        # Starlette's is_disconnected(): "is a message there right now?"
        while not state["done"]:
            try:
                async with asyncio.timeout(0.001):
                    msg = await receive()
            except TimeoutError:
                state["timeouts"] += 1
                if state["timeouts"] == 1:
                    report(out, event="timeout")
                continue
            took(msg)

    async def reader():
        took(await receive())

    polling = asyncio.ensure_future(poller())
    while not state["done"]:
        task = asyncio.ensure_future(reader())
        end = asyncio.ensure_future(finished.wait())
        await asyncio.wait([task, end], return_when=asyncio.FIRST_COMPLETED)
        end.cancel()
        if not task.done():
            task.cancel()  # the poller took the last chunk
    await polling
    await respond(send, summary(parts, state["timeouts"]))


async def send_timeout(scope, receive, send):
    q = query(scope)
    out, n, size = out_of(scope), int(q.get("n", 64)), int(q.get("size", 65536))
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(n * size).encode())]})
    timeouts = 0
    for i in range(n):
        chunk = bytes([i % 256]) * size
        try:
            await asyncio.wait_for(send({"type": "http.response.body", "body": chunk,
                                         "more_body": i < n - 1}), 0.01)
        except asyncio.TimeoutError:
            timeouts += 1
            if timeouts == 1:
                report(out, event="timeout")
        except Exception as exc:
            report(out, event="send-failed", exc=repr(exc))
            raise
    report(out, event="done", timeouts=timeouts)


async def spin(scope, receive, send):
    out = out_of(scope)
    while (await receive()).get("more_body"):
        pass
    await respond(send, b"spinning")
    calls, types = 0, set()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 120  # never forever, whatever happens to the test
    while not SPIN["stop"] and loop.time() < deadline:
        msg = await receive()
        types.add(msg["type"])
        calls += 1
        if calls == 1:
            report(out, event="spinning")
    report(out, event="stopped", calls=calls, types=sorted(types), stopped=SPIN["stop"])


async def http_app(scope, receive, send):
    path = scope["path"]
    if path == "/poll-body":
        return await poll_body(scope, receive, send)
    if path == "/two-readers":
        return await two_readers(scope, receive, send)
    if path == "/send-timeout":
        return await send_timeout(scope, receive, send)
    if path == "/spin":
        SPIN["stop"] = False
        return await spin(scope, receive, send)
    if path == "/stop-spin":
        SPIN["stop"] = True
        return await respond(send, b"stopped")
    if path == "/exit":
        sys.exit(3)
    return await respond(send, b"ok")


async def ws_poll(scope, receive, send):
    q = query(scope)
    readers = int(q.get("readers", 1))
    parts, state = [], {"timeouts": 0, "calls": 0, "done": False}
    await send({"type": "websocket.accept"})

    async def take():
        if readers == 1:
            state["calls"] += 1
            zero = q.get("zero") == "1" and state["calls"] % 2
            return await asyncio.wait_for(receive(), 0 if zero else 0.001)
        async with asyncio.timeout(0.001):  # in this task: appended in the order taken
            return await receive()

    async def reader():
        while not state["done"]:
            try:
                msg = await take()
            except TimeoutError:
                state["timeouts"] += 1
                continue
            if msg["type"] != "websocket.receive":
                state["done"] = True
                return
            data = msg.get("text")
            if data == "end":
                state["done"] = True
                return
            parts.append(data if data is not None else msg["bytes"].decode("latin-1"))

    await asyncio.gather(*(reader() for _ in range(readers)))
    await send({"type": "websocket.send",
                "text": json.dumps({"messages": parts, "timeouts": state["timeouts"]})})
    await send({"type": "websocket.close", "code": 1000})


async def ws_two_senders(scope, receive, send):
    q = query(scope)
    out, n, size = out_of(scope), int(q.get("n", 40)), int(q.get("size", 65536))
    await send({"type": "websocket.accept"})

    def payload(tag, i):
        head = f"{tag}:{i}:".encode()
        return head + b"x" * (size - len(head))

    async def background():
        for i in range(n):
            try:
                await asyncio.wait_for(send({"type": "websocket.send", "bytes": payload("bg", i)}),
                                       0.01)
            except asyncio.TimeoutError:
                pass  # the message is queued: go on

    task = asyncio.ensure_future(background())
    try:
        for i in range(n):
            await send({"type": "websocket.send", "bytes": payload("main", i)})
        await task
        await send({"type": "websocket.close", "code": 1000})
        report(out, event="done")
    except Exception as exc:
        report(out, event="send-failed", exc=repr(exc))
        raise


def leftovers():
    """Receivers and cancelled futures still alive (a queue of dead waiters)."""
    gc.collect()
    objs = gc.get_objects()
    return {"receivers": sum(type(o).__name__ == "Receiver" for o in objs),
            "cancelled_futures": sum(type(o) is asyncio.Future and o.cancelled() for o in objs)}


async def ws_churn(scope, receive, send):
    """Cancels ?n= receive() calls, then ?n= send() calls stuck behind a client
    that reads nothing (1-byte messages once 8 MiB are queued); reports leftovers()."""
    q = query(scope)
    out, n = out_of(scope), int(q.get("n", 20000))
    await send({"type": "websocket.accept"})
    for _ in range(n):
        try:
            await asyncio.wait_for(receive(), 0.0001)
        except asyncio.TimeoutError:
            pass
    report(out, event="receive-churn", **leftovers())
    # 8 MiB: more than the kernel buffers (4 MiB send buffer at most), so
    # every later send() waits for good. A timeout leaves its message queued.
    for _ in range(128):
        try:
            await asyncio.wait_for(send({"type": "websocket.send", "bytes": b"\0" * 65536}),
                                   0.0001)
        except asyncio.TimeoutError:
            pass
    timeouts = 0
    for _ in range(n):
        try:
            await asyncio.wait_for(send({"type": "websocket.send", "bytes": b"x"}), 0.0001)
        except asyncio.TimeoutError:
            timeouts += 1
    report(out, event="send-churn", timeouts=timeouts, **leftovers())


async def ws_app(scope, receive, send):
    path = scope["path"]
    msg = await receive()
    assert msg["type"] == "websocket.connect"
    if path == "/churn":
        return await ws_churn(scope, receive, send)
    if path == "/poll":
        return await ws_poll(scope, receive, send)
    if path == "/two-senders":
        return await ws_two_senders(scope, receive, send)
    await send({"type": "websocket.accept"})
    while True:
        msg = await receive()
        if msg["type"] == "websocket.disconnect":
            return
        if path == "/exit":
            sys.exit(4)
        await send({"type": "websocket.send", "text": msg.get("text") or ""})


app = asgi_app(http_app, ws_app)
