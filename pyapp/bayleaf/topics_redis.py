"""Publishing topics through Redis from a process that Bayleaf does not serve:
a management command, a cron job, a feed handler on another host.

With ``BAYLEAF_TOPICS_REDIS`` set (the URL the servers take with
``--topics-redis``), ``bayleaf.topics.publish()`` outside Bayleaf sends
the message where every Bayleaf worker of every host listens: ``PUBLISH
<prefix><topic>``; with ``retain=True`` it also stores the value (``SET
<prefix><topic>``) in the same MULTI/EXEC and publishes on the topic's retained
channel (``<prefix><topic>`` followed by one NUL byte), so that each worker
keeps it as the topic's last value. ``BAYLEAF_TOPICS_PREFIX`` is the prefix
(the servers' ``--topics-prefix``; default ``bayleaf:topic:``).

Any other program can do the same with any Redis client; for a plain message,
``redis-cli PUBLISH bayleaf:topic:ticker.BTC-USD '{"price": 97000.5}'``.
"""

import os
import threading

__all__ = ["ENV", "PREFIX_ENV", "DEFAULT_PREFIX", "configured", "publish"]

ENV = "BAYLEAF_TOPICS_REDIS"
PREFIX_ENV = "BAYLEAF_TOPICS_PREFIX"
DEFAULT_PREFIX = "bayleaf:topic:"

_lock = threading.Lock()
_client = None  # (url, redis.Redis): one connection pool per process


def configured():
    """The Redis URL from the environment, or None."""
    return os.environ.get(ENV) or None


def _redis_py_url(url):
    # redis-py spells the unix socket form unix:///path only.
    if url.startswith("redis+unix://"):
        return "unix://" + url[len("redis+unix://"):]
    return url


def _get_client(url):
    global _client
    with _lock:
        if _client is None or _client[0] != url:
            import redis  # Debian python3-redis (a dependency of channels_redis)

            _client = (url, redis.Redis.from_url(_redis_py_url(url)))
        return _client[1]


def publish(topic, payload, retain=False, url=None):
    """Publish payload (bytes; text as its UTF-8) to topic through Redis.
    Blocks for one round trip; raises redis' ConnectionError when Redis is
    unreachable (the caller decides whether to retry)."""
    url = url or configured()
    if not url:
        raise RuntimeError(f"topics: no Redis configured (set {ENV})")
    channel = (os.environ.get(PREFIX_ENV) or DEFAULT_PREFIX).encode() + topic.encode("utf-8")
    client = _get_client(url)
    if not retain:
        client.publish(channel, payload)
        return
    pipe = client.pipeline(transaction=True)
    pipe.set(channel, payload)
    pipe.publish(channel + b"\0", payload)
    pipe.execute()
