"""Topics across processes through a real redis-server: two workers
(--workers 2 --topics-redis) and publishers in other processes (plain
redis-cli PUBLISH, the Python helper outside Bayleaf), a retained value
stored before the server started, and Redis killed and started again while
subscribers stay connected."""

import os
import re
import subprocess

import pytest

from harness import APPS_DIR, BAYLEAF, PYTHON, bayleaf_only, server_env, wait_until

from .conftest import APP, PREFIX, WorkerClient, clients_on_both_workers

pytestmark = bayleaf_only

PYAPP = os.path.join(os.path.dirname(__file__), "..", "..", "..", "pyapp")

_HELPER = """
import sys
from bayleaf import topics
topic, first, n, retain = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
for i in range(first, first + n):
    topics.publish(topic, text=f"m{i}", retain=retain)
print("done")
"""


def helper_publish(redis, topic, first, n, retain=False):
    """topics.publish() in a process Bayleaf does not serve: through Redis."""
    env = server_env({"BAYLEAF_TOPICS_REDIS": redis.url, "PYTHONPATH": os.path.abspath(PYAPP)})
    r = subprocess.run([PYTHON, "-c", _HELPER, topic, str(first), str(n), "1" if retain else "0"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "done", r.stdout + r.stderr


def cli_publish(redis, topic, first, n):
    """Plain PUBLISH commands from redis-cli: no Python, no Bayleaf."""
    lines = "".join(f"PUBLISH {PREFIX}{topic} m{i}\n" for i in range(first, first + n))
    redis.cli(stdin=lines.encode())


def texts(client, n):
    return [client.next_text() for _ in range(n)]


@pytest.fixture(scope="module")
def two_workers(redis, module_server_factory):
    return module_server_factory(APP, "--workers", "2", "--topics-redis", redis.url)


def test_every_subscriber_on_both_workers_gets_every_message_in_order(redis, two_workers):
    topic = "px.order"
    clients = clients_on_both_workers(two_workers, f"/ws?topics={topic}")
    try:
        for c in clients:
            assert c.ctl(op="ping")["ok"]  # after the subscribe
        redis.wait_numsub(PREFIX + topic, 2)  # one Redis subscription per worker, not per client
        cli_publish(redis, topic, 0, 50)
        helper_publish(redis, topic, 50, 50)
        # and from inside each worker: through Redis to the other one too
        pids = sorted({c.pid for c in clients})
        first_of = {}
        for c in clients:
            first_of.setdefault(c.pid, c)
        for k, pid in enumerate(pids):
            assert first_of[pid].ctl(op="publish", topic=topic, text=f"m{100 + k}")["ok"]
        want = [f"m{i}" for i in range(100 + len(pids))]
        for c in clients:
            assert texts(c, len(want)) == want, c.pid
    finally:
        for c in clients:
            c.close()


def test_binary_payload_from_another_program_arrives_as_binary(redis, two_workers):
    with WorkerClient(two_workers, "/ws?topics=px.bin") as c:
        c.ctl(op="ping")
        wait_until(lambda: redis.numsub(PREFIX + "px.bin") >= 1, 15)
        redis.cli("-x", "PUBLISH", PREFIX + "px.bin", stdin=b"\xff\x00\x80")
        assert c.next_message() == (0x2, b"\xff\x00\x80")


def test_retained_value_from_another_worker_and_host(redis, two_workers):
    """A retained publish through Redis: the next first subscriber of any worker
    gets it at once, once; a later subscriber of the same worker too."""
    helper_publish(redis, "px.kept", 0, 3, retain=True)
    assert redis.cli("GET", PREFIX + "px.kept") == "m2"
    clients = clients_on_both_workers(two_workers, "/ws?topics=px.kept", per_worker=1)
    try:
        for c in clients:
            assert c.next_text() == "m2"
            assert c.ctl(op="ping")["ok"] and c.messages == []  # not twice
        late = WorkerClient(two_workers, "/ws?topics=px.kept")
        with late:
            assert late.next_text() == "m2"
    finally:
        for c in clients:
            c.close()


def test_retained_value_published_before_the_server_started(redis, start_server):
    helper_publish(redis, "px.before", 7, 1, retain=True)
    server = start_server(APP, "--workers", "2", "--topics-redis", redis.url)
    clients = clients_on_both_workers(server, "/ws?topics=px.before", per_worker=1)
    try:
        for c in clients:
            assert c.next_text() == "m7"
        cli_publish(redis, "px.before", 8, 1)
        for c in clients:
            assert c.next_text() == "m8"
    finally:
        for c in clients:
            c.close()


def test_redis_killed_and_started_again_mid_stream(redis, start_server):
    server = start_server(APP, "--workers", "2", "--topics-redis", redis.url)
    topic = "px.restart"
    clients = clients_on_both_workers(server, f"/ws?topics={topic}", per_worker=1)
    try:
        redis.wait_numsub(PREFIX + topic, 2)
        cli_publish(redis, topic, 0, 20)
        for c in clients:
            assert texts(c, 20) == [f"m{i}" for i in range(20)]

        redis.kill()
        server.wait_for_text(r"(?s)Redis at 127\.0\.0\.1:\d+ is down.*Redis at 127\.0\.0\.1:\d+ is down")
        # the subscribers keep their connection; publishes wait (the policy)
        for c in clients:
            assert c.ctl(op="ping")["ok"]
        assert clients[0].ctl(op="publish", topic=topic, text="during-1")["ok"]
        assert clients[0].ctl(op="publish", topic=topic, text="during-2", retain=True)["ok"]

        redis.start()
        server.wait_for_text(r"(?s)is up again after.*is up again after", timeout=30)
        redis.wait_numsub(PREFIX + topic, 2)  # subscribed again
        cli_publish(redis, topic, 20, 20)
        after = [f"m{i}" for i in range(20, 40)]
        for c in clients:
            got = texts(c, 22 if c.pid == clients[0].pid else 21)
            if c.pid == clients[0].pid:
                # the publisher's worker: both, in order, before what came later
                assert got == ["during-1", "during-2"] + after
            else:
                # the other worker hears the buffered plain message only if it was
                # subscribed again in time; the retained one it gets either way
                # (live, or by the GET when it subscribed again), once
                if got[0] == "during-1":
                    got = got[1:] + [c.next_text()]
                assert got == ["during-2"] + after
        # one line when it went down and one when it came back, per worker
        err = server.stderr
        assert len(re.findall(r"is down \(", err)) == 2, err
        assert len(re.findall(r"is up again after", err)) == 2, err
        assert "Traceback" not in err
        server.assert_serving()
    finally:
        for c in clients:
            c.close()
        if not redis.ping():
            redis.start()


def test_publishes_beyond_the_buffer_are_dropped_and_logged(redis, start_server):
    server = start_server(APP, "--topics-redis", redis.url)
    with WorkerClient(server, "/ws?topics=px.drop") as c:
        redis.wait_numsub(PREFIX + "px.drop", 1)
        redis.kill()
        try:
            server.wait_for_text(r"is down \(")
            # 20 MiB while down: the buffer keeps 16 MiB, the rest is dropped with a line
            status, _, body = server.get("/publish?topic=px.nobody&n=20&size=1048576", timeout=60)
            assert status == 200, body
            server.wait_for_text(r"bytes wait for Redis at .* \(down\): a publish to 'px\.nobody' is dropped")
            assert c.ctl(op="ping")["ok"]
        finally:
            redis.start()
        m = server.wait_for_text(r"is up again after [0-9.]+ s: 1 topics subscribed again, (\d+) publishes buffered, "
                                 r"(\d+) dropped")
        # 20 publishes of 1 MiB and a little: 15 fit in 16 MiB
        assert (int(m.group(1)), int(m.group(2))) == (15, 5), m.group(0)
        redis.wait_numsub(PREFIX + "px.drop", 1)
        cli_publish(redis, "px.drop", 0, 1)
        assert c.next_text() == "m0"
        server.assert_serving()


def test_unix_socket_url_from_the_environment(redis, start_server):
    """BAYLEAF_TOPICS_REDIS, the unix socket form: the flag's stand-in."""
    server = start_server(APP, env={"BAYLEAF_TOPICS_REDIS": f"redis+unix://{redis.unix}"})
    server.wait_for_text(r"topics: using Redis at unix:" + re.escape(redis.unix))
    with WorkerClient(server, "/ws?topics=px.unix") as c:
        redis.wait_numsub(PREFIX + "px.unix", 1)
        cli_publish(redis, "px.unix", 0, 1)
        assert c.next_text() == "m0"


@pytest.mark.parametrize("how", ["flag", "env"])
def test_a_bad_url_is_refused_at_start(how, tmp_path):
    cmd = [BAYLEAF, "-p", "0"]
    env = server_env()
    if how == "flag":
        cmd += ["--topics-redis", "http://127.0.0.1:6379"]
    else:
        env["BAYLEAF_TOPICS_REDIS"] = "redis://127.0.0.1:99999"
    r = subprocess.run(cmd + [APP], cwd=str(APPS_DIR), env=env, capture_output=True, text=True, timeout=60)
    if how == "flag":
        assert r.returncode == 2 and "invalid --topics-redis" in r.stderr, r.stderr
    else:
        assert r.returncode == 1 and "$BAYLEAF_TOPICS_REDIS 'redis://127.0.0.1:99999': invalid port" in r.stderr, \
            r.stderr


def test_a_silent_redis_is_noticed_by_the_ping(redis, start_server):
    """Redis that stops answering (as behind a cut network: no RST, no EOF):
    the health-check PING notices, the worker reconnects once Redis answers."""
    server = start_server(APP, "--topics-redis", redis.url)
    with WorkerClient(server, "/ws?topics=px.silent") as c:
        redis.wait_numsub(PREFIX + "px.silent", 1)
        redis.cli("CLIENT", "PAUSE", "16000", "ALL")
        server.wait_for_text(r"is down \(no answer to PING within 10 s\)", timeout=60)
        assert c.ctl(op="ping")["ok"]  # the WebSocket lives on meanwhile
        server.wait_for_text(r"is up again after", timeout=60)
        redis.wait_numsub(PREFIX + "px.silent", 1)
        cli_publish(redis, "px.silent", 0, 1)
        assert c.next_text() == "m0"
        assert len(re.findall(r"is down \(", server.stderr)) == 1, server.stderr


def test_a_host_name_is_resolved(redis, start_server):
    server = start_server(APP, "--topics-redis", f"redis://localhost:{redis.port}/0")
    server.wait_for_text(rf"topics: using Redis at localhost:{redis.port}")
    with WorkerClient(server, "/ws?topics=px.name") as c:
        redis.wait_numsub(PREFIX + "px.name", 1)
        cli_publish(redis, "px.name", 0, 1)
        assert c.next_text() == "m0"
