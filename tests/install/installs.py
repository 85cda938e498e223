"""Helpers for tests/install: the CPythons found on this machine, virtualenvs
with Bayleaf pip-installed into them, and a server started from one.

Offline, a virtualenv of a Python other than Debian's gets Debian's
meson-python through PYTHONPATH (.ci/offline-backend), and, to serve the chat
example, Debian's pure-Python Django and Channels through a .pth file.
"""

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = "/usr/bin/python3"
DIST_PACKAGES = Path("/usr/lib/python3/dist-packages")
PYENV_ROOT = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
MINORS = ("3.10", "3.11", "3.12", "3.13")
# What the chat example imports, all pure Python in Debian.
CHAT_DEPS = ("django", "channels", "asgiref", "sqlparse", "pytz")
PIP_TIMEOUT = 900  # one meson build on a loaded 2-core machine


def pyenv_python(minor):
    """The newest pyenv CPython of that minor version with a shared libpython, or None."""
    found = []
    for d in PYENV_ROOT.glob("versions/%s.*" % minor):
        rest = d.name[len(minor) + 1:]
        if rest.isdigit() and (d / "lib" / "pkgconfig" / ("python-%s-embed.pc" % minor)).is_file():
            found.append((int(rest), d / "bin" / "python3"))
    return str(max(found)[1]) if found else None


def pythons():
    """pytest params: Debian's Python always, then each pyenv one (skipped when absent)."""
    params = [pytest.param(("system", SYSTEM_PYTHON), id="system")]
    for minor in MINORS:
        exe = pyenv_python(minor)
        marks = [] if exe else [pytest.mark.skip(reason="no CPython %s under %s/versions"
                                                 % (minor, PYENV_ROOT))]
        params.append(pytest.param(("pyenv", exe), id="pyenv-" + minor, marks=marks))
    return params


def clean_env(**extra):
    """os.environ without PYTHONPATH and VIRTUAL_ENV (what a fresh shell has), plus extra."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(extra)
    return env


def run(cmd, timeout=120, env=None, cwd=None):
    """Runs cmd in clean_env() unless told; returns the CompletedProcess (text)."""
    return subprocess.run([str(c) for c in cmd], env=clean_env() if env is None else env,
                          cwd=cwd, capture_output=True, text=True, timeout=timeout)


def make_venv(python, path, system_site_packages):
    cmd = [python, "-m", "venv", path]
    if system_site_packages:
        cmd.insert(3, "--system-site-packages")
    r = run(cmd)
    assert r.returncode == 0, r.stderr
    return Path(path)


def site_packages(venv):
    return next(Path(venv).glob("lib/python3.*/site-packages"))


def pip_env(python, scratch):
    """Environment for pip --no-build-isolation run by a virtualenv of python."""
    env = clean_env()
    if python != SYSTEM_PYTHON:
        backend = Path(scratch) / "backend"
        r = run(["bash", REPO / ".ci" / "offline-backend", backend, python])
        assert r.returncode == 0, r.stderr
        env["PYTHONPATH"] = str(backend)
    return env


def pip(venv, args, env, cwd=REPO):
    """venv's pip, offline (--no-index): returns the CompletedProcess."""
    return subprocess.run([str(Path(venv) / "bin" / "python"), "-m", "pip", *args, "--no-index",
                           "--disable-pip-version-check"],
                          env=env, cwd=cwd, capture_output=True, text=True, timeout=PIP_TIMEOUT)


def link_chat_deps(venv, scratch):
    """Debian's pure-Python Django and Channels, visible to venv through a .pth."""
    deps = Path(scratch) / "chat-deps"
    deps.mkdir(exist_ok=True)
    for name in CHAT_DEPS:
        if (DIST_PACKAGES / name).exists() and not (deps / name).exists():
            (deps / name).symlink_to(DIST_PACKAGES / name)
    (site_packages(venv) / "debian-chat-deps.pth").write_text(str(deps) + "\n")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """A bayleaf process listening on 127.0.0.1:port; stopped by stop()."""

    def __init__(self, cmd, cwd, env, log_path, deadline=60):
        self.port = free_port()
        self.log_path = Path(log_path)
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([str(c) for c in cmd] + ["-p", str(self.port)], cwd=cwd,
                                     env=env, stdout=subprocess.DEVNULL, stderr=self.log,
                                     start_new_session=True)
        end = time.monotonic() + deadline
        while True:
            if self.proc.poll() is not None:
                self.stop()
                raise AssertionError("bayleaf exited with %s before listening:\n%s"
                                     % (self.proc.returncode, self.stderr()))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > end:
                    self.stop()
                    raise AssertionError("bayleaf not listening after %ds:\n%s"
                                         % (deadline, self.stderr()))
                time.sleep(0.05)

    def stderr(self):
        return self.log_path.read_text(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


def ws_exchange(port, path, messages, timeout=20):
    """Opens ws://127.0.0.1:port/path, sends each text message and returns
    the replies (one per message), then closes."""
    import websockets

    async def talk():
        async with websockets.connect("ws://127.0.0.1:%d%s" % (port, path),
                                      open_timeout=timeout, close_timeout=5) as ws:
            replies = []
            for m in messages:
                await ws.send(m)
                replies.append(await asyncio.wait_for(ws.recv(), timeout))
            return replies

    return asyncio.run(talk())


def whoami(port):
    return json.loads(ws_exchange(port, "/", ["whoami"])[0])
