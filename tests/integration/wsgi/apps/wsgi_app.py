"""The WSGI test app: every route wrapped by wsgiref.validate.validator, which
asserts PEP 3333 on both the app's and the server's side. Routes by PATH_INFO:

/hello              one chunk (a list of one)
/environ            the environ's str values as JSON
/read?how=all|n|line|lines|iter&n=N   the body read that way: length, sha256, reads
/stream?n=N         N chunks from a generator, no Content-Length (chunked)
/clen               two chunks under a Content-Length
/write              the write() callable, then an empty iterable
/raise              raises before start_response (500)
/raise-late         raises after its first chunk (connection cut)
/exc-info           start_response again with exc_info before any body: 500 "handled"
/endless?id=K       chunks until the client leaves; closes are counted under K
/closes?id=K        how many times close() ran for K
/file               wsgi.file_wrapper of a real file (big.bin, 1 MiB + 7)
/filelike           wsgi.file_wrapper of a BytesIO
/errors             writes two lines to wsgi.errors
/sleep?s=S          sleeps S seconds (a blocking view)
"""

import hashlib
import io
import json
import os
import threading
import time
from urllib.parse import parse_qs
from wsgiref.validate import validator

HERE = os.path.dirname(os.path.abspath(__file__))
BIG = os.path.join(HERE, "big.bin")
CLOSES = {}
_lock = threading.Lock()


def _big_file():
    if not os.path.exists(BIG):
        data = bytes(range(256)) * 4096 + b"1234567"
        tmp = BIG + ".%d" % os.getpid()
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, BIG)
    return BIG


def _json(start_response, obj, status="200 OK"):
    body = json.dumps(obj).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
    return [body]


def _read(environ, how, n):
    inp = environ["wsgi.input"]
    reads = []
    if how == "all":  # read(-1): the validator wants the size argument
        data = inp.read(-1)
    elif how == "n":
        parts = []
        while True:
            chunk = inp.read(n)
            reads.append(len(chunk))
            if not chunk:
                break
            parts.append(chunk)
        data = b"".join(parts)
    elif how == "line":
        parts = []
        while True:
            line = inp.readline()
            if not line:
                break
            reads.append(len(line))
            parts.append(line)
        data = b"".join(parts)
    elif how == "lines":
        lines = inp.readlines()
        reads = [len(x) for x in lines]
        data = b"".join(lines)
    elif how == "iter":
        lines = list(inp)
        reads = [len(x) for x in lines]
        data = b"".join(lines)
    elif how == "clen":
        # exactly CONTENT_LENGTH, then once more: must be empty
        length = int(environ.get("CONTENT_LENGTH") or 0)
        data = inp.read(length)
        reads = [len(data), len(inp.read(10))]
    else:
        raise ValueError(how)
    return data, reads


class Endless:
    def __init__(self, key):
        self.key = key

    def __iter__(self):
        return self

    def __next__(self):
        time.sleep(0.005)
        return b"x" * 16384

    def close(self):
        with _lock:
            CLOSES[self.key] = CLOSES.get(self.key, 0) + 1


def raw_app(environ, start_response):
    path = environ["PATH_INFO"]
    q = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    if path == "/hello":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"Hello, world!\n"]
    if path == "/environ":
        env = {k: v for k, v in environ.items() if isinstance(v, (str, bool, int))}
        env["wsgi.version"] = list(environ["wsgi.version"])
        return _json(start_response, env)
    if path == "/read":
        data, reads = _read(environ, q.get("how", "all"), int(q.get("n", "1000")))
        return _json(start_response, {"length": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                                      "reads": reads})
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (b"chunk %d\n" % i for i in range(int(q.get("n", "5"))))
    if path == "/clen":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "10")])
        return [b"hello", b"world"]
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written ")
        write(b"twice\n")
        return []
    if path == "/raise":
        raise RuntimeError("view failed on purpose")
    if path == "/raise-late":
        start_response("200 OK", [("Content-Type", "text/plain")])

        def gen():
            yield b"first\n"
            raise RuntimeError("late failure on purpose")
        return gen()
    if path == "/exc-info":
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise ValueError("caught")
        except ValueError:
            import sys
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")],
                           sys.exc_info())
        return [b"handled"]
    if path == "/endless":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return Endless(q["id"])
    if path == "/closes":
        with _lock:
            n = CLOSES.get(q["id"], 0)
        return _json(start_response, {"closes": n})
    if path == "/file":
        size = os.path.getsize(_big_file())
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(size))])
        return environ["wsgi.file_wrapper"](open(BIG, "rb"), 8192)
    if path == "/filelike":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](io.BytesIO(b"abc" * 10000), 1000)
    if path == "/errors":
        err = environ["wsgi.errors"]
        err.write("first error line\nsecond ")
        err.writelines(["error line\n"])
        err.flush()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"logged"]
    if path == "/sleep":
        environ["wsgi.errors"].write("[t] sleeping\n")
        environ["wsgi.errors"].flush()
        time.sleep(float(q.get("s", "1")))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"slept"]
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found"]


app = validator(raw_app)
