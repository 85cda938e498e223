"""Fixtures of the Redis topics tests: a private redis-server per test module
(loopback port, no persistence) that a test may kill and start again on the
same port, and a topics client that knows which worker serves it."""

import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from harness import free_port
from topics.topics_support import OP_TEXT, TopicsClient

APP = "topics_redis_app:app"
PREFIX = "bayleaf:topic:"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"


class Redis:
    def __init__(self, workdir, extra=(), cli_auth=()):
        self.workdir = workdir
        self.extra = list(extra)  # more redis-server arguments (--requirepass, --user)
        self.cli_auth = list(cli_auth)  # redis-cli's credentials for such a server
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.unix = str(workdir / "redis.sock")
        self.proc = None

    def ping(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                answer = s.recv(64)
                # a server with a password answers, but NOAUTH
                return answer.startswith(b"+PONG") or answer.startswith(b"-NOAUTH")
        except OSError:
            return False

    def start(self):
        log = open(self.workdir / "redis.log", "ab")
        try:
            self.proc = subprocess.Popen(
                [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--unixsocket", self.unix, "--dir", str(self.workdir), *self.extra],
                cwd=str(self.workdir), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        finally:
            log.close()
        deadline = time.monotonic() + 10
        while not self.ping():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("redis-server did not start:\n" + (self.workdir / "redis.log").read_text(errors="replace"))
            time.sleep(0.02)

    def kill(self):
        """SIGKILL: what a crash or an OOM kill looks like to the clients."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def cli(self, *args, stdin=None):
        """redis-cli, as any program would publish."""
        r = subprocess.run([REDIS_CLI, "-p", str(self.port), *self.cli_auth, *args], input=stdin, capture_output=True,
                           timeout=30)
        assert r.returncode == 0, r.stderr
        return r.stdout.decode().strip()

    def numsub(self, channel):
        out = self.cli("PUBSUB", "NUMSUB", channel).split("\n")
        return int(out[1])

    def wait_numsub(self, channel, n, timeout=15):
        deadline = time.monotonic() + timeout
        while self.numsub(channel) != n:
            assert time.monotonic() < deadline, f"{channel}: {self.numsub(channel)} subscribers, not {n}"
            time.sleep(0.02)


@pytest.fixture(scope="module")
def redis(tmp_path_factory):
    if not os.access(REDIS_SERVER, os.X_OK):
        pytest.fail(f"{REDIS_SERVER} not found: install Debian's redis-server (.ci/install-deps test)")
    r = Redis(tmp_path_factory.mktemp("redis"))
    r.start()
    try:
        yield r
    finally:
        r.stop()


class WorkerClient(TopicsClient):
    """A TopicsClient whose first message says which worker serves it."""

    def __init__(self, server, path):
        super().__init__(server, path)
        op, data = self.ws.recv_message(10)
        assert op == OP_TEXT and data.startswith(b"pid:"), data
        self.pid = int(data[4:])


def clients_on_both_workers(server, path, per_worker=2, tries=60):
    """Connects until per_worker connections of each of the two workers are open;
    closes the extra ones. Returns the kept clients."""
    # both workers accept (a fresh server answers once its first worker does)
    server.wait_for_text(r"(?s)Listening on .*\(worker \d+\).*Listening on .*\(worker \d+\)")
    by_pid, extra = {}, []
    for _ in range(tries):
        c = WorkerClient(server, path)
        group = by_pid.setdefault(c.pid, [])
        (group if len(group) < per_worker else extra).append(c)
        if len(by_pid) == 2 and all(len(g) >= per_worker for g in by_pid.values()):
            break
    for c in extra:
        c.close()
    kept = [c for g in by_pid.values() for c in g]
    if len(by_pid) != 2 or any(len(g) < per_worker for g in by_pid.values()):
        for c in kept:
            c.close()
        pytest.fail(f"connections did not reach both workers: {sorted((p, len(g)) for p, g in by_pid.items())}")
    return kept
