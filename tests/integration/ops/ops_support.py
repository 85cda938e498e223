"""Helpers of the operations tests: scraping --metrics, asking /ready."""

import contextlib
import http.client
import socket
import threading
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from harness import free_port

APP = "ops_app:app"


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path, timeout=10):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


class Metrics:
    """--metrics ADDRESS on a free port (or a unix socket path)."""

    def __init__(self, unix=None):
        self.unix = unix
        self.port = None if unix else free_port()
        self.arg = f"unix:{unix}" if unix else f"127.0.0.1:{self.port}"

    def get(self, path, timeout=10):
        conn = UnixHTTP(self.unix, timeout) if self.unix else http.client.HTTPConnection(
            "127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.getheader("Content-Type"), resp.read().decode()
        finally:
            conn.close()

    def scrape(self):
        """{(sample name, ((label, value), ...)): value}, parsed by prometheus_client."""
        status, ctype, text = self.get("/metrics")
        assert status == 200 and ctype.startswith("text/plain; version=0.0.4"), (status, ctype, text)
        out = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return out

    def ready(self):
        try:
            return self.get("/ready", timeout=5)[0]
        except OSError:
            return None


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0)


def total(samples, name, **labels):
    """The sum over every worker of the samples matching labels."""
    return sum(v for (n, ls), v in samples.items()
               if n == name and all(dict(ls).get(k) == w for k, w in labels.items()))


@contextlib.contextmanager
def loop_blocked(server, gate):
    """The app blocks its event loop (GET /block) until the block ends: yields
    the list the request's status goes into once it has been answered."""
    done = []
    t = threading.Thread(target=lambda: done.append(server.request("GET", f"/block?gate={gate}", timeout=90)[0]))
    t.start()
    try:
        yield done
    finally:
        Path(gate).touch()
        t.join(90)
