"""Raw ASGI 3 WebSocket test app: `ws_app:app` (used by tests/integration/ws/).

WebSocket routes (first path segment; ?out=FILE makes the app append JSON lines
describing what happened to FILE):
  /echo        accept; send every message back (text as text, bytes as bytes);
               reports {"event": "disconnect", "code", "reason"} at the end
               (?log=1: also {"event": "received", "message"} for every message)
  /scope       accept; send the scope as JSON text (apps/common.py:jsonable), then echo
  /accept      ?sub=NAME  accept with that subprotocol; ?hdr=name:value (repeatable)
               extra headers on the 101; then sends "sub=<scope subprotocols>" and echoes
  /reject      websocket.close before accept (-> 403); reports the next receive()
  /deny        denial response: ?status=401, JSON body in two parts, custom headers
  /raise       raise before accept (-> 500)
  /raise-open  accept, then raise (-> close 1011)
  /return-open accept, then return without closing (-> close 1000)
  /never       never answer the handshake; reports what receive() returns next
  /close       accept, ?before=N text messages, then websocket.close with ?code=&reason=;
               reports the next receive() ("close-raised" if the close itself raised)
  /send-return accept, send ?n= binary messages "<i>:rrr...", return without closing
  /linger      outlives its client (?mode=receive|sleep); reports {"event": "cancelled",
               "after"} when cancelled (--application-close-timeout)
  /bad-text    accept, try sending a str with a lone surrogate; then sends
               "raised <ExcName>" or "no exception"; then echoes
  /after       accept; wait for websocket.disconnect; then try websocket.send and
               report what was raised ({"event": "late-send", "exc", "is_oserror"})
  /push        accept; send ?total= bytes in ?chunk= sized binary messages; reports
               {"event": "pushed", "bytes"} when done (or "push-failed" on error)
  /slow        accept; receive with ?delay= seconds of sleep per message; reports
               {"event": "slow-done", "messages", "bytes", "code"} at disconnect
  /fanout      accept; push ?total= bytes in ?chunk= messages; counted in STATS
HTTP routes:
  /hello       200 "hello"
  /stats       JSON of STATS (the /fanout counters)
"""

import asyncio
import json

from common import jsonable, query, report, send_json, send_response, serve_lifespan

STATS = {"accepted": 0, "active": 0, "pushed": 0, "finished": 0, "errors": 0}


def out_of(scope):
    return query(scope).get("out")


def header_params(scope):
    """?hdr=name:value (repeatable) -> [(b"name", b"value")]."""
    from urllib.parse import parse_qs
    q = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    out = []
    for item in q.get("hdr", []):
        name, _, value = item.partition(":")
        out.append((name.encode("latin-1"), value.encode("latin-1")))
    return out


async def expect_connect(receive):
    msg = await receive()
    assert msg["type"] == "websocket.connect", msg
    return msg


async def echo_loop(scope, receive, send, out):
    log = query(scope).get("log") == "1"
    while True:
        msg = await receive()
        if log:
            report(out, event="received", message=jsonable(msg))
        if msg["type"] == "websocket.disconnect":
            report(out, event="disconnect", code=msg.get("code"), reason=msg.get("reason"))
            return
        if msg["type"] != "websocket.receive":
            report(out, event="unexpected", message=jsonable(msg))
            return
        try:
            if msg.get("text") is not None:
                await send({"type": "websocket.send", "text": msg["text"]})
            else:
                await send({"type": "websocket.send", "bytes": msg.get("bytes") or b""})
        except OSError as exc:
            # the connection failed while the message was on its way: receive()
            # must still end with websocket.disconnect
            report(out, event="send-failed", exc=type(exc).__name__)


async def ws_echo(scope, receive, send):
    await expect_connect(receive)
    await send({"type": "websocket.accept"})
    await echo_loop(scope, receive, send, out_of(scope))


async def ws_scope(scope, receive, send):
    await expect_connect(receive)
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": json.dumps(jsonable(scope))})
    await echo_loop(scope, receive, send, out_of(scope))


async def ws_accept(scope, receive, send):
    await expect_connect(receive)
    msg = {"type": "websocket.accept", "headers": header_params(scope)}
    sub = query(scope).get("sub")
    if sub:
        msg["subprotocol"] = sub
    await send(msg)
    await send({"type": "websocket.send", "text": "sub=" + ",".join(scope.get("subprotocols", []))})
    await echo_loop(scope, receive, send, out_of(scope))


async def ws_reject(scope, receive, send):
    await expect_connect(receive)
    await send({"type": "websocket.close"})
    msg = await asyncio.wait_for(receive(), 10)
    report(out_of(scope), event="after-reject", message=jsonable(msg))


async def ws_deny(scope, receive, send):
    await expect_connect(receive)
    status = int(query(scope).get("status", 401))
    body = json.dumps({"error": "denied", "path": scope["path"]}).encode()
    await send({"type": "websocket.http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"x-denied", b"yes"),
                            (b"content-length", str(len(body)).encode())]})
    half = len(body) // 2
    await send({"type": "websocket.http.response.body", "body": body[:half], "more_body": True})
    await send({"type": "websocket.http.response.body", "body": body[half:]})


async def ws_raise(scope, receive, send):
    await expect_connect(receive)
    raise RuntimeError("ws_app: failing before accept on purpose")


async def ws_raise_open(scope, receive, send):
    await expect_connect(receive)
    await send({"type": "websocket.accept"})
    raise RuntimeError("ws_app: failing after accept on purpose")


async def ws_return_open(scope, receive, send):
    await expect_connect(receive)
    await send({"type": "websocket.accept"})


async def ws_never(scope, receive, send):
    await expect_connect(receive)
    report(out_of(scope), event="connected")
    msg = await asyncio.wait_for(receive(), 30)
    report(out_of(scope), event="never-answered", message=jsonable(msg))


async def ws_close(scope, receive, send):
    await expect_connect(receive)
    await send({"type": "websocket.accept"})
    q = query(scope)
    for i in range(int(q.get("before", 0))):
        await send({"type": "websocket.send", "text": f"msg {i}"})
    msg = {"type": "websocket.close"}
    if "code" in q:
        msg["code"] = int(q["code"])
    if "reason" in q:
        msg["reason"] = q["reason"]
    try:
        await send(msg)
    except Exception as exc:
        report(out_of(scope), event="close-raised", exc=type(exc).__name__, text=str(exc))
        raise
    nxt = await asyncio.wait_for(receive(), 15)
    report(out_of(scope), event="after-close", message=jsonable(nxt))


async def ws_send_then_return(scope, receive, send):
    await expect_connect(receive)
    await send({"type": "websocket.accept"})
    for i in range(int(query(scope).get("n", 100))):
        await send({"type": "websocket.send", "bytes": b"%d:" % i + b"r" * 1000})


async def ws_linger(scope, receive, send):
    """Outlives its client: ?mode=receive waits for the disconnect then sleeps;
    ?mode=sleep never calls receive() again. Reports when it gets cancelled."""
    import time
    out = out_of(scope)
    await expect_connect(receive)
    await send({"type": "websocket.accept"})
    report(out, event="accepted")
    t0 = time.monotonic()
    try:
        if query(scope).get("mode", "receive") == "receive":
            msg = await receive()
            t0 = time.monotonic()
            report(out, event="received", message=jsonable(msg))
        await asyncio.sleep(60)
        report(out, event="slept-through")
    except asyncio.CancelledError:
        report(out, event="cancelled", after=time.monotonic() - t0)
        raise


async def ws_bad_text(scope, receive, send):
    await expect_connect(receive)
    await send({"type": "websocket.accept"})
    try:
        await send({"type": "websocket.send", "text": "lone surrogate \ud800"})
    except Exception as exc:
        await send({"type": "websocket.send", "text": "raised " + type(exc).__name__})
    else:
        await send({"type": "websocket.send", "text": "no exception"})
    await echo_loop(scope, receive, send, out_of(scope))


async def ws_after(scope, receive, send):
    await expect_connect(receive)
    await send({"type": "websocket.accept"})
    out = out_of(scope)
    while True:
        msg = await asyncio.wait_for(receive(), 30)
        if msg["type"] == "websocket.disconnect":
            report(out, event="disconnect", code=msg.get("code"), reason=msg.get("reason"))
            break
    try:
        await send({"type": "websocket.send", "text": "too late"})
    except BaseException as exc:  # noqa: B902 - reporting exactly what was raised
        report(out, event="late-send", exc=type(exc).__name__, is_oserror=isinstance(exc, OSError))
        return
    report(out, event="late-send", exc=None, is_oserror=False)


async def ws_push(scope, receive, send):
    q = query(scope)
    total, chunk = int(q.get("total", 1 << 20)), int(q.get("chunk", 65536))
    out = out_of(scope)
    await expect_connect(receive)
    await send({"type": "websocket.accept"})
    block = bytes(range(256)) * (chunk // 256) + bytes(chunk % 256)
    sent = 0
    try:
        while sent < total:
            n = min(chunk, total - sent)
            await send({"type": "websocket.send", "bytes": block if n == chunk else block[:n]})
            sent += n
    except Exception as exc:
        report(out, event="push-failed", bytes=sent, exc=type(exc).__name__)
        return
    report(out, event="pushed", bytes=sent)
    await echo_loop(scope, receive, send, out)


async def ws_slow(scope, receive, send):
    delay = float(query(scope).get("delay", 0.01))
    out = out_of(scope)
    await expect_connect(receive)
    await send({"type": "websocket.accept"})
    messages = nbytes = 0
    while True:
        msg = await receive()
        if msg["type"] == "websocket.disconnect":
            report(out, event="slow-done", messages=messages, bytes=nbytes, code=msg.get("code"))
            return
        messages += 1
        nbytes += len(msg.get("bytes") or b"") + len((msg.get("text") or "").encode())
        await asyncio.sleep(delay)


async def ws_fanout(scope, receive, send):
    q = query(scope)
    total, chunk = int(q.get("total", 1 << 20)), int(q.get("chunk", 16384))
    await expect_connect(receive)
    await send({"type": "websocket.accept"})
    STATS["accepted"] += 1
    STATS["active"] += 1
    block = b"f" * chunk
    try:
        sent = 0
        while sent < total:
            await send({"type": "websocket.send", "bytes": block})
            sent += chunk
            STATS["pushed"] += chunk
        STATS["finished"] += 1
        while (await receive())["type"] != "websocket.disconnect":
            pass
    except OSError:
        STATS["errors"] += 1
    finally:
        STATS["active"] -= 1


WS_ROUTES = {
    "echo": ws_echo, "scope": ws_scope, "accept": ws_accept, "reject": ws_reject, "deny": ws_deny,
    "raise": ws_raise, "raise-open": ws_raise_open, "return-open": ws_return_open,
    "never": ws_never, "close": ws_close, "after": ws_after, "push": ws_push, "slow": ws_slow,
    "fanout": ws_fanout, "send-return": ws_send_then_return, "bad-text": ws_bad_text,
    "linger": ws_linger,
}


async def http(scope, receive, send):
    while True:  # drain the request body
        msg = await receive()
        if msg["type"] != "http.request" or not msg.get("more_body"):
            break
    first = scope["path"].strip("/").split("/")[0]
    if first == "stats":
        await send_json(send, STATS)
    else:
        await send_response(send, 200, b"hello")


async def app(scope, receive, send):
    kind = scope["type"]
    if kind == "lifespan":
        def mark_state():
            if "state" in scope:
                scope["state"]["from_lifespan"] = "ws_app"  # must show up in every scope

        await serve_lifespan(receive, send, mark_state)
    elif kind == "http":
        await http(scope, receive, send)
    elif kind == "websocket":
        first = scope["path"].strip("/").split("/")[0]
        await WS_ROUTES.get(first, ws_echo)(scope, receive, send)
    else:
        raise ValueError("unsupported scope type %r" % kind)
