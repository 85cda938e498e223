"""ASGI entry point: `bayleaf ticker.asgi:application` (run from examples/ticker/).

HTTP goes to Django; WebSocket /ws/prices/ to the board's consumer; lifespan
starts the built-in simulated feed (when settings.TICKER_BUILTIN_FEED)."""
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ticker.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import path  # noqa: E402

from board import feed  # noqa: E402
from board.consumers import PriceConsumer  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(URLRouter([path("ws/prices/", PriceConsumer.as_asgi())])),
        "lifespan": feed.lifespan,
    }
)
