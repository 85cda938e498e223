"""channels_redis.core.RedisChannelLayer: TWO server processes on different ports,
one real redis-server (started by the redis_url fixture), one chat room shared by
clients of both."""

import json

import pytest

from chtools import (APP, chproj_env, connect, group_size, nothing_more, recv_json, recv_many_json, run, stats,
                     wait_group_size, wait_stat)

CHAT_KINDS = ["async", "sync", "ajson", "json"]


@pytest.fixture(scope="module")
def two_servers(redis_url, chproj_db, module_server_factory):
    # redis_url first: set up before and torn down after the servers
    env = chproj_env(chproj_db, redis_url)
    a = module_server_factory(APP, env=env)
    b = module_server_factory(APP, env=env)
    assert a.port != b.port and a.pid != b.pid
    return a, b


def test_two_processes_share_a_room(two_servers):
    a, b = two_servers
    room = "shared"

    async def go():
        async with connect(a, f"/ws/async/chat/{room}/") as on_a, connect(b, f"/ws/async/chat/{room}/") as on_b:
            assert group_size(a, f"chat_{room}") == 2  # one redis group, members from both processes
            await on_a.send(json.dumps({"message": "from A"}))
            assert await recv_json(on_b) == {"message": "from A", "sender": "async", "via": "async", "user": ""}
            assert (await recv_json(on_a))["message"] == "from A"
            await on_b.send(json.dumps({"message": "from B"}))
            assert (await recv_json(on_a))["message"] == "from B"
            assert (await recv_json(on_b))["message"] == "from B"
            assert await nothing_more(on_a) and await nothing_more(on_b, 0.05)

    run(go())


def test_rooms_stay_apart_across_processes(two_servers):
    a, b = two_servers

    async def go():
        async with connect(a, "/ws/async/chat/red/") as red_a, connect(b, "/ws/async/chat/blue/") as blue_b, \
                connect(b, "/ws/async/chat/red/") as red_b:
            await red_a.send(json.dumps({"message": "red only"}))
            assert (await recv_json(red_b))["message"] == "red only"
            assert (await recv_json(red_a))["message"] == "red only"
            assert await nothing_more(blue_b)

    run(go())


def test_every_consumer_kind_across_processes(two_servers):
    """Sync (async_to_sync) and async consumers, JSON and plain, spread over both processes."""
    a, b = two_servers
    room = "allkinds"

    async def go():
        clients = []
        for i, kind in enumerate(CHAT_KINDS):
            for server in (a, b):
                clients.append((kind, await connect(server, f"/ws/{kind}/chat/{room}/")))
        try:
            for kind, ws in clients[::2]:  # the clients on server A speak
                await ws.send(json.dumps({"message": f"{kind} on A"}))
            for kind, ws in clients:
                got = await recv_many_json(ws, len(CHAT_KINDS), timeout=10)
                assert sorted(m["message"] for m in got) == sorted(f"{k} on A" for k in CHAT_KINDS)
                assert {m["via"] for m in got} == {kind}
        finally:
            for _, ws in clients:
                await ws.close()

    run(go(), timeout=60)
    wait_group_size(a, f"chat_{room}", 0)


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_disconnect_discards_from_redis_group(two_servers, kind):
    a, b = two_servers
    room = f"leave-redis-{kind}"
    group = f"chat_{room}"

    async def go():
        async with connect(a, f"/ws/{kind}/chat/{room}/") as stay:
            async with connect(b, f"/ws/{kind}/chat/{room}/") as leave:
                await leave.send(json.dumps({"message": "bye"}))
                assert (await recv_json(stay))["message"] == "bye"
                assert (await recv_json(leave))["message"] == "bye"
                assert group_size(a, group) == 2
            wait_stat(b, f"disconnect:{kind}:{room}", 1, timeout=10)  # disconnect() ran in process B
            assert group_size(a, group) == 1               # and group_discard reached redis
            await stay.send(json.dumps({"message": "alone"}))
            assert (await recv_json(stay))["message"] == "alone"
        wait_stat(a, f"disconnect:{kind}:{room}", 1, timeout=10)
        wait_group_size(a, group, 0)

    run(go())
    assert stats(a).get(f"disconnect:{kind}:{room}") == 1
    assert stats(b).get(f"disconnect:{kind}:{room}") == 1


def test_django_view_on_one_process_reaches_the_other(two_servers):
    a, b = two_servers

    async def go():
        async with connect(b, "/ws/json/chat/viewroom/") as on_b:
            status, _, body = a.request("POST", "/broadcast/viewroom/", body=json.dumps({"message": "via A's view"}))
            assert status == 200, body
            return await recv_json(on_b)

    assert run(go()) == {"message": "via A's view", "sender": "view", "via": "json", "user": ""}
