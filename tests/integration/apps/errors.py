"""Misbehaving app: `errors:app`.

  /ok                 200 "ok"
  /raise-before?tag=T raises RuntimeError("boom-before-T") before starting a response
  /raise-after?tag=T  starts a response, sends part of the body, then raises
                      (?cl=1: with a Content-Length larger than what is sent)
  /no-response        returns without sending anything
  /sleep?s=S          sleeps S seconds (default 3), then responds 200 "late"
"""

import asyncio

from common import http_app, query, read_body, send_response


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
        except OSError:
            pass
        return
    await read_body(receive)
    await send_response(send, 200, b"ok")


app = http_app(_dispatch)
