"""The simulated market: a few hundred symbols whose prices take random walks,
and the topic and message of a price update."""

import json
import math
import random
import time

# Some familiar names first; then made-up ones up to the count asked for.
_NAMED = ["BTC-USD", "ETH-USD", "SOL-USD", "EUR-USD", "GBP-USD", "USD-JPY", "AAPL", "MSFT", "NVDA", "AMZN",
          "GOOG", "META", "TSLA", "ASML", "SAP", "NESN", "SHEL", "TTE", "BABA", "TSM", "GOLD", "OIL", "COPPER",
          "WHEAT"]
# Rough levels for the named ones; the made-up ones start anywhere from 1 to 8000.
_LEVEL = {"BTC-USD": 97000, "ETH-USD": 3600, "SOL-USD": 230, "EUR-USD": 1.05, "GBP-USD": 1.27, "USD-JPY": 150,
          "AAPL": 240, "MSFT": 430, "NVDA": 140, "AMZN": 210, "GOOG": 175, "META": 600, "TSLA": 350, "ASML": 700,
          "SAP": 240, "NESN": 80, "SHEL": 32, "TTE": 55, "BABA": 85, "TSM": 200, "GOLD": 2650, "OIL": 70,
          "COPPER": 4.2, "WHEAT": 5.5}
DEFAULT_WATCH = ["BTC-USD", "ETH-USD", "AAPL", "MSFT", "NVDA", "EUR-USD"]
SYMBOL_MAX = 16


def symbols(n):
    """The first n symbols (n at least the named ones)."""
    extra = [f"X{i:03d}" for i in range(max(0, n - len(_NAMED)))]
    return (_NAMED + extra)[:max(n, len(_NAMED))]


def topic_of(symbol):
    return "ticker." + symbol


class Market:
    """Prices that move by a small random step at each tick (geometric random
    walk), each with the day's opening price for the change."""

    def __init__(self, names, seed=None):
        rng = random.Random(seed)
        self.rng = rng
        self.open = {s: _LEVEL.get(s) or round(math.exp(rng.uniform(0, 9)), 2) for s in names}
        self.price = dict(self.open)

    def step(self, symbol):
        p = self.price[symbol] * math.exp(self.rng.gauss(0, 0.002))
        self.price[symbol] = p
        return self.message(symbol)

    def message(self, symbol):
        p, o = self.price[symbol], self.open[symbol]
        digits = 2 if p >= 10 else 4
        return json.dumps({"s": symbol, "p": round(p, digits), "c": round(p - o, digits),
                           "pc": round(100 * (p - o) / o, 2), "t": int(time.time() * 1000)},
                          separators=(",", ":"))
