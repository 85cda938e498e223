"""manage.py ticker_feed: the simulated exchange feed as a process of its own,
on this host or any other, publishing through Redis to every Bayleaf worker
that serves the board (which run with --topics-redis, or BAYLEAF_TOPICS_REDIS,
set to the same Redis).

    BAYLEAF_TOPICS_REDIS=redis://10.0.0.5:6379/0 python3 manage.py ticker_feed
    python3 manage.py ticker_feed --topics-redis redis://10.0.0.5:6379/0 --rate 5
"""

import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from board import feed


class Command(BaseCommand):
    help = "Publish random-walk prices for the ticker board through Redis."

    def add_arguments(self, parser):
        parser.add_argument("--topics-redis", metavar="URL",
                            help="the Redis of the servers (default: $BAYLEAF_TOPICS_REDIS)")
        parser.add_argument("--symbols", type=int, default=settings.TICKER_SYMBOLS,
                            help="how many symbols move (default %(default)s)")
        parser.add_argument("--rate", type=float, default=settings.TICKER_RATE,
                            help="updates per second of each symbol (default %(default)s)")
        parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")

    def handle(self, *args, topics_redis=None, symbols=None, rate=None, duration=None, **options):
        if topics_redis:
            os.environ["BAYLEAF_TOPICS_REDIS"] = topics_redis
        if not os.environ.get("BAYLEAF_TOPICS_REDIS"):
            raise CommandError("the feed reaches the servers through Redis: give --topics-redis URL "
                               "or set BAYLEAF_TOPICS_REDIS (the servers use the same)")
        if symbols < 1 or rate <= 0:
            raise CommandError("--symbols must be at least 1 and --rate above 0")
        self.stdout.write(f"ticker_feed: {symbols} symbols, {rate:g} updates/s each, "
                          f"through {os.environ['BAYLEAF_TOPICS_REDIS']} (Ctrl-C stops)")
        try:
            sent = feed.run(symbols, rate, duration)
        except KeyboardInterrupt:
            return
        self.stdout.write(f"ticker_feed: {sent} updates published")
