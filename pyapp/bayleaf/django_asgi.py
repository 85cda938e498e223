"""The ASGI application of Bayleaf's Django integration.

Served inside the bayleaf binary as ``bayleaf.django_asgi:application`` by
``manage.py runserver`` (bayleaf.management.commands.runserver) and by
bayleaf.testing.BayleafProcess; both set the environment below (see
bayleaf.devserver).  Importing this module sets Django up and builds the
project's application: settings.ASGI_APPLICATION (Django's own ASGI handler
when unset), optionally behind the static files handler.

Environment:
  DJANGO_SETTINGS_MODULE      the project's settings module
  BAYLEAF_PARENT_PID          the process that started us: we get SIGTERM when it
                              dies (and refuse to start if it is already gone)
  BAYLEAF_DJANGO_SETTINGS     JSON object of settings applied before django.setup()
                              (the test databases of a live-server test, ...)
  BAYLEAF_DJANGO_STATIC       "1": serve STATIC_URL with ASGIStaticFilesHandler
  BAYLEAF_DJANGO_APP_FACTORY  base64 of a pickled callable that returns the
                              application (used instead of the two above)
  BAYLEAF_READY_FD            file descriptor to write one byte to once the
                              application is built
"""

import sys
import traceback

from .django_support import build_application, die_with_parent, signal_ready


def _load():
    die_with_parent()
    try:
        app = build_application()
    except Exception:
        # The loader reports one line; the whole story matters when it is the project's bug.
        traceback.print_exc(file=sys.stderr)
        sys.stderr.flush()
        raise
    signal_ready()
    return app


application = _load()
