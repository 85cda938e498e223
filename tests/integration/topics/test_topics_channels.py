"""One Channels consumer written against bayleaf.topics (apps/topicsproj), run
natively under Bayleaf and on Channels groups under Daphne and uvicorn (when
installed) and under Channels' WebsocketCommunicator: the same client session
passes on each. Publishes come from async consumer code, a sync Django view,
a management command and a thread."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import websockets

from harness import APPS_DIR, BAYLEAF, IS_BAYLEAF, PYTHON, free_port, server_env, wait_until
from ws.ws_support import run

PYAPP = str(Path(__file__).resolve().parents[3] / "pyapp")
APP = "topicsproj.asgi:application"
HERE = Path(__file__).resolve().parent


def have(module):
    return subprocess.run([PYTHON, "-c", f"import {module}"], capture_output=True).returncode == 0


class Peer:
    """A server process on a free port (Bayleaf, Daphne or uvicorn)."""

    def __init__(self, kind, tmp_path):
        self.kind, self.port = kind, free_port()
        cmd = {"bayleaf": [BAYLEAF, "-p", str(self.port), APP],
               "daphne": [PYTHON, "-m", "daphne", "-p", str(self.port), APP],
               "uvicorn": [PYTHON, "-m", "uvicorn", "--port", str(self.port), APP]}[kind]
        self.log = tmp_path / f"{kind}.log"
        env = server_env({"PYTHONPATH": PYAPP, "DJANGO_SETTINGS_MODULE": "topicsproj.settings"})
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(cmd, cwd=str(APPS_DIR), env=env, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

        def up():
            assert self.proc.poll() is None, self.log.read_text()
            import socket
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return True
            except OSError:
                return False
        wait_until(up, 30, message=f"{kind} listening")

    def url(self, path):
        return f"ws://127.0.0.1:{self.port}{path}"

    def get(self, path):
        import urllib.request
        return urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=30).read()

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


KINDS = [pytest.param("bayleaf", marks=pytest.mark.skipif(not IS_BAYLEAF or not os.access(BAYLEAF, os.X_OK),
                                                          reason="bayleaf binary")),
         pytest.param("daphne", marks=pytest.mark.skipif(not have("daphne"), reason="daphne not installed")),
         pytest.param("uvicorn", marks=pytest.mark.skipif(not have("uvicorn"), reason="uvicorn not installed"))]


@pytest.fixture(params=KINDS)
def peer(request, tmp_path):
    p = Peer(request.param, tmp_path)
    yield p
    p.stop()
    text = p.log.read_text(errors="replace")
    assert "Traceback" not in text, text[-3000:]


async def recv_topic(ws, n, timeout=10):
    """The next n topic messages (command replies skipped)."""
    got = []
    while len(got) < n:
        m = await __import__("asyncio").wait_for(ws.recv(), timeout)
        if not m.startswith("ctl:"):
            got.append(m)
    return got


async def ctl(ws, **cmd):
    await ws.send(json.dumps(cmd))
    while True:
        m = await ws.recv()
        if m.startswith("ctl:"):
            return json.loads(m[4:])


def test_one_consumer_on_every_server(peer):
    native = peer.kind == "bayleaf"

    async def go():
        async with websockets.connect(peer.url("/ws/prices/?s=p.A"), open_timeout=60) as ws:
            assert (await ctl(ws, op="sub", topics=["p.B"]))["native"] is native
            # A sync Django view publishes (Django runs it in a thread).
            assert peer.get("/publish/?topic=p.A&n=3") == b"published 3"
            assert await recv_topic(ws, 3) == ["0:view", "1:view", "2:view"]
            # Async consumer code publishes.
            await ws.send(json.dumps({"op": "publish", "topic": "p.B", "text": "from-async"}))
            assert await recv_topic(ws, 1) == ["from-async"]
            # Unsubscribed: p.A's next message does not come, p.B's marker does.
            await ctl(ws, op="unsub", topics=["p.A"])
            peer.get("/publish/?topic=p.A&n=2")
            await ctl(ws, op="publish", topic="p.B", text="mark")
            assert await recv_topic(ws, 1) == ["mark"]
            # A retained value reaches a later subscriber at once.
            peer.get("/publish/?topic=p.R&n=2&retain=1")
            async with websockets.connect(peer.url("/ws/prices/?s=p.R"), open_timeout=60) as late:
                assert await recv_topic(late, 1) == ["1:view"]
            if native:
                # A management command in a thread of the server's process.
                assert peer.get("/publish/?topic=p.B&n=2&via=command") == b"published 2"
                assert await recv_topic(ws, 2) == ["0:command", "1:command"]
    run(go(), timeout=180)


def test_communicator_fallback():
    """Channels' WebsocketCommunicator (no server): the script asserts and prints OK."""
    env = server_env({"PYTHONPATH": PYAPP + os.pathsep + str(APPS_DIR),
                      "DJANGO_SETTINGS_MODULE": "topicsproj.settings"})
    r = subprocess.run([PYTHON, str(HERE / "communicator_check.py")], cwd=str(APPS_DIR), env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip().endswith("OK"), r.stdout + r.stderr
