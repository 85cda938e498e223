"""Settings for the Bayleaf ticker example: an exchange price board (Django +
Channels, the bayleaf.topics helper).

Environment:
  BAYLEAF_TOPICS_REDIS  e.g. redis://127.0.0.1:6379/0: topics go through Redis
                        (every worker of every host, and `manage.py ticker_feed`
                        on any host, share them); unset: in this process only
  TICKER_FEED           auto (default), on or off: the built-in simulated feed
                        of the server process. auto: on without Redis; with
                        Redis, run `manage.py ticker_feed` (once, anywhere)
  TICKER_SYMBOLS        how many symbols the feed moves (default 300)
  TICKER_RATE           updates per second of each symbol (default 3)
  DJANGO_DEBUG          "1" (default) or "0" (then DJANGO_SECRET_KEY and
                        DJANGO_ALLOWED_HOSTS as in the chat example)
"""
import importlib.util
import os
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

# pyapp/bayleaf of this tree when bayleaf is not installed (as in the chat example).
_PYAPP = BASE_DIR.parent.parent / "pyapp"
if importlib.util.find_spec("bayleaf") is None and (_PYAPP / "bayleaf" / "apps.py").is_file():
    sys.path.append(str(_PYAPP))
_BAYLEAF_APP = ["bayleaf"] if importlib.util.find_spec("bayleaf") is not None else []

DEBUG = os.environ.get("DJANGO_DEBUG", "1").lower() not in ("0", "false", "no", "off", "")
if DEBUG:
    SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "bayleaf-ticker-insecure-dev-key")
    ALLOWED_HOSTS = ["*"]
else:
    SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
    ALLOWED_HOSTS = [h.strip() for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")
                     if h.strip()]

INSTALLED_APPS = [
    *_BAYLEAF_APP,  # `manage.py runserver` serves with Bayleaf
    "django.contrib.staticfiles",
    "channels",
    "board",
]
MIDDLEWARE = ["django.middleware.security.SecurityMiddleware", "django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "ticker.urls"
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "DIRS": [], "APP_DIRS": True,
              "OPTIONS": {}}]
ASGI_APPLICATION = "ticker.asgi.application"
# Under Bayleaf topics need no channel layer; under another server (Daphne, the
# tests' WebsocketCommunicator) the topics helper falls back to Channels groups.
UNDER_BAYLEAF = importlib.util.find_spec("_bayleaf") is not None
CHANNEL_LAYERS = {} if UNDER_BAYLEAF else {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
DATABASES = {}
USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "/static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TICKER_SYMBOLS = int(os.environ.get("TICKER_SYMBOLS", "300"))
TICKER_RATE = float(os.environ.get("TICKER_RATE", "3"))
_feed = os.environ.get("TICKER_FEED", "auto").strip().lower()
TICKER_BUILTIN_FEED = _feed == "on" or (_feed == "auto" and not os.environ.get("BAYLEAF_TOPICS_REDIS"))
