"""A WSGI app that returns wsgi.file_wrapper of real files, unwrapped (the
validator's wrapper would hide the FileWrapper and the server would iterate
it): the path the server sends with sendfile(2).

/file?size=N&skip=K&clen=auto|none|L&id=ID
    a file of N bytes (data(N)), read from K on; Content-Length N-K (auto),
    none (chunked, or up to the close for HTTP/1.0), or L; close() of the
    file (the wrapper's close) is counted under ID
/closes?id=ID       how many times close() ran for ID
/hello              a small response
"""

import json
import os
import random
import tempfile
import threading
from urllib.parse import parse_qs

DIR = os.environ.get("FILE_APP_DIR") or tempfile.gettempdir()
CLOSES = {}
_lock = threading.Lock()


def data(n):
    """The bytes of a file of n bytes (the tests build the same)."""
    return random.Random(n).randbytes(n)


def _path(n):
    path = os.path.join(DIR, "bl-sendfile-%d.bin" % n)
    if not os.path.exists(path):
        tmp = "%s.%d.%d" % (path, os.getpid(), threading.get_ident())
        with open(tmp, "wb") as f:
            f.write(data(n))
        os.replace(tmp, path)
    return path


class CountingFile(__import__("io").FileIO):
    """A real file whose close() calls are counted."""

    def __init__(self, path, key):
        super().__init__(path, "rb")
        self.key = key

    def close(self):
        with _lock:
            CLOSES[self.key] = CLOSES.get(self.key, 0) + 1
        super().close()


def app(environ, start_response):
    path = environ["PATH_INFO"]
    q = {k: v[0] for k, v in parse_qs(environ["QUERY_STRING"]).items()}
    if path == "/file":
        size = int(q["size"])
        skip = int(q.get("skip", "0"))
        f = CountingFile(_path(size), q.get("id", "-"))
        f.seek(skip)
        headers = [("Content-Type", "application/octet-stream")]
        clen = q.get("clen", "auto")
        if clen != "none":
            headers.append(("Content-Length", str(size - skip if clen == "auto" else int(clen))))
        start_response("200 OK", headers)
        return environ["wsgi.file_wrapper"](f, 65536)
    if path == "/closes":
        with _lock:
            body = json.dumps({"closes": CLOSES.get(q["id"], 0)}).encode()
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    if path == "/hello":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
        return [b"hello"]
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found"]
