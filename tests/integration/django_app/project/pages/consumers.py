import json

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer, WebsocketConsumer
from django.contrib.auth.models import User


class EchoConsumer(WebsocketConsumer):
    def connect(self):
        self.accept()

    def receive(self, text_data=None, bytes_data=None):
        self.send(text_data="echo: " + (text_data or ""))


class UsersConsumer(AsyncWebsocketConsumer):
    """Sends the user names of the database on connect (the live test checks the test DB)."""

    async def connect(self):
        await self.accept()
        names = await database_sync_to_async(
            lambda: list(User.objects.order_by("username").values_list("username", flat=True)))()
        await self.send(text_data=json.dumps(names))
