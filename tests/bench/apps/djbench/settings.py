"""Minimal Django 3.2 settings for the benchmark: no database, no installed apps."""

SECRET_KEY = "bayleaf-bench-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]

ROOT_URLCONF = "djbench.urls"
INSTALLED_APPS = []
# Deliberately empty: the benchmark measures the server, not Django middleware.
MIDDLEWARE = []
DATABASES = {}
TEMPLATES = []

USE_I18N = False
USE_L10N = False
USE_TZ = True
