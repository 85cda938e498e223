"""The feed: publishes every symbol's price a few times a second through
bayleaf.topics, retained, so that a new subscriber gets the price at once.

Two ways to run it: built into the server process (an asyncio task started by
the ASGI lifespan, when settings.TICKER_BUILTIN_FEED), or as a process of its
own, on any host, through Redis: `manage.py ticker_feed` (feed.run)."""

import asyncio
import logging
import time

from bayleaf import topics

from .market import Market, symbols, topic_of

log = logging.getLogger("ticker.feed")
TICK = 0.05  # seconds: each tick moves the symbols whose turn it is


def _interval(names, rate):
    """Seconds between ticks: TICK, or longer when fewer than one symbol moves per TICK."""
    return max(TICK, 1.0 / (len(names) * rate))


def _schedule(names, rate):
    """Per tick, which symbols move: each symbol rate times a second, spread
    evenly over the ticks (round robin)."""
    per_tick = max(1, round(len(names) * rate * _interval(names, rate)))
    i = 0
    while True:
        batch = [names[(i + k) % len(names)] for k in range(per_tick)]
        i = (i + per_tick) % len(names)
        yield batch


def publish_all(market, names):
    for s in names:
        topics.publish(topic_of(s), text=market.message(s), retain=True)


def run(n_symbols, rate, duration=None, seed=None):
    """The feed in this thread, until duration seconds passed (None: forever)."""
    names = symbols(n_symbols)
    market = Market(names, seed)
    publish_all(market, names)  # every symbol has a price from the start
    start = next_tick = time.monotonic()
    sent = 0
    for batch in _schedule(names, rate):
        for s in batch:
            topics.publish(topic_of(s), text=market.step(s), retain=True)
        sent += len(batch)
        next_tick += _interval(names, rate)
        now = time.monotonic()
        if duration is not None and now - start >= duration:
            return sent
        if next_tick > now:
            time.sleep(next_tick - now)
        else:
            next_tick = now  # behind: do not try to catch up in a burst


async def _run_async(n_symbols, rate):
    names = symbols(n_symbols)
    market = Market(names)
    # Lifespan startup runs before the server takes connections: until then
    # topics.publish is not native yet (and, without a channel layer, refused).
    while True:
        try:
            publish_all(market, names)
            break
        except RuntimeError:
            await asyncio.sleep(0.05)
    loop = asyncio.get_running_loop()
    next_tick = loop.time()
    for batch in _schedule(names, rate):
        for s in batch:
            topics.publish(topic_of(s), text=market.step(s), retain=True)
        next_tick += _interval(names, rate)
        delay = next_tick - loop.time()
        if delay < 0:
            next_tick, delay = loop.time(), 0
        await asyncio.sleep(delay)


_task = None


def start_builtin():
    """Starts the built-in feed on the running loop (once)."""
    global _task
    from django.conf import settings

    if _task is None and settings.TICKER_BUILTIN_FEED:
        log.info("built-in feed: %d symbols, %g updates/s each", settings.TICKER_SYMBOLS, settings.TICKER_RATE)
        _task = asyncio.get_running_loop().create_task(_run_async(settings.TICKER_SYMBOLS, settings.TICKER_RATE))
        _task.add_done_callback(_ended)


def _ended(task):
    if not task.cancelled() and task.exception() is not None:
        log.error("built-in feed stopped", exc_info=task.exception())


async def lifespan(scope, receive, send):
    """ASGI lifespan: the built-in feed runs from startup to shutdown."""
    global _task
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            start_builtin()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if _task is not None:
                _task.cancel()
                _task = None
            await send({"type": "lifespan.shutdown.complete"})
            return
