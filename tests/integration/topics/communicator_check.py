"""Run by test_topics_channels.py: topicsproj's consumer under Channels'
WebsocketCommunicator with the in-memory layer (no server, no _bayleaf):
subscribe at connect and later, publish from async code, from a thread, from
the management command, a retained value, unsubscribe, close. Prints OK."""

import asyncio
import json
import threading

import django

django.setup()

from channels.testing import WebsocketCommunicator  # noqa: E402
from django.core.management import call_command  # noqa: E402

from bayleaf import topics  # noqa: E402
from topicsproj.consumers import PriceConsumer  # noqa: E402

assert topics._bayleaf is None


async def topic_msgs(comm, n):
    got = []
    while len(got) < n:
        m = await comm.receive_from(timeout=5)
        if not m.startswith("ctl:"):
            got.append(m)
    return got


async def main():
    comm = WebsocketCommunicator(PriceConsumer.as_asgi(), "/ws/prices/?s=c.A")
    ok, _ = await comm.connect()
    assert ok
    await comm.send_to(text_data=json.dumps({"op": "sub", "topics": ["c.B", "weird topic/é"]}))
    assert json.loads((await comm.receive_from())[4:]) == {"op": "sub", "native": False}
    await topics.apublish("c.A", text="async")
    assert await topic_msgs(comm, 1) == ["async"]
    # publish() from a running loop schedules the group_send.
    topics.publish("weird topic/é", bytes=b"\x00\x01")
    assert await comm.receive_from(timeout=5) == b"\x00\x01"
    # From a thread with no loop: async_to_sync(group_send) onto this loop's layer.
    loop = asyncio.get_running_loop()
    t = threading.Thread(target=lambda: topics.publish("c.B", text="thread"))
    t.start()
    await loop.run_in_executor(None, t.join)
    assert await topic_msgs(comm, 1) == ["thread"]
    # The management command.
    t = threading.Thread(target=call_command, args=("publish_topic", "c.A", "2"))
    t.start()
    await loop.run_in_executor(None, t.join)
    assert await topic_msgs(comm, 2) == ["0:command", "1:command"]
    # Retained, for a later subscriber.
    await topics.apublish("c.R", text="last", retain=True)
    late = WebsocketCommunicator(PriceConsumer.as_asgi(), "/ws/prices/?s=c.R")
    assert (await late.connect())[0]
    assert await late.receive_from(timeout=5) == "last"
    await late.disconnect()
    # Unsubscribed: nothing more from c.A.
    await comm.send_to(text_data=json.dumps({"op": "unsub", "topics": ["c.A"]}))
    await comm.receive_from()
    await topics.apublish("c.A", text="not for you")
    await topics.apublish("c.B", text="mark")
    assert await topic_msgs(comm, 1) == ["mark"]
    await comm.disconnect()
    # Closing left the groups: a publish now reaches no one.
    layer = PriceConsumer.channel_layer_alias
    from channels.layers import get_channel_layer
    assert not get_channel_layer(layer).groups.get(topics.group_name("c.B")), "group left behind"
    print("OK")


asyncio.run(main())
