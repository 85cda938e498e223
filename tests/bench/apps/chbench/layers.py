"""The channel layer of the benchmark: Channels' InMemoryChannelLayer, with its
expiry sweep rate-limited.

The stock InMemoryChannelLayer (Channels 4.0) calls _clean_expired() on every
receive(), and that walks every channel queue and every group membership. A
broadcast to a 1,000-member group wakes 1,000 consumers, each of which sweeps
the 1,000 memberships: O(N²) Python work per broadcast that is the same under
every server and dwarfs what the server itself does. This subclass sweeps at
most once per SWEEP_INTERVAL seconds (expiry is 60 s, so nothing expires late
enough to matter); everything else (queues, capacity, deepcopy per send,
group_send looping over members) is the stock implementation.

ws_bench.py --stock-layer selects the unmodified layer instead
(CHBENCH_STOCK_LAYER=1 in the server's environment, read by settings.py).
"""

import time

from channels.layers import InMemoryChannelLayer

SWEEP_INTERVAL = 1.0


class BenchInMemoryChannelLayer(InMemoryChannelLayer):
    _last_sweep = 0.0

    def _clean_expired(self):
        now = time.monotonic()
        if now - self._last_sweep < SWEEP_INTERVAL:
            return
        self._last_sweep = now
        super()._clean_expired()
