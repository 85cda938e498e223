"""HTTP through Django, WebSocket through Channels consumers."""
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siteproj.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from pages import consumers  # noqa: E402

application = ProtocolTypeRouter({
    "http": django_app,
    "websocket": URLRouter([
        path("ws/echo/", consumers.EchoConsumer.as_asgi()),
        path("ws/users/", consumers.UsersConsumer.as_asgi()),
    ]),
})
