"""Client helpers of the Django Channels tests: python3-websockets against a Server
(harness.Server), everything under a deadline."""

import asyncio
import json

import websockets

from harness import wait_until

APP = "chproj.asgi:application"
USERS = {"alice": "alice-password", "bob": "bob-password"}  # created by the chproj_db fixture
OPEN_TIMEOUT = 5
RECV_TIMEOUT = 5


def chproj_env(db, redis_url=None):
    """Environment of a chproj server: its database, and Redis or the in-memory layer."""
    return {"DJANGO_SETTINGS_MODULE": "chproj.settings", "CHPROJ_DB": str(db), "CHPROJ_REDIS_URL": redis_url or ""}


def run(coro, timeout=30):
    """Run a coroutine to completion in a fresh event loop, with an overall deadline."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def origin_of(server, host="127.0.0.1"):
    return f"http://{host}:{server.port}"


_DEFAULT = object()


def connect(server, path, origin=_DEFAULT, headers=None, **kw):
    """websockets.connect() to the server; Origin defaults to the server's own (allowed) origin."""
    if origin is _DEFAULT:
        origin = origin_of(server)
    return websockets.connect(f"ws://127.0.0.1:{server.port}{path}", origin=origin, extra_headers=headers,
                              open_timeout=OPEN_TIMEOUT, close_timeout=3, ping_interval=None,
                              max_size=None, **kw)


async def recv(ws, timeout=RECV_TIMEOUT):
    return await asyncio.wait_for(ws.recv(), timeout)


async def recv_json(ws, timeout=RECV_TIMEOUT):
    return json.loads(await recv(ws, timeout))


async def recv_many_json(ws, n, timeout=RECV_TIMEOUT):
    return [await recv_json(ws, timeout) for _ in range(n)]


async def nothing_more(ws, wait=0.3):
    """True if no message arrives within `wait` seconds."""
    try:
        msg = await asyncio.wait_for(ws.recv(), wait)
    except asyncio.TimeoutError:
        return True
    raise AssertionError(f"unexpected message {msg!r}")


async def handshake_status(server, path, **kw):
    """Status of a refused handshake (raises if the connection was accepted)."""
    try:
        async with connect(server, path, **kw):
            pass
    except websockets.exceptions.InvalidStatusCode as e:
        return e.status_code
    raise AssertionError(f"handshake to {path} was accepted")


def stats(server):
    return server.get_json("/stats/")


def group_size(server, group):
    return server.get_json(f"/groups/{group}/")["size"]


def wait_stat(server, key, count, timeout=5):
    """Wait until the server's /stats/ counter `key` reaches `count`."""
    return wait_until(lambda: stats(server).get(key, 0) >= count, timeout,
                      message=f"/stats/ {key} >= {count} (now {stats(server).get(key, 0)})")


def wait_group_size(server, group, size, timeout=5):
    return wait_until(lambda: group_size(server, group) == size or None, timeout,
                      message=f"group {group} size == {size} (now {group_size(server, group)})")
