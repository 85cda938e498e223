"""ASGI entry point: djbench.asgi:application (run with tests/bench/apps as the current directory)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djbench.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

application = get_asgi_application()
