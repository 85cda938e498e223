"""ASGI entry point: `bayleaf chat.asgi:application` (run from examples/chat/)."""
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chat.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

# Set up Django (app registry, settings) before anything imports models.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
    }
)
