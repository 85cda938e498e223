from django.conf import settings
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from .market import DEFAULT_WATCH, symbols


@require_GET
def board(request):
    """The price board: ?s=AAPL,MSFT picks the symbols watched at first."""
    known = symbols(settings.TICKER_SYMBOLS)
    watch = [s for s in request.GET.get("s", "").upper().split(",") if s in known] or DEFAULT_WATCH
    return render(request, "board/board.html", {"watch": watch, "symbols": known})


@require_GET
def health(request):
    return JsonResponse({"status": "ok"})
