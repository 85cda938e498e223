"""A topics client over the raw WebSocket client of ws/ws_support.py: commands
to apps/topics_app.py and their "ctl:" replies, topic messages kept apart."""

import json
import urllib.parse

from ws.ws_support import OP_TEXT, open_ws  # noqa: F401


class TopicsClient:
    def __init__(self, server, path="/ws", **kw):
        self.ws = open_ws(server, path, **kw)
        self.messages = []  # (opcode, payload) of topic messages, in arrival order

    def ctl(self, timeout=10.0, **cmd):
        """Send a command; return its reply; topic messages before it are kept."""
        self.ws.send_text(json.dumps(cmd))
        while True:
            op, data = self.ws.recv_message(timeout)
            if op == OP_TEXT and data.startswith(b"ctl:"):
                return json.loads(data[4:])
            self.messages.append((op, data))

    def next_message(self, timeout=10.0):
        if self.messages:
            return self.messages.pop(0)
        return self.ws.recv_message(timeout)

    def next_text(self, timeout=10.0):
        op, data = self.next_message(timeout)
        assert op == OP_TEXT, (op, data[:80])
        return data.decode()

    def close(self):
        self.ws.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def publish(server, topic, n=1, size=8, via="loop", retain=False, binary=False, start=0):
    """n messages "<i>:xxx" of size bytes (i from start) through the app's /publish route."""
    q = urllib.parse.urlencode({"topic": topic, "n": n, "size": size, "via": via, "start": start,
                                "retain": "1" if retain else "0", "binary": "1" if binary else "0"})
    status, _, body = server.get("/publish?" + q, timeout=60)
    assert status == 200 and body == f"published {n}".encode(), (status, body)


def seq_of(text):
    return int(text.split(":", 1)[0])
