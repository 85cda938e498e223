"""`chproj.asgi:application`: ProtocolTypeRouter with URLRouter for both protocols.

http:       AsyncHttpConsumer routes under ahttp/, everything else to Django
websocket:  AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(...)))
"""
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chproj.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import path, re_path  # noqa: E402

from . import consumers  # noqa: E402

http_urlpatterns = [
    path("ahttp/hello/", consumers.HelloHttpConsumer.as_asgi()),
    path("ahttp/hash/", consumers.BodyHashConsumer.as_asgi()),
    path("ahttp/events/<str:key>/<int:n>/", consumers.EventStreamConsumer.as_asgi()),
    path("ahttp/release/<str:key>/", consumers.ReleaseConsumer.as_asgi()),
    re_path(r"", django_asgi_app),
]

websocket_urlpatterns = [
    path("ws/async/chat/<str:room>/", consumers.AsyncChatConsumer.as_asgi()),
    path("ws/sync/chat/<str:room>/", consumers.SyncChatConsumer.as_asgi()),
    path("ws/ajson/chat/<str:room>/", consumers.AsyncJsonChatConsumer.as_asgi()),
    path("ws/json/chat/<str:room>/", consumers.JsonChatConsumer.as_asgi()),
    path("ws/async/echo/", consumers.AsyncEchoConsumer.as_asgi()),
    path("ws/sync/echo/", consumers.SyncEchoConsumer.as_asgi()),
    path("ws/ajson/echo/", consumers.AsyncJsonEchoConsumer.as_asgi()),
    path("ws/json/echo/", consumers.JsonEchoConsumer.as_asgi()),
    path("ws/whoami/", consumers.WhoAmIConsumer.as_asgi()),
    path("ws/route/<str:name>/<int:num>/", consumers.RouteInfoConsumer.as_asgi()),
    re_path(r"^ws/re/(?P<slug>[a-z]+)-(?P<year>[0-9]{4})/$", consumers.RouteInfoConsumer.as_asgi()),
    path("ws/deny/", consumers.DenyConsumer.as_asgi()),
]

application = ProtocolTypeRouter(
    {
        "http": URLRouter(http_urlpatterns),
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
