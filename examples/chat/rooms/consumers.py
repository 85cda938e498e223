"""WebSocket side of the chat: one group per room, messages relayed as JSON.

Client -> server:  {"message": "text"}
Server -> client:  {"message": "text", "user": "name or empty"}
"""
import json

from channels.generic.websocket import AsyncWebsocketConsumer

MAX_MESSAGE_CHARS = 2000


def group_for(room_name):
    """Channel-layer group of a room (names are already restricted to ASCII [A-Za-z0-9_-])."""
    return f"chat_{room_name}"


class ChatConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        self.room_name = self.scope["url_route"]["kwargs"]["room_name"]
        self.room_group = group_for(self.room_name)
        await self.channel_layer.group_add(self.room_group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard(self.room_group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        if text_data is None:
            return  # binary frames are not part of this protocol
        try:
            data = json.loads(text_data)
        except ValueError:
            return
        message = data.get("message") if isinstance(data, dict) else None
        if not isinstance(message, str) or not message.strip():
            return
        user = self.scope.get("user")
        await self.channel_layer.group_send(
            self.room_group,
            {
                "type": "chat.message",
                "message": message[:MAX_MESSAGE_CHARS],
                "user": user.get_username() if user is not None and user.is_authenticated else "",
            },
        )

    async def chat_message(self, event):
        """Handler of "chat.message" events sent to the room's group."""
        await self.send(text_data=json.dumps({"message": event["message"], "user": event["user"]}))
