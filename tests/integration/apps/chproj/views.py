"""Plain Django views next to the consumers: log in, inspect state, broadcast."""
import json

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth import authenticate, login
from django.http import HttpResponseNotAllowed, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from . import state
from .consumers import group_name


@csrf_exempt
def login_view(request):
    """POST username + password (form-encoded): sets the session cookie."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    user = authenticate(request, username=request.POST.get("username"), password=request.POST.get("password"))
    if user is None:
        return JsonResponse({"error": "bad credentials"}, status=403)
    login(request, user)
    return JsonResponse({"user": user.get_username()})


def whoami(request):
    return JsonResponse({"user": request.user.get_username(), "authenticated": request.user.is_authenticated})


def stats(request):
    return JsonResponse(state.snapshot())


def group_size(request, name):
    """How many channels the channel layer has in group `name`."""
    layer = get_channel_layer()
    if settings.REDIS_URL:
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL)
        try:
            size = client.zcard(f"{layer.prefix}:group:{name}")
        finally:
            client.close()
    else:
        size = len(layer.groups.get(name, {}))
    return JsonResponse({"group": name, "size": size})


@csrf_exempt
def broadcast(request, room):
    """POST a JSON {"message": ...}: a sync view sends it to the room's group."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    message = json.loads(request.body)["message"]
    async_to_sync(get_channel_layer().group_send)(
        group_name(room), {"type": "chat.message", "message": message, "sender": "view", "user": ""})
    return JsonResponse({"sent": message})
