"""Consumers of every generic kind, used unchanged by the channels tests.

Chat protocol shared by the four chat consumers (async, sync, ajson, json), all
in group chat_<room>, so they can talk to each other:
  client -> server  {"message": "..."}
  server -> client  {"message": "...", "sender": <kind that received it>,
                     "via": <kind that delivered it>, "user": <username or "">}
"""
import asyncio
import hashlib
import json
import sys
import time

from asgiref.sync import async_to_sync
from channels.generic.http import AsyncHttpConsumer
from channels.generic.websocket import (AsyncJsonWebsocketConsumer, AsyncWebsocketConsumer,
                                        JsonWebsocketConsumer, WebsocketConsumer)

from . import state


def in_event_loop():
    """True when called from a thread that runs an asyncio loop (the ASGI loop)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def group_name(room):
    return f"chat_{room}"


def username(scope):
    user = scope.get("user")
    if user is not None and user.is_authenticated:
        return user.get_username()
    return ""


def chat_event(content, kind, scope):
    return {"type": "chat.message", "message": str(content["message"]), "sender": kind,
            "user": username(scope)}


def chat_payload(event, kind):
    return {"message": event["message"], "sender": event["sender"], "via": kind, "user": event["user"]}


# --------------------------------------------------------------------------
# chat consumers (groups)
# --------------------------------------------------------------------------

class AsyncChatConsumer(AsyncWebsocketConsumer):
    kind = "async"

    async def connect(self):
        self.room = self.scope["url_route"]["kwargs"]["room"]
        self.group = group_name(self.room)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        state.record("connect", self.kind, self.room)

    async def disconnect(self, code):
        await self.channel_layer.group_discard(self.group, self.channel_name)
        state.record("disconnect", self.kind, self.room)

    async def receive(self, text_data=None, bytes_data=None):
        await self.channel_layer.group_send(self.group, chat_event(json.loads(text_data), self.kind, self.scope))

    async def chat_message(self, event):
        await self.send(text_data=json.dumps(chat_payload(event, self.kind)))


class SyncChatConsumer(WebsocketConsumer):
    """Runs in asgiref's thread pool; reaches the (async) channel layer with async_to_sync."""
    kind = "sync"

    def connect(self):
        self.room = self.scope["url_route"]["kwargs"]["room"]
        self.group = group_name(self.room)
        async_to_sync(self.channel_layer.group_add)(self.group, self.channel_name)
        self.accept()
        state.record("connect", self.kind, self.room)
        state.record("in-loop" if in_event_loop() else "in-thread", self.kind, self.room)

    def disconnect(self, code):
        async_to_sync(self.channel_layer.group_discard)(self.group, self.channel_name)
        state.record("disconnect", self.kind, self.room)

    def receive(self, text_data=None, bytes_data=None):
        async_to_sync(self.channel_layer.group_send)(self.group, chat_event(json.loads(text_data), self.kind, self.scope))

    def chat_message(self, event):
        self.send(text_data=json.dumps(chat_payload(event, self.kind)))


class AsyncJsonChatConsumer(AsyncJsonWebsocketConsumer):
    kind = "ajson"

    async def connect(self):
        self.room = self.scope["url_route"]["kwargs"]["room"]
        self.group = group_name(self.room)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        state.record("connect", self.kind, self.room)

    async def disconnect(self, code):
        await self.channel_layer.group_discard(self.group, self.channel_name)
        state.record("disconnect", self.kind, self.room)

    async def receive_json(self, content, **kwargs):
        await self.channel_layer.group_send(self.group, chat_event(content, self.kind, self.scope))

    async def chat_message(self, event):
        await self.send_json(chat_payload(event, self.kind))


class JsonChatConsumer(JsonWebsocketConsumer):
    kind = "json"

    def connect(self):
        self.room = self.scope["url_route"]["kwargs"]["room"]
        self.group = group_name(self.room)
        async_to_sync(self.channel_layer.group_add)(self.group, self.channel_name)
        self.accept()
        state.record("connect", self.kind, self.room)

    def disconnect(self, code):
        async_to_sync(self.channel_layer.group_discard)(self.group, self.channel_name)
        state.record("disconnect", self.kind, self.room)

    def receive_json(self, content, **kwargs):
        async_to_sync(self.channel_layer.group_send)(self.group, chat_event(content, self.kind, self.scope))

    def chat_message(self, event):
        self.send_json(chat_payload(event, self.kind))


# --------------------------------------------------------------------------
# echo consumers
# --------------------------------------------------------------------------
# Text "where" answers {"in_loop": ...}; "close:<code>" makes the server close
# with that code; "later:<ms>:<text>" sends <text> back after <ms> milliseconds
# (meanwhile the client may have gone); anything else (text or binary) is echoed.

SUBPROTOCOL = "bayleaf.test.v2"


class AsyncEchoConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        if SUBPROTOCOL in self.scope.get("subprotocols", []):
            await self.accept(subprotocol=SUBPROTOCOL)
        else:
            await self.accept()

    async def receive(self, text_data=None, bytes_data=None):
        if text_data is None:
            await self.send(bytes_data=bytes_data)
        elif text_data == "where":
            await self.send(text_data=json.dumps({"in_loop": in_event_loop()}))
        elif text_data == "exit":
            sys.exit(5)  # ends this consumer (1011), never the server
        elif text_data.startswith("close:"):
            await self.close(code=int(text_data[6:]))
        elif text_data.startswith("later:"):
            _, ms, text = text_data.split(":", 2)
            await asyncio.sleep(int(ms) / 1000)
            await self.send(text_data=text)
        else:
            await self.send(text_data=text_data)

    async def disconnect(self, code):
        state.record("disconnect", "async-echo", str(code))


class SyncEchoConsumer(WebsocketConsumer):
    def connect(self):
        if SUBPROTOCOL in self.scope.get("subprotocols", []):
            self.accept(subprotocol=SUBPROTOCOL)
        else:
            self.accept()

    def receive(self, text_data=None, bytes_data=None):
        if text_data is None:
            self.send(bytes_data=bytes_data)
        elif text_data == "where":
            self.send(text_data=json.dumps({"in_loop": in_event_loop()}))
        elif text_data == "exit":
            sys.exit(5)  # in the sync thread: ends this consumer (1011), never the server
        elif text_data.startswith("close:"):
            self.close(code=int(text_data[6:]))
        elif text_data.startswith("later:"):
            _, ms, text = text_data.split(":", 2)
            time.sleep(int(ms) / 1000)
            self.send(text_data=text)
        else:
            self.send(text_data=text_data)

    def disconnect(self, code):
        state.record("disconnect", "sync-echo", str(code))


class AsyncJsonEchoConsumer(AsyncJsonWebsocketConsumer):
    async def receive_json(self, content, **kwargs):
        await self.send_json({"echo": content, "kind": "ajson", "in_loop": in_event_loop()})


class JsonEchoConsumer(JsonWebsocketConsumer):
    def receive_json(self, content, **kwargs):
        self.send_json({"echo": content, "kind": "json", "in_loop": in_event_loop()})


# --------------------------------------------------------------------------
# scope inspection, denial
# --------------------------------------------------------------------------

class WhoAmIConsumer(AsyncJsonWebsocketConsumer):
    """Sends the session user that AuthMiddlewareStack put into the scope."""

    async def connect(self):
        await self.accept()
        user = self.scope["user"]
        await self.send_json({"user": user.get_username(), "authenticated": user.is_authenticated,
                              "session_key": self.scope["session"].session_key})


class RouteInfoConsumer(AsyncJsonWebsocketConsumer):
    """Sends what URLRouter matched."""

    async def connect(self):
        await self.accept()
        route = self.scope["url_route"]
        await self.send_json({"path": self.scope["path"], "args": list(route["args"]),
                              "kwargs": route["kwargs"]})


class DenyConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        await self.close()


# --------------------------------------------------------------------------
# AsyncHttpConsumer
# --------------------------------------------------------------------------

class HelloHttpConsumer(AsyncHttpConsumer):
    async def handle(self, body):
        await self.send_response(200, b"hello from AsyncHttpConsumer\n",
                                 headers=[(b"Content-Type", b"text/plain; charset=utf-8"),
                                          (b"X-Consumer", b"hello")])


class BodyHashConsumer(AsyncHttpConsumer):
    async def handle(self, body):
        info = {"method": self.scope["method"], "length": len(body), "sha256": hashlib.sha256(body).hexdigest()}
        await self.send_response(200, json.dumps(info).encode(), headers={b"Content-Type": b"application/json"})


_gates = {}


def gate(key):
    """An asyncio.Event shared by the event-stream and release consumers (same loop)."""
    if key not in _gates:
        _gates[key] = asyncio.Event()
    return _gates[key]


class EventStreamConsumer(AsyncHttpConsumer):
    """text/event-stream: one event at once, then waits for /ahttp/release/<key>/,
    then n more events, each its own send_body(more_body=True), then the end."""

    async def handle(self, body):
        key = self.scope["url_route"]["kwargs"]["key"]
        n = int(self.scope["url_route"]["kwargs"]["n"])
        await self.send_headers(headers=[(b"Content-Type", b"text/event-stream"), (b"Cache-Control", b"no-cache")])
        await self.send_body(b"event: hello\ndata: waiting\n\n", more_body=True)
        try:
            await asyncio.wait_for(gate(key).wait(), 15)
        except asyncio.TimeoutError:
            await self.send_body(b"event: timeout\ndata: never released\n\n")
            return
        for i in range(1, n + 1):
            await self.send_body(f"id: {i}\ndata: event {i} of {n}\n\n".encode(), more_body=True)
        await self.send_body(b"event: end\ndata: bye\n\n")

    async def disconnect(self):
        _gates.pop(self.scope["url_route"]["kwargs"]["key"], None)


class ReleaseConsumer(AsyncHttpConsumer):
    async def handle(self, body):
        gate(self.scope["url_route"]["kwargs"]["key"]).set()
        await self.send_response(200, b"released\n", headers=[(b"Content-Type", b"text/plain")])
