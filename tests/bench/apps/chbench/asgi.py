"""ASGI entry point: chbench.asgi:application (run with tests/bench/apps as the current directory).

HTTP goes to Django; WebSockets to the Channels consumers in chbench.consumers.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chbench.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_app = get_asgi_application()  # sets Django up before the consumers are imported

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from chbench.consumers import (EchoConsumer, PublisherConsumer, SubscriberConsumer,  # noqa: E402
                               TopicPublisherConsumer, TopicSubscriberConsumer)

application = ProtocolTypeRouter({
    "http": django_app,
    "websocket": URLRouter([
        path("ws/echo/", EchoConsumer.as_asgi()),
        path("ws/sub/", SubscriberConsumer.as_asgi()),
        path("ws/pub/", PublisherConsumer.as_asgi()),
        path("ws/tsub/", TopicSubscriberConsumer.as_asgi()),
        path("ws/tpub/", TopicPublisherConsumer.as_asgi()),
    ]),
})
