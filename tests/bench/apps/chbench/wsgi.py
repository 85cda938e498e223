"""WSGI entry point: chbench.wsgi:application, for one bayleaf serving the
Channels consumers (chbench.asgi) and Django's pages through WSGI (--wsgi)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chbench.settings")

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
