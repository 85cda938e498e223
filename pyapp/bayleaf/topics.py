"""Topics: publish/subscribe for WebSocket consumers.

Under Bayleaf a subscription is the connection's own (the ``bayleaf.topics``
ASGI extension): ``publish()`` hands the message to the I/O thread, which
writes one encoded frame to every subscriber; Python does nothing per
subscriber. Under another server (Daphne, uvicorn, Channels'
``WebsocketCommunicator``) the same calls fall back to Channels groups, so a
consumer written against this module runs and tests unchanged::

    from channels.generic.websocket import AsyncWebsocketConsumer
    from bayleaf import topics

    class Prices(topics.TopicsConsumerMixin, AsyncWebsocketConsumer):
        async def connect(self):
            await self.accept()
            await topics.subscribe(self, "ticker.BTC-USD", conflate=True)

    # anywhere: async code, a sync view, a thread, a management command
    topics.publish("ticker.BTC-USD", text='{"price": 97000.5}', retain=True)
"""

import asyncio
import hashlib
import re

try:  # built into the bayleaf binary; absent under any other server
    import _bayleaf
except ImportError:  # pragma: no cover - depends on the server
    _bayleaf = None

__all__ = ["subscribe", "unsubscribe", "publish", "apublish", "group_name", "TopicsConsumerMixin",
           "EXTENSION", "MESSAGE_TYPE"]

EXTENSION = "bayleaf.topics"
#: The Channels message type of the fallback (handled by TopicsConsumerMixin).
MESSAGE_TYPE = "bayleaf.topic.message"

_SAFE = re.compile(r"[A-Za-z0-9\-._]{1,80}")
# Fallback only: the retained values of this process (Channels has no such thing).
_retained = {}
# Fallback only: publishes scheduled from a running loop, kept until done.
_pending = set()


def group_name(topic):
    """The Channels group a topic falls back to (valid for Channels' rules:
    ASCII letters, digits, '-', '_' and '.', under 100 characters)."""
    _check_topic(topic)
    if _SAFE.fullmatch(topic):
        return "bayleaf.topic." + topic
    return "bayleaf.topich." + hashlib.sha256(topic.encode("utf-8")).hexdigest()[:40]


def _check_topic(topic):
    if not isinstance(topic, str):
        raise TypeError(f"a topic must be a str, not {type(topic).__name__}")
    if not topic:
        raise ValueError("a topic name must not be empty")


def _native(consumer):
    scope = getattr(consumer, "scope", None) or {}
    return EXTENSION in (scope.get("extensions") or {})


def _layer(consumer):
    layer = getattr(consumer, "channel_layer", None)
    if layer is None:
        raise RuntimeError("topics: no channel layer (CHANNEL_LAYERS) for the fallback outside Bayleaf")
    return layer


async def subscribe(consumer, *names, conflate=False):
    """Subscribe the consumer's WebSocket (accepted) to topics. A topic with a
    retained value sends it at once. conflate=True: when the client is behind,
    only the newest pending message per topic is kept (Bayleaf only)."""
    for n in names:
        _check_topic(n)
    if not names:
        return
    if _native(consumer):
        await consumer.base_send({"type": "bayleaf.subscribe", "topics": list(names),
                                  "conflate": bool(conflate)})
        return
    layer = _layer(consumer)
    joined = consumer.__dict__.setdefault("_bayleaf_topics", set())
    for n in names:
        if n in joined:
            continue
        await layer.group_add(group_name(n), consumer.channel_name)
        joined.add(n)
        if n in _retained:
            await consumer.handle_topic_message(dict(_retained[n]))


async def unsubscribe(consumer, *names):
    """Unsubscribe from topics (closing the connection unsubscribes from all)."""
    for n in names:
        _check_topic(n)
    if not names:
        return
    if _native(consumer):
        await consumer.base_send({"type": "bayleaf.unsubscribe", "topics": list(names)})
        return
    layer = _layer(consumer)
    joined = consumer.__dict__.setdefault("_bayleaf_topics", set())
    for n in names:
        joined.discard(n)
        await layer.group_discard(group_name(n), consumer.channel_name)


def _message(topic, text, bytes):
    _check_topic(topic)
    if (text is None) == (bytes is None):
        raise ValueError("publish needs exactly one of text= or bytes=")
    if text is not None and not isinstance(text, str):
        raise TypeError("publish: text must be a str")
    if bytes is not None and not isinstance(bytes, (type(b""), bytearray, memoryview)):
        raise TypeError("publish: bytes must be bytes-like")
    msg = {"type": MESSAGE_TYPE, "topic": topic}
    if text is not None:
        msg["text"] = text
    else:
        msg["bytes"] = type(b"")(bytes)
    return msg


def _native_publish(topic, text, bytes, retain):
    if _bayleaf is None or not _bayleaf.topics_active():
        return False
    if text is not None:
        _bayleaf.topic_publish(topic, text, True, retain)
    else:
        _bayleaf.topic_publish(topic, bytes, False, retain)
    return True


def _redis_publish(topic, text, bytes, retain):
    """Outside Bayleaf with $BAYLEAF_TOPICS_REDIS set: through Redis (topics_redis.py)."""
    from . import topics_redis

    if not topics_redis.configured():
        return False
    topics_redis.publish(topic, text.encode("utf-8") if text is not None else type(b"")(bytes), retain)
    return True


def _fallback_layer():
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("topics: not under Bayleaf and no channel layer (CHANNEL_LAYERS) to publish through")
    return layer


def publish(topic, text=None, bytes=None, retain=False):
    """Publish a text or binary message to a topic; callable from anywhere
    (async code, sync views, other threads, management commands). Under
    Bayleaf it returns once the message is queued for the I/O thread (it
    waits only while the process's publish queue is full). Elsewhere it
    group_sends through the channel layer: from a thread running an event loop
    that send is scheduled as a task (await apublish() to wait for it)."""
    msg = _message(topic, text, bytes)
    if _native_publish(topic, text, bytes, retain) or _redis_publish(topic, text, bytes, retain):
        return
    if retain:
        _retained[topic] = msg
    layer = _fallback_layer()
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if loop is None:
        from asgiref.sync import async_to_sync

        async_to_sync(layer.group_send)(group_name(topic), msg)
        return
    task = loop.create_task(layer.group_send(group_name(topic), msg))
    _pending.add(task)
    task.add_done_callback(_pending.discard)


async def apublish(topic, text=None, bytes=None, retain=False):
    """publish() for async code that wants the fallback's group_send awaited."""
    msg = _message(topic, text, bytes)
    if _native_publish(topic, text, bytes, retain) or _redis_publish(topic, text, bytes, retain):
        return
    if retain:
        _retained[topic] = msg
    await _fallback_layer().group_send(group_name(topic), msg)


class TopicsConsumerMixin:
    """For Channels WebSocket consumers (put it before the consumer class):
    handles the fallback's group messages by sending them to the client, and
    leaves the topic groups when the socket closes. Under Bayleaf topic
    messages never reach the consumer: the I/O thread writes them."""

    async def handle_topic_message(self, event):
        if "text" in event:
            await self.send(text_data=event["text"])
        else:
            await self.send(bytes_data=event["bytes"])

    async def bayleaf_topic_message(self, event):
        await self.handle_topic_message(event)

    async def websocket_disconnect(self, message):
        joined = self.__dict__.get("_bayleaf_topics") or ()
        if joined and getattr(self, "channel_layer", None) is not None:
            for n in list(joined):
                await self.channel_layer.group_discard(group_name(n), self.channel_name)
            joined.clear()
        await super().websocket_disconnect(message)
