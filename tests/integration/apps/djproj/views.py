import hashlib

from django.http import HttpResponse, HttpResponseNotAllowed, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt


def hello(request):
    response = HttpResponse("Hello from Django\n", content_type="text/plain")
    response["X-View"] = "hello"
    return response


def stream(request):
    n = int(request.GET.get("n", "100"))

    def lines():
        for i in range(n):
            yield "line %d\n" % i

    return StreamingHttpResponse(lines(), content_type="text/plain")


@csrf_exempt
def echo(request):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    body = request.body
    data = {
        "length": len(body),
        "sha256": hashlib.sha256(body).hexdigest(),
        "content_type": request.content_type,
    }
    if request.content_type == "application/x-www-form-urlencoded":
        data["form"] = {k: request.POST.getlist(k) for k in request.POST}
    return JsonResponse(data)


def info(request):
    return JsonResponse({
        "method": request.method,
        "path": request.path,
        "path_info": request.path_info,
        "script_name": request.META.get("SCRIPT_NAME"),
        "query": {k: request.GET.getlist(k) for k in request.GET},
        "user_agent": request.META.get("HTTP_USER_AGENT"),
        "remote_addr": request.META.get("REMOTE_ADDR"),
        "server_port": request.META.get("SERVER_PORT"),
        "is_secure": request.is_secure(),
    })
