#!/usr/bin/python3
"""Channels' own cost per message, with no server: the floor under ws_bench.py.

Runs the benchmark's consumers (apps/chbench) in one asyncio loop (uvloop),
each given an in-process receive queue and a send() that only counts, and
measures the CPU time per message of:

  echo    50 EchoConsumers; a round puts one websocket.receive in every queue
          and waits for the 50 sends (ws_bench's ch-echo-50 without sockets);
  fanout  1,000 SubscriberConsumers in one group; a round is one group_send
          and waits for the 1,000 sends (ws_bench's fanout without sockets).

Whatever a server adds (sockets, framing, its own event plumbing) comes on top
of this, so a server whose Python thread spends about this much per message
has nothing of its own left to cut there. ws_bench.py reports the servers'
figures; compare its "CPU µs/msg" of the Python side with these.

    /usr/bin/python3 tests/bench/channels_floor.py [--rounds-echo N] [--rounds-fanout N]
"""

import argparse
import asyncio
import gc
import os
import sys
import time
from pathlib import Path

APPS = Path(__file__).resolve().parent / "apps"


def scope(path):
    return {"type": "websocket", "path": path, "raw_path": path.encode(), "headers": [],
            "query_string": b"", "subprotocols": [], "url_route": {"args": (), "kwargs": {}}}


async def run(consumer, path, n, rounds, start_round):
    """n consumers of one class; start_round(queues) starts a round whose end
    is n sends. Returns CPU µs per message over `rounds` rounds."""
    app = consumer.as_asgi()
    sent = 0
    round_done = asyncio.Event()
    queues = []

    async def send(message):
        nonlocal sent
        if message["type"] == "websocket.send":
            sent += 1
            if sent % n == 0:
                round_done.set()

    async def connection():
        q = asyncio.Queue()
        queues.append(q)
        q.put_nowait({"type": "websocket.connect"})
        await app(scope(path), q.get, send)

    tasks = [asyncio.ensure_future(connection()) for _ in range(n)]
    await asyncio.sleep(0.3)  # every consumer accepted (and joined its group)
    gc.freeze()  # as bayleaf does after startup
    for warm in (True, False):
        count = max(rounds // 10, 1) if warm else rounds
        c0 = time.process_time()
        for _ in range(count):
            round_done.clear()
            await start_round(queues)
            await round_done.wait()
        cpu = time.process_time() - c0
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return cpu * 1e6 / (n * rounds)


async def main(args):
    from channels.layers import get_channel_layer
    from chbench.consumers import GROUP, EchoConsumer, SubscriberConsumer

    async def echo_round(queues):
        for q in queues:
            q.put_nowait({"type": "websocket.receive", "text": "x" * 32})

    async def fanout_round(queues):
        await get_channel_layer().group_send(GROUP, {"type": "bench.message", "text": "x" * 64})

    echo = await run(EchoConsumer, "/ws/echo/", 50, args.rounds_echo, echo_round)
    fanout = await run(SubscriberConsumer, "/ws/sub/", 1000, args.rounds_fanout, fanout_round)
    print(f"Channels echo, 50 consumers, 32 B:    {echo:5.1f} µs CPU/msg "
          f"(at most {1e6 / echo:,.0f} msgs/s on one core)")
    print(f"Channels fan-out, 1,000 subscribers: {fanout:5.1f} µs CPU/delivery "
          f"(at most {1e6 / fanout:,.0f} deliveries/s on one core)")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds-echo", type=int, default=4000)
    p.add_argument("--rounds-fanout", type=int, default=200)
    args = p.parse_args()
    sys.path.insert(0, str(APPS))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chbench.settings")
    import django

    django.setup()
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main(args))
