import os
import sys
import time

from django.conf import settings
from django.http import FileResponse, HttpResponse, JsonResponse, StreamingHttpResponse
from django.middleware.csrf import get_token


def hello(request):
    return HttpResponse(b"Hello from Django\n", content_type="text/plain")


def count(request):
    n = request.session.get("n", 0) + 1
    request.session["n"] = n
    return JsonResponse({"count": n})


def form(request):
    if request.method == "POST":
        return JsonResponse({"name": request.POST.get("name"), "upload": len(request.body)})
    return JsonResponse({"csrf": get_token(request)})


def download(request):
    path = settings.DOWNLOAD
    if not os.path.exists(path):
        tmp = path + ".%d" % os.getpid()
        with open(tmp, "wb") as f:
            f.write(os.urandom(3 * 1024 * 1024 + 11))
        os.replace(tmp, path)
    return FileResponse(open(path, "rb"), as_attachment=True, filename="data.bin")


def stream(request):
    n = int(request.GET.get("n", "4"))
    return StreamingHttpResponse((b"part %d\n" % i for i in range(n)), content_type="text/plain")


def boom(request):
    raise ValueError("this view fails on purpose")


def hold(request):
    """Blocks its thread until the test creates the file named by ?until= (60 s at most)."""
    until = request.GET["until"]
    print("holding a WSGI thread", file=sys.stderr, flush=True)
    deadline = time.monotonic() + 60
    while not os.path.exists(until) and time.monotonic() < deadline:
        time.sleep(0.01)
    return HttpResponse(b"released", content_type="text/plain")


def sleep(request):
    time.sleep(float(request.GET.get("s", "1")))
    return HttpResponse(b"slept", content_type="text/plain")
