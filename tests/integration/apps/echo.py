"""The general-purpose raw ASGI 3 test app: `echo:app`.

Routes (first path segment); every other path echoes the scope:
  /hello             fixed 14-byte body with Content-Length; never reads the request body
  /body              streams the request body: sha256, length, number of http.request messages
                     ?wait=S sleep before the first receive(); ?delay_per_mb=S sleep per MiB consumed
  /stream            ?total=N&chunk=N&delay=S&cl=1&inline_last=1  streamed response
  /wait-disconnect   ?out=FILE  read the body, then report what the next receive() returns
                     (?mode=body: report each message while the body arrives)
  /after-complete    ?out=FILE  respond, then report receive() and a late send()
  /sleep             ?s=S  sleep, then echo the scope
  /gc                JSON: {"frozen": gc.get_freeze_count(), "threshold": gc.get_threshold()}
  anything else      JSON: {"scope": ..., "body_len", "body_sha256", "chunks"}
"""

import asyncio
import gc
import hashlib
import time

from common import http_app, jsonable, query, read_body, report, send_json, send_response, sha256_hex

HELLO = b"Hello, world!\n"
BLOCKS = [bytes([ord("a") + i]) for i in range(26)]


async def echo_scope(scope, receive, send):
    body, chunks = await read_body(receive)
    await send_json(send, {"scope": jsonable(scope), "body_len": len(body),
                           "body_sha256": sha256_hex(body), "chunks": chunks})


async def hello(scope, receive, send):
    await send_response(send, 200, HELLO)


async def body(scope, receive, send):
    q = query(scope)
    if "wait" in q:
        await asyncio.sleep(float(q["wait"]))
    delay_per_mb = float(q.get("delay_per_mb", 0))
    h = hashlib.sha256()
    total = 0
    messages = 0
    more_flags = []
    since_sleep = 0
    while True:
        msg = await receive()
        if msg["type"] != "http.request":
            await send_json(send, {"error": "unexpected " + msg["type"]}, status=500)
            return
        data = msg.get("body", b"")
        h.update(data)
        total += len(data)
        messages += 1
        more_flags.append(bool(msg.get("more_body", False)))
        since_sleep += len(data)
        if delay_per_mb and since_sleep >= 1 << 20:
            await asyncio.sleep(delay_per_mb * since_sleep / (1 << 20))
            since_sleep = 0
        if not msg.get("more_body", False):
            break
    await send_json(send, {"sha256": h.hexdigest(), "length": total, "messages": messages,
                           "more_true": sum(more_flags), "last_more": more_flags[-1]})


def stream_chunk(i, size):
    return BLOCKS[i % 26] * size


async def stream(scope, receive, send):
    q = query(scope)
    total = int(q.get("total", 100000))
    chunk = int(q.get("chunk", 65536))
    delay = float(q.get("delay", 0))
    headers = [(b"content-type", b"application/octet-stream")]
    if q.get("cl") == "1":
        headers.append((b"content-length", str(total).encode()))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    inline_last = q.get("inline_last") == "1"
    sent = 0
    i = 0
    cache = {}
    while sent < total:
        n = min(chunk, total - sent)
        key = (i % 26, n)
        data = cache.get(key)
        if data is None:
            data = cache[key] = stream_chunk(i, n)
        sent += n
        i += 1
        last = sent >= total
        await send({"type": "http.response.body", "body": data, "more_body": not (last and inline_last)})
        if delay and not last:
            await asyncio.sleep(delay)
    if not inline_last or total == 0:
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def late_send(send, out):
    try:
        await send({"type": "http.response.body", "body": b"late", "more_body": False})
    except BaseException as e:  # noqa: B902 - we want to see exactly what is raised
        report(out, event="send", raised=type(e).__name__,
               mro=[c.__name__ for c in type(e).__mro__], is_oserror=isinstance(e, OSError))
    else:
        report(out, event="send", raised=None, mro=[], is_oserror=False)


async def wait_disconnect(scope, receive, send):
    """?mode=body: report every message while the body is still arriving, until a
    disconnect; otherwise read the whole body first, then wait for the next message."""
    q = query(scope)
    out = q["out"]
    if q.get("mode") == "body":
        report(out, event="waiting")
        while True:
            msg = await receive()
            report(out, event="received", type=msg["type"], more_body=msg.get("more_body"),
                   length=len(msg.get("body", b"")))
            if msg["type"] == "http.disconnect":
                break
    else:
        await read_body(receive)
        report(out, event="waiting")
        t0 = time.monotonic()
        msg = await receive()
        report(out, event="received", type=msg["type"], elapsed=time.monotonic() - t0)
    await asyncio.sleep(0.05)
    try:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"too late"})
    except BaseException as e:  # noqa: B902
        report(out, event="send", raised=type(e).__name__,
               mro=[c.__name__ for c in type(e).__mro__], is_oserror=isinstance(e, OSError))
    else:
        report(out, event="send", raised=None, mro=[], is_oserror=False)


async def after_complete(scope, receive, send):
    out = query(scope)["out"]
    await read_body(receive)
    await send_response(send, 200, b"done")
    t0 = time.monotonic()
    try:
        msg = await asyncio.wait_for(receive(), 3)
        report(out, event="received", type=msg["type"], elapsed=time.monotonic() - t0)
    except asyncio.TimeoutError:
        report(out, event="received", type="timeout", elapsed=time.monotonic() - t0)
    await late_send(send, out)


async def sleep_then_echo(scope, receive, send):
    await asyncio.sleep(float(query(scope).get("s", 0.3)))
    await echo_scope(scope, receive, send)


async def gc_state(scope, receive, send):
    await send_json(send, {"frozen": gc.get_freeze_count(), "threshold": gc.get_threshold()})


ROUTES = {
    "hello": hello,
    "body": body,
    "stream": stream,
    "wait-disconnect": wait_disconnect,
    "after-complete": after_complete,
    "sleep": sleep_then_echo,
    "gc": gc_state,
}


async def _dispatch(scope, receive, send):
    first = scope["path"].lstrip("/").split("/", 1)[0]
    await ROUTES.get(first, echo_scope)(scope, receive, send)


app = http_app(_dispatch)
