import json
import os

from django.contrib.auth.models import User
from django.http import HttpResponse

# The autoreload test rewrites this line and expects the new value to be served.
GREETING = "hello v1"


def hello(request):
    response = HttpResponse(GREETING + "\n", content_type="text/plain")
    response["X-Pid"] = str(os.getpid())
    response["X-Server-Software"] = request.META.get("SERVER_SOFTWARE", "")
    return response


def users(request):
    names = list(User.objects.order_by("username").values_list("username", flat=True))
    return HttpResponse(json.dumps(names), content_type="application/json")
