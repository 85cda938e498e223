"""`procproj.asgi:application`: a Channels consumer that records its disconnect.

http:       /pid -> the worker's pid (AsyncHttpConsumer)
websocket:  /ws/ -> joins group "all"; disconnect() appends "<pid> <code>" to $PROC_MARKER
"""
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "procproj.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()

from channels.generic.http import AsyncHttpConsumer  # noqa: E402
from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402


class PidConsumer(AsyncHttpConsumer):
    async def handle(self, body):
        await self.send_response(200, str(os.getpid()).encode(),
                                 headers=[(b"content-type", b"text/plain")])


class MarkerConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        await self.channel_layer.group_add("all", self.channel_name)
        await self.accept()

    async def receive(self, text_data=None, bytes_data=None):
        await self.send(text_data=str(os.getpid()))

    async def disconnect(self, code):
        await self.channel_layer.group_discard("all", self.channel_name)
        marker = os.environ.get("PROC_MARKER")
        if marker:
            with open(marker, "a") as f:
                f.write(f"{os.getpid()} {code}\n")


application = ProtocolTypeRouter({
    "http": URLRouter([path("pid", PidConsumer.as_asgi())]),
    "websocket": URLRouter([path("ws/", MarkerConsumer.as_asgi())]),
})
