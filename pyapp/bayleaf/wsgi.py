"""WSGI (PEP 3333) beside ASGI: the pool of threads that run the WSGI app.

The C side (gateway/py/py_wsgi.c) does the per-request work: each pool thread
takes HTTP requests straight from the I/O thread, builds the environ, calls the
app and posts the response back. Here: the environ's constant part, wsgi.errors,
wsgi.file_wrapper, and the threads' life.
"""

import logging
import threading

import _bayleaf

from . import logs


class ErrorStream:
    """wsgi.errors: what the app writes goes into the log, a line at a time."""

    def __init__(self, logger):
        self._log = logger
        self._local = threading.local()  # a partial line belongs to its thread

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError("wsgi.errors.write() takes a str, not %s" % type(s).__name__)
        buf = getattr(self._local, "buf", "") + s
        *lines, rest = buf.split("\n")
        for line in lines:
            self._log.error("%s", line)
        self._local.buf = rest

    def writelines(self, seq):
        for s in seq:
            self.write(s)

    def flush(self):
        rest = getattr(self._local, "buf", "")
        if rest:
            self._local.buf = ""
            self._log.error("%s", rest)


class FileWrapper:
    """wsgi.file_wrapper. A wrapper of a real file (fileno() and tell()) is read
    by the server in large blocks without the GIL; any other is iterated."""

    def __init__(self, filelike, blksize=8192):
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self):
        return self

    def __next__(self):
        data = self.filelike.read(self.blksize)
        if data:
            return data
        raise StopIteration


class Pool:
    """The threads that serve the WSGI app's requests."""

    def __init__(self, app, threads, options, log):
        self._log = log
        self._threads = []
        self.size = threads
        base = {
            "wsgi.version": (1, 0),
            "wsgi.multithread": threads > 1,
            "wsgi.multiprocess": int(options.get("workers", 0)) > 1,
            "wsgi.run_once": False,
            "wsgi.errors": ErrorStream(logging.getLogger("bayleaf.wsgi.errors")),
            "wsgi.file_wrapper": FileWrapper,
            "wsgi.input_terminated": True,
            "SERVER_SOFTWARE": "bayleaf",
        }

        def log_error(message, exc):
            logs.log_exception(log, message, exc)

        _bayleaf.wsgi_setup(app, base, FileWrapper, log_error, options.get("root_path", ""))

    def start(self):
        for i in range(self.size):
            t = threading.Thread(target=_bayleaf.wsgi_serve, name="bayleaf-wsgi-%d" % i,
                                 daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout):
        """Idle threads return at once; a view still running gets `timeout` seconds."""
        _bayleaf.wsgi_stop()
        for t in self._threads:
            t.join(timeout)
            if t.is_alive():
                self._log.warning("WSGI thread %s still runs a view at shutdown", t.name)
        self._threads = []


async def refuse_websocket(scope, receive, send):
    """The ASGI side of a WSGI-only server: WebSocket handshakes are refused (403)."""
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.close", "code": 1000})
