"""Django settings of the channels test project (tests/integration/channels).

Environment (set by the fixtures in tests/integration/channels/conftest.py):
  CHPROJ_DB         SQLite file holding auth users and sessions (migrated by the fixture)
  CHPROJ_REDIS_URL  use channels_redis.core.RedisChannelLayer on this Redis;
                    unset: channels.layers.InMemoryChannelLayer
"""
import os

SECRET_KEY = "bayleaf-channels-tests-not-secret"
DEBUG = False
# Also the list AllowedHostsOriginValidator checks the WebSocket Origin against.
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "channels",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "chproj.urls"
ASGI_APPLICATION = "chproj.asgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("CHPROJ_DB") or ":memory:",
        "OPTIONS": {"timeout": 20},
    }
}
SESSION_ENGINE = "django.contrib.sessions.backends.db"
# Fast hashing: the tests create and log in users, they do not test hashing.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

REDIS_URL = os.environ.get("CHPROJ_REDIS_URL", "").strip()
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
DATA_UPLOAD_MAX_MEMORY_SIZE = None
