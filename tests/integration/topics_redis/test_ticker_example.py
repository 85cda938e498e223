"""The ticker example's pieces without a browser: its consumer under Channels'
WebsocketCommunicator (the topics helper's fallback: no Bayleaf), and its feed
command, which refuses to run without Redis and publishes retained prices
through it."""

import os
import subprocess
from pathlib import Path

from harness import PYTHON, server_env

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "ticker"

_COMMUNICATOR = """
import asyncio, json, os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ticker.settings")
import django
django.setup()
from channels.testing import WebsocketCommunicator
from bayleaf import topics
from board.consumers import PriceConsumer

async def main():
    topics.publish("ticker.AAPL", text='{"s":"AAPL","p":1.0}', retain=True)  # before anyone watches
    c = WebsocketCommunicator(PriceConsumer.as_asgi(), "/ws/prices/")
    ok, _ = await c.connect()
    assert ok
    await c.send_to(text_data=json.dumps({"watch": ["AAPL", "NOPE"]}))
    got = [json.loads(await c.receive_from()) for _ in range(2)]
    assert {"s": "AAPL", "p": 1.0} in got, got                    # the retained price at once
    assert {"watching": ["AAPL"], "unknown": ["NOPE"]} in got, got
    await topics.apublish("ticker.AAPL", text='{"s":"AAPL","p":2.0}')
    assert json.loads(await c.receive_from()) == {"s": "AAPL", "p": 2.0}
    await topics.apublish("ticker.MSFT", text='{"s":"MSFT","p":3.0}')  # not watched
    assert await c.receive_nothing(0.2)
    await c.disconnect()
    print("ok")

asyncio.run(main())
"""


def example_env(extra=None):
    env = server_env({"TICKER_FEED": "off", **(extra or {})})
    for k in ("BAYLEAF_TOPICS_REDIS", "DJANGO_SETTINGS_MODULE", "PYTHONPATH"):
        env.pop(k, None)
    env.update(extra or {})
    return env


def test_ticker_consumer_under_the_channels_communicator():
    r = subprocess.run([PYTHON, "-c", _COMMUNICATOR], cwd=str(EXAMPLE), env=example_env(), capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr


def test_feed_command_needs_redis():
    r = subprocess.run([PYTHON, "manage.py", "ticker_feed", "--duration", "1"], cwd=str(EXAMPLE), env=example_env(),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "BAYLEAF_TOPICS_REDIS" in r.stderr, r.stdout + r.stderr


def test_feed_command_publishes_retained_prices_through_redis(redis):
    r = subprocess.run([PYTHON, "manage.py", "ticker_feed", "--topics-redis", redis.url, "--symbols", "30",
                        "--rate", "5", "--duration", "1"], cwd=str(EXAMPLE), env=example_env(),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ticker_feed: 30 symbols, 5 updates/s each" in r.stdout
    assert int(r.stdout.strip().rsplit("\n", 1)[-1].split()[1]) > 0, r.stdout  # "ticker_feed: N updates published"
    for symbol in ("BTC-USD", "X005"):
        value = redis.cli("GET", f"bayleaf:topic:ticker.{symbol}")
        assert f'"s":"{symbol}"' in value, value
