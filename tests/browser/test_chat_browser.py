"""Real browser: Debian's chromium, driven by playwright-core (chat.mjs), chats
through the example project (examples/chat) served by bayleaf.

Needs node + npm (playwright-core is installed into tests/browser/node_modules by
`npm install --no-audit --no-fund` when missing), /usr/bin/chromium (or $CHROMIUM),
and redis-server for the two-process test. Skipped only when chromium or node is
absent.

Environment: BAYLEAF_BIN (default <repo>/build/bayleaf), CHROMIUM.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
EXAMPLE = REPO / "examples" / "chat"
PYTHON = "/usr/bin/python3"
BAYLEAF = os.environ.get("BAYLEAF_BIN") or str(REPO / "build" / "bayleaf")
CHROMIUM = os.environ.get("CHROMIUM") or "/usr/bin/chromium"
NODE = shutil.which("node")
NPM = shutil.which("npm")
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
NODE_TIMEOUT = 120
NPM_TIMEOUT = 600

pytestmark = [
    pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK), reason=f"chromium not installed ({CHROMIUM})"),
    pytest.mark.skipif(NODE is None, reason="node not installed"),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, proc, what, log_path, timeout=15):
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited at startup (rc {proc.returncode}):\n{Path(log_path).read_text(errors='replace')[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not accepting connections on port {port} after {timeout}s")
        time.sleep(0.05)


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


class Processes:
    """Starts processes with logs in a directory; stops every one of them at the end."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.procs = []

    def start(self, name, cmd, port, cwd, env=None):
        log_path = self.workdir / f"{name}.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(cmd, cwd=str(cwd), env=env, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append((name, proc, log_path))
        wait_for_port(port, proc, name, log_path)
        return proc

    def logs(self):
        return "\n".join(f"--- {name} (rc {proc.poll()}) ---\n{path.read_text(errors='replace')[-3000:]}"
                         for name, proc, path in self.procs)

    def stop_all(self):
        for _, proc, _ in reversed(self.procs):
            stop(proc)


@pytest.fixture(scope="module")
def playwright_installed():
    if not (HERE / "node_modules" / "playwright-core" / "package.json").exists():
        if NPM is None:
            pytest.fail("npm not installed: needed to install playwright-core into tests/browser")
        proc = subprocess.run([NPM, "install", "--no-audit", "--no-fund"], cwd=str(HERE), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=NPM_TIMEOUT)
        assert proc.returncode == 0, f"npm install failed:\n{proc.stdout}\n{proc.stderr}"
    return True


@pytest.fixture
def example_env(tmp_path):
    """Environment of the example project with a freshly migrated SQLite database in tmp_path."""
    if not os.access(BAYLEAF, os.X_OK):
        pytest.fail(f"bayleaf not built ({BAYLEAF}): run .ci/build or set BAYLEAF_BIN")
    env = dict(os.environ)
    for k in ("PYTHONHOME", "PYTHONPATH", "CHAT_REDIS_URL", "DJANGO_SETTINGS_MODULE"):
        env.pop(k, None)
    env.update({"CHAT_DB_PATH": str(tmp_path / "chat.sqlite3"), "PYTHONDONTWRITEBYTECODE": "1",
                "PYTHONUNBUFFERED": "1", "DJANGO_DEBUG": "1"})
    proc = subprocess.run([PYTHON, "manage.py", "migrate", "--noinput"], cwd=str(EXAMPLE), env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"migrate failed:\n{proc.stdout}\n{proc.stderr}"
    return env


@pytest.fixture
def processes(tmp_path):
    procs = Processes(tmp_path)
    try:
        yield procs
    finally:
        procs.stop_all()


def start_bayleaf(processes, env, name="bayleaf", args=()):
    port = free_port()
    processes.start(name, [BAYLEAF, "-b", "127.0.0.1", "-p", str(port), *args, "chat.asgi:application"], port,
                    cwd=EXAMPLE, env=env)
    return f"http://127.0.0.1:{port}"


def run_chat_script(processes, room, *urls):
    env = dict(os.environ, CHROMIUM=CHROMIUM)
    try:
        proc = subprocess.run([NODE, "chat.mjs", room, *urls], cwd=str(HERE), env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=NODE_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"chat.mjs still running after {NODE_TIMEOUT}s\n{e.stdout}\n{e.stderr}\n{processes.logs()}")
    report = f"rc {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}\n{processes.logs()}"
    assert proc.returncode == 0, report
    assert "BROWSER-CHAT OK" in proc.stdout, report


def test_two_pages_chat_in_one_room(playwright_installed, example_env, processes):
    url = start_bayleaf(processes, example_env)
    run_chat_script(processes, "browser-room", url)


def test_two_pages_on_two_servers_share_a_room_through_redis(playwright_installed, example_env, processes, tmp_path):
    """CHAT_REDIS_URL: one page on each of two bayleaf processes, same room."""
    if not os.access(REDIS_SERVER, os.X_OK):
        pytest.fail(f"{REDIS_SERVER} not found: install Debian's redis-server")
    redis_port = free_port()
    processes.start("redis-server", [REDIS_SERVER, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                                     "--appendonly", "no", "--dir", str(tmp_path)], redis_port, cwd=tmp_path)
    env = dict(example_env, CHAT_REDIS_URL=f"redis://127.0.0.1:{redis_port}/0")
    url_a = start_bayleaf(processes, env, "bayleaf-a")
    url_b = start_bayleaf(processes, env, "bayleaf-b")
    run_chat_script(processes, "redis-room", url_a, url_b)


def run_deflate_script(processes, room, url, expect):
    env = dict(os.environ, CHROMIUM=CHROMIUM)
    try:
        proc = subprocess.run([NODE, "deflate.mjs", room, url, expect], cwd=str(HERE), env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=NODE_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"deflate.mjs still running after {NODE_TIMEOUT}s\n{e.stdout}\n{e.stderr}\n{processes.logs()}")
    report = f"rc {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}\n{processes.logs()}"
    assert proc.returncode == 0, report
    assert "BROWSER-DEFLATE OK" in proc.stdout, report


@pytest.mark.parametrize("compression", ["on", "off"])
def test_chromium_negotiates_permessage_deflate(playwright_installed, example_env, processes, compression):
    """Chromium offers permessage-deflate; bayleaf accepts it (ws.extensions says so)
    and a long chat message crosses compressed both ways; with --ws-compression off
    nothing is negotiated and the chat works the same."""
    url = start_bayleaf(processes, example_env, args=("--ws-compression", compression))
    run_deflate_script(processes, f"deflate-{compression}", url, compression)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-v"]))
