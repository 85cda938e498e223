"""ops_app under a Django configuration whose LOGGING gives bayleaf's loggers a
formatter and handler of their own (tests/integration/ops/test_one_log.py)."""

import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="log-test",
    LOGGING={
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"dj": {"format": "DJ|%(levelname)s|%(name)s|%(threadName)s|%(message)s"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "dj"}},
        "loggers": {"bayleaf": {"handlers": ["stderr"], "level": "DEBUG", "propagate": False}},
    },
)
django.setup()

from ops_app import app  # noqa: E402,F401
