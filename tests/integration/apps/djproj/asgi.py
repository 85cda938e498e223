"""`djproj.asgi:application` (channels ProtocolTypeRouter) and `djproj.asgi:django_app`
(plain Django ASGI handler)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djproj.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

application = ProtocolTypeRouter({"http": django_app})
