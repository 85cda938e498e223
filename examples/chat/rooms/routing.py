from django.urls import re_path

from . import consumers
from .views import ROOM_NAME_PATTERN

websocket_urlpatterns = [
    re_path(rf"^ws/chat/(?P<room_name>{ROOM_NAME_PATTERN})/$", consumers.ChatConsumer.as_asgi()),
]
