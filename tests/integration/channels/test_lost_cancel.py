"""An app whose helper task loses a cancel (async_timeout 4.0.2's race, as in
channels_redis on Debian 12: apps/lost_cancel_app.py) outlives its client; the
server cancels it again at --application-close-timeout, the cancel reaches the
helper through the app's await, and the app ends: nothing leaks (ASan build)
and the server stops cleanly."""

import asyncio
import signal

import websockets

from harness import wait_until


def test_app_that_lost_a_cancel_ends_at_the_close_timeout(start_server):
    server = start_server("lost_cancel_app:app", "--application-close-timeout", "1")

    async def visit():
        async with websockets.connect(f"ws://127.0.0.1:{server.port}/", open_timeout=30):
            pass

    asyncio.run(visit())
    wait_until(lambda: "helper lost its cancel" in server.stderr, 30, message="the helper's lost cancel")
    wait_until(lambda: "app returned" in server.stderr, 30, message="the app's end")
    assert "did not exit 1s after the client disconnected: cancelling it" in server.stderr, server.stderr
    rc, _ = server.stop(signal.SIGTERM, grace=20)
    assert rc == 0, server.describe()
    assert "Cancelled" not in server.stderr and "ERROR" not in server.stderr, server.stderr
