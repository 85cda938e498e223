"""One Django + Channels site served whole by one bayleaf: WSGI pages, Channels sockets.
Signed-cookie sessions: no database to migrate."""
import os

SECRET_KEY = "bayleaf-wsgi-site-tests-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "channels",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]
ROOT_URLCONF = "siteproj.urls"
ASGI_APPLICATION = "siteproj.asgi.application"
WSGI_APPLICATION = "siteproj.wsgi.application"
DATABASES = {}
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
USE_TZ = True
DOWNLOAD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "download.bin")
