"""The price board's WebSocket: the browser says which symbols it wants, at
once and any time later ({"watch": ["AAPL", ...]}); each is a topic, and the
server writes every price change of those topics to the socket without this
consumer doing anything per message (under Bayleaf). A symbol's current price
comes at once: the feed publishes retained values."""

import json

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from bayleaf import topics

from . import feed
from .market import symbols, topic_of

WATCH_MAX = 64  # symbols one page may watch


class PriceConsumer(topics.TopicsConsumerMixin, AsyncWebsocketConsumer):
    async def connect(self):
        self.watching = set()
        self.known = set(symbols(settings.TICKER_SYMBOLS))
        feed.start_builtin()  # under a server without lifespan (Daphne), the first page starts it
        await self.accept()

    async def receive(self, text_data=None, bytes_data=None):
        try:
            wanted = json.loads(text_data or "{}").get("watch", [])
            assert isinstance(wanted, list)
        except (ValueError, AssertionError, AttributeError):
            await self.send(text_data=json.dumps({"error": "send {\"watch\": [symbols]}"}))
            return
        new = [s for s in wanted if isinstance(s, str) and s in self.known and s not in self.watching]
        new = new[:max(0, WATCH_MAX - len(self.watching))]
        unknown = [s for s in wanted if not (isinstance(s, str) and s in self.known)]
        if new:
            self.watching.update(new)
            # conflate: a page that falls behind gets the newest price, not a backlog
            await topics.subscribe(self, *(topic_of(s) for s in new), conflate=True)
        await self.send(text_data=json.dumps({"watching": sorted(self.watching), "unknown": unknown[:10]}))
