import hashlib
import re

from django.http import Http404, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

STREAM_LINES = 5
# ASCII only: a room's channel-layer group name ("chat_<room>") must be ASCII.
ROOM_NAME_PATTERN = r"[A-Za-z0-9_-]{1,64}"
ROOM_NAME = re.compile(ROOM_NAME_PATTERN)


@require_GET
def index(request):
    """Lobby: pick a room name. A submitted ?room=NAME goes to that room."""
    room_name = request.GET.get("room", "").strip()
    error = ""
    if room_name:
        if ROOM_NAME.fullmatch(room_name):
            return redirect("room", room_name=room_name)
        error = "Use up to 64 letters, digits, '-' or '_'."
    return render(request, "rooms/index.html", {"error": error, "room_name": room_name})


@require_GET
def room(request, room_name):
    """A room page: the message log and input, live over ws/chat/<room>/."""
    if not ROOM_NAME.fullmatch(room_name):
        raise Http404("no such room")
    return render(request, "rooms/room.html", {"room_name": room_name})


@require_GET
def health(request):
    return JsonResponse({"status": "ok"})


def _lines():
    for i in range(1, STREAM_LINES + 1):
        yield f"line {i} of {STREAM_LINES}\n"


@require_GET
def stream(request):
    """A chunked response: each line is its own body chunk."""
    return StreamingHttpResponse(_lines(), content_type="text/plain; charset=utf-8")


@csrf_exempt
@require_POST
def echo(request):
    """Reports the size and SHA-256 of the request body."""
    body = request.body
    return JsonResponse({"length": len(body), "sha256": hashlib.sha256(body).hexdigest()})
