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
