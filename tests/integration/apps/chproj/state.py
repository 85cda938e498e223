"""Process-wide event counters, read over HTTP at /stats/ (tests prove that
consumer connect()/disconnect() ran in the server process)."""
import collections
import threading

_lock = threading.Lock()
_events = collections.Counter()


def record(event, kind, room=""):
    with _lock:
        _events[f"{event}:{kind}:{room}"] += 1


def snapshot():
    with _lock:
        return dict(_events)
