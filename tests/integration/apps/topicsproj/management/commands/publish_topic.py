"""manage.py publish_topic TOPIC N: publishes N messages "<i>:command"."""

from django.core.management.base import BaseCommand

from bayleaf import topics


class Command(BaseCommand):
    help = "Publish N text messages to a topic."

    def add_arguments(self, parser):
        parser.add_argument("topic")
        parser.add_argument("n", type=int)
        parser.add_argument("--retain", action="store_true")

    def handle(self, topic, n, retain=False, **options):
        for i in range(n):
            topics.publish(topic, text=f"{i}:command", retain=retain)
