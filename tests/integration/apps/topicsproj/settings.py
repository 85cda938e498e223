"""Settings of the topics test project (in-memory channel layer, no database)."""

SECRET_KEY = "bayleaf-topics-tests-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["channels", "topicsproj"]
ROOT_URLCONF = "topicsproj.urls"
ASGI_APPLICATION = "topicsproj.asgi.application"
DATABASES = {}
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
USE_TZ = True
