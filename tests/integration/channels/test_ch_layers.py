"""Groups through the InMemoryChannelLayer within one server process (apps/chproj).

The four chat consumers (AsyncWebsocketConsumer, WebsocketConsumer,
AsyncJsonWebsocketConsumer, JsonWebsocketConsumer) join group chat_<room> in
connect() and leave it in disconnect(); /stats/ counts the connect()/disconnect()
calls and /groups/<name>/ reads the group's size from the channel layer.
"""

import json

import pytest

from harness import skip_server
from chtools import (connect, group_size, nothing_more, recv_json, recv_many_json, run, stats, wait_group_size,
                     wait_stat)

CHAT_KINDS = ["async", "sync", "ajson", "json"]


@pytest.mark.parametrize("kind", CHAT_KINDS)
def test_group_broadcast_and_isolation(chserver, kind):
    room, other = f"bcast-{kind}", f"elsewhere-{kind}"

    async def go():
        async with connect(chserver, f"/ws/{kind}/chat/{room}/") as a, \
                connect(chserver, f"/ws/{kind}/chat/{room}/") as b, \
                connect(chserver, f"/ws/{kind}/chat/{room}/") as c, \
                connect(chserver, f"/ws/{kind}/chat/{other}/") as d:
            assert group_size(chserver, f"chat_{room}") == 3
            await a.send(json.dumps({"message": "one"}))
            expected = {"message": "one", "sender": kind, "via": kind, "user": ""}
            for ws in (a, b, c):
                assert await recv_json(ws) == expected
            await c.send(json.dumps({"message": "two"}))
            await b.send(json.dumps({"message": "three"}))
            for ws in (a, b, c):
                got = await recv_many_json(ws, 2)
                assert sorted(m["message"] for m in got) == ["three", "two"]
            assert await nothing_more(d)
            await d.send(json.dumps({"message": "other room"}))
            assert (await recv_json(d))["message"] == "other room"
            for ws in (a, b, c):
                assert await nothing_more(ws, 0.1)

    run(go())


def test_mixed_consumer_kinds_share_a_group(chserver):
    """Sync and async, JSON and plain consumers all talk in one room."""
    room = "mixed"

    async def go():
        clients = {}
        for kind in CHAT_KINDS:
            clients[kind] = await connect(chserver, f"/ws/{kind}/chat/{room}/")
        try:
            for kind, ws in clients.items():
                await ws.send(json.dumps({"message": f"hello from {kind}"}))
            for kind, ws in clients.items():
                got = await recv_many_json(ws, len(CHAT_KINDS))
                assert sorted((m["sender"], m["message"]) for m in got) == sorted(
                    (k, f"hello from {k}") for k in CHAT_KINDS)
                assert {m["via"] for m in got} == {kind}
        finally:
            for ws in clients.values():
                await ws.close()

    run(go())


@pytest.mark.parametrize("kind", CHAT_KINDS)
def test_disconnect_discards_from_group(chserver, kind):
    """Closing the client runs the consumer's disconnect(): group_discard, then the counter."""
    room = f"leave-{kind}"
    group = f"chat_{room}"
    key = f"disconnect:{kind}:{room}"
    assert stats(chserver).get(key, 0) == 0

    async def go():
        async with connect(chserver, f"/ws/{kind}/chat/{room}/") as stay:
            async with connect(chserver, f"/ws/{kind}/chat/{room}/") as leave:
                await leave.send(json.dumps({"message": "bye"}))
                assert (await recv_json(stay))["message"] == "bye"
                assert (await recv_json(leave))["message"] == "bye"
                assert group_size(chserver, group) == 2
            # `leave` sent its close frame and got the server's
            wait_stat(chserver, key, 1)
            assert group_size(chserver, group) == 1
            await stay.send(json.dumps({"message": "still here"}))
            assert (await recv_json(stay))["message"] == "still here"
        wait_stat(chserver, key, 2)
        wait_group_size(chserver, group, 0)

    run(go())
    got = stats(chserver)
    assert got[f"connect:{kind}:{room}"] == 2 and got[key] == 2


@skip_server("uvicorn", reason="uvicorn 0.17 raises from send() after the client closed, so disconnect() never runs")
@pytest.mark.parametrize("kind", CHAT_KINDS)
def test_disconnect_runs_when_client_closes_with_messages_in_flight(chserver, kind):
    """The client sends and closes at once: the group message to it may reach the
    consumer after the close; disconnect() must still run and leave the group."""
    room = f"inflight-{kind}"
    n = 5

    async def go():
        async with connect(chserver, f"/ws/{kind}/chat/{room}/") as listener:
            for i in range(n):
                ws = await connect(chserver, f"/ws/{kind}/chat/{room}/")
                await ws.send(json.dumps({"message": f"last words {i}"}))
                await ws.close()
                assert (await recv_json(listener))["message"] == f"last words {i}"
            wait_stat(chserver, f"disconnect:{kind}:{room}", n)
            wait_group_size(chserver, f"chat_{room}", 1)
            await listener.send(json.dumps({"message": "anyone?"}))
            assert (await recv_json(listener))["message"] == "anyone?"

    run(go())
    chserver.assert_serving("/whoami/")


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_disconnect_runs_when_connection_drops(chserver, kind):
    room = f"drop-{kind}"

    async def go():
        ws = await connect(chserver, f"/ws/{kind}/chat/{room}/")
        await ws.send(json.dumps({"message": "x"}))
        await recv_json(ws)
        ws.transport.abort()

    run(go())
    wait_stat(chserver, f"disconnect:{kind}:{room}", 1)
    wait_group_size(chserver, f"chat_{room}", 0)


def test_sync_consumers_run_in_threads(chserver):
    async def go():
        async with connect(chserver, "/ws/sync/chat/threads/"):
            pass

    run(go())
    assert stats(chserver).get("in-thread:sync:threads") == 1


def test_sync_django_view_sends_to_group(chserver):
    """A plain Django view uses async_to_sync(group_send); the consumers deliver it."""
    async def go():
        async with connect(chserver, "/ws/async/chat/fromview/") as a, connect(chserver, "/ws/json/chat/fromview/") as b:
            status, _, body = chserver.request("POST", "/broadcast/fromview/", body=json.dumps({"message": "news"}))
            assert status == 200, body
            return await recv_json(a), await recv_json(b)

    got_a, got_b = run(go())
    assert got_a == {"message": "news", "sender": "view", "via": "async", "user": ""}
    assert got_b == {"message": "news", "sender": "view", "via": "json", "user": ""}


def test_many_clients_in_one_room(chserver):
    n = 30
    room = "crowd"

    async def go():
        clients = [await connect(chserver, f"/ws/{CHAT_KINDS[i % 4]}/chat/{room}/") for i in range(n)]
        try:
            assert group_size(chserver, f"chat_{room}") == n
            for i in range(0, n, 10):
                await clients[i].send(json.dumps({"message": f"msg{i}"}))
            for ws in clients:
                got = await recv_many_json(ws, n // 10, timeout=10)
                assert sorted(m["message"] for m in got) == sorted(f"msg{i}" for i in range(0, n, 10))
        finally:
            for ws in clients:
                await ws.close()

    run(go(), timeout=60)
    wait_group_size(chserver, f"chat_{room}", 0, timeout=10)
