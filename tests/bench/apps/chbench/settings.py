"""Minimal Django 3.2 + Channels 4 settings for the WebSocket benchmark.

No database, no middleware, an in-memory channel layer (one server process).
"""

import os

SECRET_KEY = "bayleaf-bench-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]

ROOT_URLCONF = "chbench.urls"
INSTALLED_APPS = ["channels"]
MIDDLEWARE = []
DATABASES = {}
TEMPLATES = []

USE_I18N = False
USE_L10N = False
USE_TZ = True

ASGI_APPLICATION = "chbench.asgi.application"
# See chbench/layers.py: the stock layer's per-receive sweep is O(N²) per
# broadcast; CHBENCH_STOCK_LAYER=1 selects it anyway.
_STOCK = os.environ.get("CHBENCH_STOCK_LAYER", "") not in ("", "0")
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": ("channels.layers.InMemoryChannelLayer" if _STOCK
                    else "chbench.layers.BenchInMemoryChannelLayer"),
        # The fan-out keeps a few broadcasts in flight per subscriber; the
        # default capacity (100) would be enough, this leaves headroom so no
        # message is ever dropped with ChannelFull.
        "CONFIG": {"capacity": 1000},
    },
}
# topics_bench.py's redis run: channels_redis, for group_send across --workers 2.
if os.environ.get("CHBENCH_REDIS_URL"):
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [os.environ["CHBENCH_REDIS_URL"]], "capacity": 1000},
        },
    }
