"""Minimal Django + Channels settings for the process tests: no database, the
in-memory channel layer (what --workers should warn about)."""
SECRET_KEY = "bayleaf-process-tests-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["channels"]
DATABASES = {}
ROOT_URLCONF = "procproj.urls"
ASGI_APPLICATION = "procproj.asgi.application"
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
USE_TZ = True
