"""`topicsproj.asgi:application`."""
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "topicsproj.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from .consumers import PriceConsumer  # noqa: E402

application = ProtocolTypeRouter({
    "http": django_asgi_app,
    "websocket": URLRouter([path("ws/prices/", PriceConsumer.as_asgi())]),
})
