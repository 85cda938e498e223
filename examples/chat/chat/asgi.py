"""ASGI entry point: `bayleaf chat.asgi:application` (run from examples/chat/).

HTTP goes to Django; WebSocket connections are checked against ALLOWED_HOSTS
(Origin header), get the Django session user, and are routed to the chat
consumer by rooms/routing.py.
"""
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chat.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

# Set up Django (app registry, settings) before anything imports models.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from rooms.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
