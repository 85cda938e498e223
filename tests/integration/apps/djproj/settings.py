"""Minimal Django settings for the integration tests (no database)."""

SECRET_KEY = "bayleaf-integration-tests-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = []
MIDDLEWARE = []
ROOT_URLCONF = "djproj.urls"
DATABASES = {}
USE_TZ = True
DATA_UPLOAD_MAX_MEMORY_SIZE = None
