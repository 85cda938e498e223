"""Misbehaving app: `errors:app`.

  /ok                 200 "ok"
  /raise-before?tag=T raises RuntimeError("boom-before-T") before starting a response
  /raise-after?tag=T  starts a response, sends part of the body, then raises
                      (?cl=1: with a Content-Length larger than what is sent)
  /no-response        returns without sending anything
  /sleep?s=S          sleeps S seconds (default 3), then responds 200 "late"
                      (?out=FILE: then reports {"event": "late-send", "result": ...})

`errors:misbehaving` adds invalid message sequences (see _misbehave).
"""

import asyncio

from common import http_app, query, read_body, report, send_response


async def _dispatch(scope, receive, send):
    path = scope["path"]
    q = query(scope)
    tag = q.get("tag", "x")
    if path == "/raise-before":
        raise RuntimeError("boom-before-" + tag)
    if path == "/raise-after":
        headers = [(b"content-type", b"text/plain")]
        if q.get("cl") == "1":
            headers.append((b"content-length", b"1000"))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"partial-body", "more_body": True})
        await asyncio.sleep(0.05)
        raise RuntimeError("boom-after-" + tag)
    if path == "/no-response":
        await read_body(receive)
        return
    if path == "/sleep":
        await asyncio.sleep(float(q.get("s", 3)))
        try:
            await send_response(send, 200, b"late")
            result = "sent"
        except OSError as exc:
            result = type(exc).__name__
        report(q.get("out"), event="late-send", result=result)
        return
    await read_body(receive)
    await send_response(send, 200, b"ok")


app = http_app(_dispatch)


async def _misbehave(scope, receive, send):
    """/body-before-start: sends a body message first;  /bad-header: a str header name;
    /double-start: two http.response.start messages."""
    path = scope["path"]
    if path == "/body-before-start":
        await send({"type": "http.response.body", "body": b"nope"})
    elif path == "/bad-header":
        await send({"type": "http.response.start", "status": 200, "headers": [("x-str", "not bytes")]})
        await send({"type": "http.response.body", "body": b"nope"})
    elif path == "/double-start":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.start", "status": 200, "headers": []})
    elif path == "/connection-close":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"connection", b"close"), (b"content-length", b"3")]})
        await send({"type": "http.response.body", "body": b"bye"})
    elif path == "/many-headers":
        headers = [(b"set-cookie", b"c%d=v%d; Path=/" % (i, i)) for i in range(5)]
        headers += [(b"x-resp-%d" % i, b"w" * 500) for i in range(60)]
        headers += [(b"x-latin1", b"caf\xe9"), (b"content-length", b"4")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"many"})
    elif path == "/short-body":  # Content-Length 100, only 10 bytes, then done
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"100")]})
        await send({"type": "http.response.body", "body": b"0123456789"})
    elif path == "/long-body":  # Content-Length 5, 5 bytes then more
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"5")]})
        try:
            await send({"type": "http.response.body", "body": b"12345", "more_body": True})
            await send({"type": "http.response.body", "body": b"EXTRA-BYTES-AFTER-LENGTH"})
        except Exception:  # noqa: BLE001 - the server may refuse the excess
            pass
    elif path == "/long-first-body":  # Content-Length 5, 100 KB in the first body message
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"5")]})
        try:
            await send({"type": "http.response.body", "body": b"x" * 100_000, "more_body": True})
        except Exception:  # noqa: BLE001 - the server may refuse the excess
            pass
    elif path == "/empty-chunks":  # empty more_body messages in the middle of a stream
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for piece in [b"a", b"", b"b", b"", b"", b"c"]:
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    elif path.startswith("/status/"):
        code = int(path.rsplit("/", 1)[1])
        await send({"type": "http.response.start", "status": code, "headers": []})
        await send({"type": "http.response.body", "body": b""})
    else:
        await _dispatch(scope, receive, send)


misbehaving = http_app(_misbehave)
