"""A sync Django view that publishes (Django runs it in a thread)."""

import threading

from django.core.management import call_command
from django.http import HttpResponse

from bayleaf import topics


def publish(request):
    topic, n = request.GET["topic"], int(request.GET.get("n", "1"))
    retain = request.GET.get("retain") == "1"
    if request.GET.get("via") == "command":
        # A management command, run in a thread of the server's process.
        t = threading.Thread(target=call_command, args=("publish_topic", topic, str(n)))
        t.start()
        t.join()
    else:
        for i in range(n):
            topics.publish(topic, text=f"{i}:view", retain=retain)
    return HttpResponse(f"published {n}")
