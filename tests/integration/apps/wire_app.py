"""What goes on the wire (`wire_app:app`): responses whose framing the app
sets itself, and an app that changes the process locale.

  /frame?case=NAME   http.response.start with the headers of CASES[NAME],
                     then b"hello"; the app lets any error from send() raise
  /locale?name=LOC   locale.setlocale(LC_ALL, LOC), then 200 "ok"
"""

import locale

from common import http_app, query, send_response

CASES = {
    "status-100": (100, []),
    "status-101": (101, []),
    "status-199": (199, []),
    "cl-and-te": (200, [(b"content-length", b"5"), (b"transfer-encoding", b"chunked")]),
    "te-and-cl": (200, [(b"transfer-encoding", b"chunked"), (b"content-length", b"5")]),
    "two-cl": (200, [(b"content-length", b"5"), (b"content-length", b"6")]),
    "cl-space-negative": (200, [(b"content-length", b" -5")]),
    "cl-negative": (200, [(b"content-length", b"-5")]),
    "cl-plus": (200, [(b"content-length", b"+5")]),
    "cl-space": (200, [(b"content-length", b" 5")]),
    "cl-list": (200, [(b"content-length", b"5, 5")]),
    "cl-overflow": (200, [(b"content-length", b"99999999999999999999")]),
    "cl-2^64": (200, [(b"content-length", b"18446744073709551616")]),
    "te-empty": (200, [(b"transfer-encoding", b"")]),
    # accepted
    "cl-same-twice": (200, [(b"content-length", b"5"), (b"Content-Length", b"5")]),
    "connection-closed": (200, [(b"content-length", b"5"), (b"connection", b"closed")]),
    "connection-close-list": (200, [(b"content-length", b"5"), (b"connection", b"keep-alive, close")]),
    "connection-close-upper": (200, [(b"content-length", b"5"), (b"Connection", b"CLOSE")]),
}


async def frame(scope, receive, send):
    status, headers = CASES[query(scope)["case"]]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"hello"})


async def set_locale(scope, receive, send):
    locale.setlocale(locale.LC_ALL, query(scope)["name"])
    await send_response(send, 200, b"ok")


async def _dispatch(scope, receive, send):
    first = scope["path"].lstrip("/").split("/", 1)[0]
    await {"frame": frame, "locale": set_locale}[first](scope, receive, send)


app = http_app(_dispatch)
