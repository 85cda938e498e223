"""Shutdown with a channels_redis layer (real redis-server): the layer's own
receive task is not an application task, so a clean stop warns of nothing; an
app task really still running is still reported."""

import asyncio
import json
import signal

import redis

from chtools import APP, chproj_env, connect, recv_json, run, stats, wait_group_size


def test_layer_task_is_not_reported_at_shutdown(redis_url, start_server):
    server = start_server("layer_app:app", env={"LAYER_REDIS_URL": redis_url})
    assert server.request("GET", "/")[0] == 200
    rc, _ = server.stop(signal.SIGTERM, grace=20)
    assert rc == 0, server.describe()
    assert "WARNING" not in server.stderr and "ERROR" not in server.stderr, server.stderr


def test_app_task_still_running_is_reported(redis_url, start_server):
    server = start_server("layer_app:app", "--application-close-timeout", "1",
                          env={"LAYER_REDIS_URL": redis_url})
    assert server.request("GET", "/linger")[0] == 200
    rc, _ = server.stop(signal.SIGTERM, grace=20)
    assert rc == 0, server.describe()
    assert "Cancelled 1 application task(s) still running at shutdown" in server.stderr, server.stderr


def parked_receivers(redis_url):
    """Connections redis-server holds blocked in BZPOPMIN: channels_redis's
    receive() waiting on its channel, past redis-py's zero-timeout reads."""
    r = redis.Redis.from_url(redis_url)
    try:
        return sum(1 for c in r.client_list() if c.get("cmd") == "bzpopmin" and "b" in c.get("flags", ""))
    finally:
        r.close()


async def wait_parked(redis_url, count, timeout=20):
    deadline = asyncio.get_running_loop().time() + timeout
    while (now := parked_receivers(redis_url)) != count:
        assert asyncio.get_running_loop().time() < deadline, f"{now} receivers parked in BZPOPMIN, not {count}"
        await asyncio.sleep(0.02)


def test_chat_over_redis_stops_without_warnings(redis_url, chproj_db, start_server):
    """Each client leaves once its consumer's layer receive is parked in BZPOPMIN.
    Leaving earlier can hit a race outside Bayleaf: redis-py 4.3 checks a pooled
    connection with a zero async_timeout, and async_timeout 4.0.2 turns a cancel
    that lands in that window into its own TimeoutError (Python 3.11), so
    Channels' cancel of the layer receive is lost and the consumer outlives its
    client until --application-close-timeout cancels it again (then shutdown
    rightly reports it). README, "Known issues", has a standalone reproduction."""
    server = start_server(APP, env=chproj_env(chproj_db, redis_url))
    stats(server)  # Django's first request (slow under sanitizers) before the WebSocket deadlines
    room = "leaving"

    async def go():
        for kind in ("async", "sync"):
            await wait_parked(redis_url, 0)  # the previous consumer's receive has ended
            async with connect(server, f"/ws/{kind}/chat/{room}/") as ws:
                await ws.send(json.dumps({"message": "bye"}))
                assert (await recv_json(ws))["message"] == "bye"
                await wait_parked(redis_url, 1)

    run(go(), timeout=60)
    wait_group_size(server, f"chat_{room}", 0)  # every client left before the stop
    rc, _ = server.stop(signal.SIGTERM, grace=20)
    assert rc == 0, server.describe()
    assert "WARNING" not in server.stderr and "ERROR" not in server.stderr, server.stderr
