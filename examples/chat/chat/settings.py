"""Settings for the Bayleaf chat example (Django 3.2 + Channels).

Environment:
  DJANGO_DEBUG          "1" (default) or "0"
  DJANGO_SECRET_KEY     required when DJANGO_DEBUG=0
  DJANGO_ALLOWED_HOSTS  comma-separated, used when DJANGO_DEBUG=0; WebSocket
                        connections must also come from a page on one of these
                        hosts (Origin header checked by AllowedHostsOriginValidator)
  CHAT_REDIS_URL        e.g. redis://127.0.0.1:6379/0: use Redis as the channel
                        layer, so several server processes share the chat rooms;
                        unset: an in-process layer (one server process only)
  CHAT_DB_PATH          SQLite database file (default: db.sqlite3 beside manage.py)
"""
import importlib.util
import os
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

# The "bayleaf" app makes `manage.py runserver` serve the project with Bayleaf.
# Its package is pyapp/bayleaf in the Bayleaf tree (pip install: the virtualenv's
# site-packages): taken from sys.path when there, else from this tree.
_PYAPP = BASE_DIR.parent.parent / "pyapp"
if importlib.util.find_spec("bayleaf") is None and (_PYAPP / "bayleaf" / "apps.py").is_file():
    sys.path.append(str(_PYAPP))
_BAYLEAF_APP = ["bayleaf"] if importlib.util.find_spec("bayleaf") is not None else []

DEBUG = os.environ.get("DJANGO_DEBUG", "1").lower() not in ("0", "false", "no", "off", "")

if DEBUG:
    SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "bayleaf-example-insecure-dev-key")
    ALLOWED_HOSTS = ["*"]
else:
    SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
    ALLOWED_HOSTS = [
        h.strip()
        for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")
        if h.strip()
    ]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    *_BAYLEAF_APP,  # before staticfiles, whose runserver it replaces
    "django.contrib.staticfiles",
    "channels",
    "rooms",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "chat.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

ASGI_APPLICATION = "chat.asgi.application"

CHAT_REDIS_URL = os.environ.get("CHAT_REDIS_URL", "").strip()
if CHAT_REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [CHAT_REDIS_URL]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("CHAT_DB_PATH") or BASE_DIR / "db.sqlite3",
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_L10N = True
USE_TZ = True

STATIC_URL = "/static/"

# /echo/ takes large bodies in the server's tests and benchmarks.
DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024 * 1024
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
