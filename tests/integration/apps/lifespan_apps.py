"""Apps for the lifespan tests.  LIFESPAN_OUT (env) names a file that gets one JSON line
per event."""

import asyncio
import os

from common import jsonable, read_body, report, send_json, send_response, serve_lifespan

OUT = os.environ.get("LIFESPAN_OUT")


async def full(scope, receive, send):
    """Complete startup/shutdown, puts a token into the lifespan state."""
    if scope["type"] == "lifespan":
        report(OUT, event="lifespan-scope", has_state="state" in scope,
               asgi=jsonable(scope.get("asgi")))
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                if "state" in scope:
                    scope["state"]["token"] = "startup-token-42"
                await asyncio.sleep(0.05)
                report(OUT, event="startup")
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                report(OUT, event="shutdown")
                await send({"type": "lifespan.shutdown.complete"})
                return
    elif scope["type"] == "http":
        await read_body(receive)
        report(OUT, event="http", path=scope["path"])
        state = scope.get("state")
        await send_json(send, {"has_state": state is not None,
                               "state": jsonable(dict(state)) if state is not None else None})
        if state is not None:
            state["mutated-by"] = scope["path"]  # must not leak into later requests


async def startup_fails(scope, receive, send):
    if scope["type"] == "lifespan":
        msg = await receive()
        assert msg["type"] == "lifespan.startup"
        await send({"type": "lifespan.startup.failed", "message": "database unreachable: xyzzy-7"})
        return
    await read_body(receive)
    await send_response(send, 200, b"should not be served")


async def recorder(scope, receive, send):
    """Records every scope type it is called with; handles lifespan if it gets it."""
    report(OUT, event="scope", type=scope["type"])
    if scope["type"] == "lifespan":
        await serve_lifespan(receive, send)
        return
    await read_body(receive)
    await send_response(send, 200, b"recorded")


async def no_lifespan(scope, receive, send):
    """An app that does not support lifespan: raises for anything but http."""
    if scope["type"] != "http":
        report(OUT, event="raised", type=scope["type"])
        raise RuntimeError("this app only speaks http, not %s" % scope["type"])
    await read_body(receive)
    await send_response(send, 200, b"served without lifespan")
