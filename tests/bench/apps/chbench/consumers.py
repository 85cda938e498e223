"""Channels consumers for the WebSocket benchmark.

- EchoConsumer (/ws/echo/): sends every message back unchanged.
- SubscriberConsumer (/ws/sub/): joins the "bench" group before accepting, and
  forwards every group message to its client.
- PublisherConsumer (/ws/pub/): every message it receives is broadcast to the
  "bench" group with group_send (the text is passed through unchanged; the
  load client puts a sequence number and a timestamp in it).
"""

from channels.generic.websocket import AsyncWebsocketConsumer

GROUP = "bench"


class EchoConsumer(AsyncWebsocketConsumer):
    async def receive(self, text_data=None, bytes_data=None):
        await self.send(text_data=text_data, bytes_data=bytes_data)


class SubscriberConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        await self.channel_layer.group_add(GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard(GROUP, self.channel_name)

    async def bench_message(self, event):
        await self.send(text_data=event["text"])


class PublisherConsumer(AsyncWebsocketConsumer):
    async def receive(self, text_data=None, bytes_data=None):
        if text_data is None:
            text_data = bytes_data.decode("ascii", "replace")
        await self.channel_layer.group_send(GROUP, {"type": "bench.message", "text": text_data})


# ---- topics (tests/bench/topics_bench.py): the same consumers written against
# bayleaf.topics: native under Bayleaf, Channels groups under uvicorn/Daphne.

import itertools  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from urllib.parse import parse_qs  # noqa: E402

try:
    from bayleaf import topics
except ImportError:  # under uvicorn/Daphne: the helper from this checkout
    sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), *[".."] * 4, "pyapp"))
    from bayleaf import topics

_sub_counter = itertools.count()


def _q(scope, name, default):
    return int(parse_qs(scope["query_string"].decode()).get(name, [default])[0])


class TopicSubscriberConsumer(topics.TopicsConsumerMixin, AsyncWebsocketConsumer):
    """/ws/tsub/?spread=N&extra=K: subscribes to one of N topics bench.0..bench.N-1
    (round robin over connections; N=1: all on bench.0) and to K more topics
    no one publishes to (for the memory per subscription); ?spread=0: none."""

    async def connect(self):
        await self.accept()
        spread, extra = _q(self.scope, "spread", "1"), _q(self.scope, "extra", "0")
        if spread == 0:
            return
        i = next(_sub_counter)
        names = [f"bench.{i % spread}"] + [f"idle.{i}.{k}" for k in range(extra)]
        await topics.subscribe(self, *names)


class TopicPublisherConsumer(AsyncWebsocketConsumer):
    """/ws/tpub/?spread=N: every message it receives is published to each of the
    N topics (so every subscriber gets each broadcast once)."""

    async def connect(self):
        await self.accept()
        self.names = [f"bench.{i}" for i in range(_q(self.scope, "spread", "1"))]

    async def receive(self, text_data=None, bytes_data=None):
        if text_data is None:
            text_data = bytes_data.decode("ascii", "replace")
        for name in self.names:
            topics.publish(name, text=text_data)
