"""Real browser: Debian's chromium, driven by playwright-core (ticker.mjs), on the
ticker example's price board (examples/ticker) served by bayleaf: prices come
and change on screen, and a symbol added later shows its price at once (its
retained value). In one process with the built-in feed, and with two workers
through a real redis-server with the feed as `manage.py ticker_feed`.

Needs what test_chat_browser.py needs (node, playwright-core, chromium, redis-server).
"""

import importlib.util
import os
import subprocess

import pytest

from test_chat_browser import (BAYLEAF, CHROMIUM, HERE, NODE, NODE_TIMEOUT, PYTHON, REDIS_SERVER, REPO,  # noqa: F401
                               free_port, playwright_installed, processes, pytestmark)

EXAMPLE = REPO / "examples" / "ticker"
# A slow feed: each symbol moves every 50 s, so a price shown right after a
# symbol is added was published before: the retained value. The page watches
# the 29 others, whose prices change about every 2 s between them.
SLOW = {"TICKER_SYMBOLS": "30", "TICKER_RATE": "0.02"}
ADDED = "X005"
_spec = importlib.util.spec_from_file_location("ticker_market", EXAMPLE / "board" / "market.py")
_market = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_market)
WATCH = ",".join(s for s in _market.symbols(30) if s != ADDED)


@pytest.fixture
def ticker_env():
    if not os.access(BAYLEAF, os.X_OK):
        pytest.fail(f"bayleaf not built ({BAYLEAF}): run .ci/build or set BAYLEAF_BIN")
    env = dict(os.environ)
    for k in ("PYTHONHOME", "PYTHONPATH", "DJANGO_SETTINGS_MODULE", "BAYLEAF_TOPICS_REDIS", "TICKER_FEED"):
        env.pop(k, None)
    env.update({"PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1", "DJANGO_DEBUG": "1", **SLOW})
    return env


def start_ticker(processes, env, name="bayleaf", args=()):
    port = free_port()
    processes.start(name, [BAYLEAF, "-b", "127.0.0.1", "-p", str(port), *args, "ticker.asgi:application"], port,
                    cwd=EXAMPLE, env=env)
    return f"http://127.0.0.1:{port}"


def run_ticker_script(processes, url, added=ADDED, watch=WATCH):
    env = dict(os.environ, CHROMIUM=CHROMIUM)
    try:
        proc = subprocess.run([NODE, "ticker.mjs", url, added, watch], cwd=str(HERE), env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=NODE_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"ticker.mjs still running after {NODE_TIMEOUT}s\n{e.stdout}\n{e.stderr}\n{processes.logs()}")
    report = f"rc {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}\n{processes.logs()}"
    assert proc.returncode == 0, report
    assert "BROWSER-TICKER OK" in proc.stdout, report


def test_price_board_with_the_built_in_feed(playwright_installed, ticker_env, processes):
    url = start_ticker(processes, ticker_env)
    run_ticker_script(processes, url)


def test_price_board_on_two_workers_through_redis(playwright_installed, ticker_env, processes, tmp_path):
    if not os.access(REDIS_SERVER, os.X_OK):
        pytest.fail(f"{REDIS_SERVER} not found: install Debian's redis-server")
    redis_port = free_port()
    processes.start("redis-server", [REDIS_SERVER, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                                     "--appendonly", "no", "--dir", str(tmp_path)], redis_port, cwd=tmp_path)
    env = dict(ticker_env, BAYLEAF_TOPICS_REDIS=f"redis://127.0.0.1:{redis_port}/0")
    # the feed, a process of its own: every symbol's first price is in Redis before the server starts
    feed = subprocess.Popen([PYTHON, "manage.py", "ticker_feed"], cwd=str(EXAMPLE), env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    processes.procs.append(("ticker_feed", feed, tmp_path / "feed.log"))
    (tmp_path / "feed.log").write_text("(stdout kept by the test)\n")
    line = feed.stdout.readline().decode()
    assert line.startswith("ticker_feed: 30 symbols, 0.02 updates/s"), line
    url = start_ticker(processes, env, args=("--workers", "2"))
    run_ticker_script(processes, url)
