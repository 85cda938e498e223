"""Settings of the test project (tests/integration/django_app): Channels, with
"bayleaf" before django.contrib.staticfiles so that runserver is Bayleaf's.

The project is copied to a temporary directory by the tests, so the SQLite
files below live there.  SITEPROJ_DEBUG=0 turns DEBUG off.
"""
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "bayleaf-django-app-tests-not-secret"
DEBUG = os.environ.get("SITEPROJ_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "bayleaf",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.staticfiles",
    "channels",
    "pages",
]
MIDDLEWARE = []
ROOT_URLCONF = "siteproj.urls"
ASGI_APPLICATION = "siteproj.asgi.application"
WSGI_APPLICATION = "siteproj.wsgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": BASE_DIR / "db.sqlite3",
        # A file: live-server tests cannot share an in-memory database.
        "TEST": {"NAME": BASE_DIR / "test_db.sqlite3"},
        "OPTIONS": {"timeout": 20},
    }
}
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

STATIC_URL = "/static/"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
