"""Shutdown with a channels_redis layer (real redis-server): the layer's own
receive task is not an application task, so a clean stop warns of nothing; an
app task really still running is still reported."""

import json
import signal

import pytest
from harness import SANITIZED

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


@pytest.mark.xfail(SANITIZED, strict=False, reason=(
    "open defect: under ASan an AsyncWebsocketConsumer on channels_redis sometimes never returns "
    "after its disconnect (about 2 runs in 10; the server cancels it after "
    "--application-close-timeout, and LSan then reports one 56-byte tuple); found 2026-12-05, "
    "not yet explained"))
def test_chat_over_redis_stops_without_warnings(redis_url, chproj_db, start_server):
    server = start_server(APP, env=chproj_env(chproj_db, redis_url))
    stats(server)  # Django's first request (slow under sanitizers) before the WebSocket deadlines
    room = "leaving"

    async def go():
        for kind in ("async", "sync"):
            async with connect(server, f"/ws/{kind}/chat/{room}/") as ws:
                await ws.send(json.dumps({"message": "bye"}))
                assert (await recv_json(ws))["message"] == "bye"

    run(go())
    wait_group_size(server, f"chat_{room}", 0)  # every client left before the stop
    rc, _ = server.stop(signal.SIGTERM, grace=20)
    assert rc == 0, server.describe()
    assert "WARNING" not in server.stderr and "ERROR" not in server.stderr, server.stderr
