"""The consumer of the topics project: a price board's socket.

?s=SYM,SYM subscribes at connect; text commands (JSON) then:
  {"op": "sub", "topics": [...]} / {"op": "unsub", "topics": [...]}
  {"op": "publish", "topic", "text", "retain"}     publish from async code
Each command is answered with "ctl:<json>"; everything else is a topic message."""

import json
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncWebsocketConsumer

from bayleaf import topics


class PriceConsumer(topics.TopicsConsumerMixin, AsyncWebsocketConsumer):
    async def connect(self):
        await self.accept()
        q = parse_qs(self.scope["query_string"].decode())
        if q.get("s"):
            await topics.subscribe(self, *q["s"][0].split(","), conflate=q.get("conflate") == ["1"])

    async def receive(self, text_data=None, bytes_data=None):
        cmd = json.loads(text_data)
        op = cmd["op"]
        if op == "sub":
            await topics.subscribe(self, *cmd["topics"])
        elif op == "unsub":
            await topics.unsubscribe(self, *cmd["topics"])
        elif op == "publish":
            await topics.apublish(cmd["topic"], text=cmd["text"], retain=cmd.get("retain", False))
        native = "bayleaf.topics" in self.scope.get("extensions", {})
        await self.send(text_data="ctl:" + json.dumps({"op": op, "native": native}))
