"""Warns when the application blocks the event loop.

A callback on the loop bumps a heartbeat every interval; a daemon thread checks
it. When the loop has not run for `threshold` seconds (an async consumer called
time.sleep(), a CPU-bound view...), the thread logs "event loop blocked for N s"
with the loop thread's Python stack, once per stall. The I/O thread keeps
pinging, accepting and timing out connections meanwhile: it never needs the loop.

With --metrics, each heartbeat is also handed to C (`beat(interval)`), where
the metrics responder reads the loop's lag while the loop is blocked.
"""

import sys
import threading
import time
import traceback


class Watchdog:
    def __init__(self, loop, threshold, log, beat=None):
        self.loop = loop
        self.beat = beat
        self.threshold = threshold
        self.log = log
        self.interval = max(min(threshold / 4.0, 1.0), 0.05)
        self._beat = time.monotonic()
        self._loop_thread = threading.get_ident()
        self._stop = threading.Event()
        self._thread = None
        self._handle = None

    def start(self):
        if self.threshold <= 0 and self.beat is None:
            return
        if self.threshold <= 0:
            self.interval = 0.25  # heartbeats for --metrics only
        self._tick()
        if self.threshold <= 0:
            return
        self._thread = threading.Thread(target=self._watch, name="bayleaf-watchdog", daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        if self._handle is not None:
            self._handle.cancel()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def _tick(self):
        self._beat = time.monotonic()
        if self.beat is not None:
            self.beat(self.interval)
        self._handle = self.loop.call_later(self.interval, self._tick)

    def _watch(self):
        warned_for = None
        while not self._stop.wait(self.interval):
            beat = self._beat
            stalled = time.monotonic() - beat
            if stalled < self.threshold:
                warned_for = None
                continue
            if warned_for == beat:
                continue  # one warning per stall
            warned_for = beat
            frame = sys._current_frames().get(self._loop_thread)
            stack = "".join(traceback.format_stack(frame)) if frame is not None else "(no frame)\n"
            self.log.warning("Event loop blocked for %d s; the loop thread is at:\n%s",
                             int(stalled), stack.rstrip())
