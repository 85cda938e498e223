"""Helpers of the deployment tests: the deploy app, clients that pick their
source address, and a reference server (Daphne) run by hand."""

import asyncio
import http.client
import json
import signal
import socket
import subprocess
import time
from pathlib import Path

import websockets

from harness import IO_TIMEOUT, PYTHON, server_env

HERE = Path(__file__).resolve().parent
DEPLOY_APPS = HERE / "apps"
APP = "deploy_app:app"
# An address of the loopback network that no configuration trusts: an outside client.
OUTSIDER = "127.0.0.2"


def http_request(port, method, path, body=None, headers=None, source=None, tls=None, timeout=IO_TIMEOUT):
    """One request on a fresh connection: (status, headers dict, body)."""
    src = (source, 0) if source else None
    if tls is not None:
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, source_address=src, context=tls)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout, source_address=src)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        conn.close()


def get_scope(port, path="/scope", **kw):
    status, _, body = http_request(port, "GET", path, **kw)
    assert status == 200, (status, body[:300])
    return json.loads(body)


def header(scope, name):
    values = [v for k, v in scope["headers"] if k == name]
    return values[0] if values else None


def run(coro, timeout=30):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def ws_connect(port, path, headers=None, source=None, tls=None, origin=None):
    scheme = "wss" if tls is not None else "ws"
    kw = {}
    if source:
        kw["local_addr"] = (source, 0)
    if tls is not None:
        kw["ssl"] = tls
    return websockets.connect(f"{scheme}://127.0.0.1:{port}{path}", extra_headers=headers, origin=origin,
                              open_timeout=5, close_timeout=3, ping_interval=None, max_size=None, **kw)


async def ws_scope(port, headers=None, source=None, tls=None):
    """The scope the app saw for a WebSocket on /ws/scope (then an echo round trip)."""
    async with ws_connect(port, "/ws/scope", headers=headers, source=source, tls=tls) as ws:
        scope = json.loads(await asyncio.wait_for(ws.recv(), 5))
        await ws.send("ping")
        assert await asyncio.wait_for(ws.recv(), 5) == "ping"
        return scope


def wait_port(port, proc, deadline, describe):
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"process exited at startup ({proc.returncode})\n{describe()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing listening on {port}\n{describe()}")
        time.sleep(0.05)


class Daphne:
    """The installed Daphne (python3-daphne) on a TCP port, stopped by stop()."""

    def __init__(self, workdir, port, args=(), app=APP):
        self.dir = Path(workdir)
        self.port = port
        self.cmd = [PYTHON, "-m", "daphne", "-p", str(port), *args, app]
        self.out = self.dir / "daphne.out"
        with open(self.out, "wb") as out:
            self.proc = subprocess.Popen(self.cmd, cwd=str(DEPLOY_APPS), env=server_env(), stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_port(port, self.proc, time.monotonic() + 20, self.describe)
        except BaseException:
            self.stop()
            raise

    def describe(self):
        return f"{' '.join(self.cmd)}\n{self.out.read_text(errors='replace')[-3000:]}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
