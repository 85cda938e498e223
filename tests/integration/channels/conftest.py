"""Fixtures of the Django Channels tests: the chproj test project (apps/chproj)
on the server under test, its SQLite database, and a throw-away redis-server."""

import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from chtools import APP, USERS, chproj_env
from harness import APPS_DIR, PYTHON, free_port, server_env

_SETUP_DB = """
import django
django.setup()
from django.contrib.auth.models import User
from django.core.management import call_command
call_command("migrate", interactive=False, verbosity=0)
for name, password in {users!r}.items():
    User.objects.create_user(name, password=password)
print("db ready")
"""


@pytest.fixture(scope="session")
def chproj_db(tmp_path_factory):
    """A migrated SQLite database (auth + sessions) with the users in USERS."""
    path = tmp_path_factory.mktemp("chproj-db") / "db.sqlite3"
    env = server_env({"DJANGO_SETTINGS_MODULE": "chproj.settings", "CHPROJ_DB": str(path)})
    env.pop("CHPROJ_REDIS_URL", None)
    proc = subprocess.run([PYTHON, "-c", _SETUP_DB.format(users=USERS)], cwd=str(APPS_DIR), env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "db ready" in proc.stdout, proc.stdout + proc.stderr
    return path


@pytest.fixture(scope="module")
def chserver(module_server_factory, chproj_db):
    """chproj on the server under test with the in-memory channel layer (one per test module)."""
    return module_server_factory(APP, env=chproj_env(chproj_db))


# --------------------------------------------------------------------------
# redis
# --------------------------------------------------------------------------

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def _redis_ping(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    """A private redis-server on a free loopback port, no persistence; stopped at the end."""
    if not os.access(REDIS_SERVER, os.X_OK):
        pytest.fail(f"{REDIS_SERVER} not found: install Debian's redis-server (.ci/install-deps test)")
    workdir = tmp_path_factory.mktemp("redis")
    port = free_port()
    log = open(workdir / "redis.log", "wb")
    try:
        proc = subprocess.Popen([REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                 "--appendonly", "no", "--dir", str(workdir)],
                                cwd=str(workdir), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    finally:
        log.close()
    try:
        deadline = time.monotonic() + 10
        while not _redis_ping(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("redis-server did not start:\n" + (workdir / "redis.log").read_text(errors="replace"))
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
