"""topics.publish() in the app's lifespan startup, before the server accepts:
the native path (the I/O thread's queue takes it and keeps it until the
thread runs), so a retained value set there is what the first subscriber
gets at once: in one process, in each of two workers, and through Redis."""

import json
import time

import pytest

from harness import bayleaf_only

from .conftest import APP, PREFIX, WorkerClient, clients_on_both_workers

pytestmark = bayleaf_only

STARTUP = "boot.a=A1;boot.b=B1"


def startup_report(server):
    status, _, body = server.get("/startup")
    assert status == 200, body
    report = json.loads(body)
    # the publish took the native path (no fallback, no error)
    assert report == {"published": ["boot.a", "boot.b"], "native": True, "error": None}, report
    return report


def first_two(client):
    return sorted(client.next_text() for _ in range(2))


def test_retained_at_startup_one_process(start_server):
    server = start_server(APP, env={"TOPICS_STARTUP_PUBLISH": STARTUP})
    startup_report(server)
    with WorkerClient(server, "/ws?topics=boot.a,boot.b") as c:
        assert first_two(c) == ["A1", "B1"]
        assert c.ctl(op="ping")["ok"] and c.messages == []  # once each
        assert c.ctl(op="publish", topic="boot.a", text="A2", retain=True)["ok"]
        assert c.next_text() == "A2"
    with WorkerClient(server, "/ws?topics=boot.a") as late:
        assert late.next_text() == "A2"  # the newer retained value, not the startup's


def test_retained_at_startup_two_workers(start_server):
    """Each worker runs its own lifespan startup and keeps its own value."""
    server = start_server(APP, "--workers", "2", env={"TOPICS_STARTUP_PUBLISH": STARTUP})
    clients = clients_on_both_workers(server, "/ws?topics=boot.a,boot.b", per_worker=1)
    try:
        for c in clients:
            assert first_two(c) == ["A1", "B1"]
        startup_report(server)
    finally:
        for c in clients:
            c.close()


@pytest.mark.parametrize("how", ["flag", "env"])
def test_retained_at_startup_through_redis_two_workers(how, redis, start_server):
    """Queued before the I/O thread runs, then before Redis is connected: the
    Redis buffer sends them once it is (SET and the retained channel); a
    subscriber of either worker gets the value at once."""
    redis.cli("DEL", PREFIX + "boot.a", PREFIX + "boot.b")
    env = {"TOPICS_STARTUP_PUBLISH": STARTUP}
    args = ["--workers", "2"]
    if how == "flag":
        args += ["--topics-redis", redis.url]
    else:
        env["BAYLEAF_TOPICS_REDIS"] = redis.url
    server = start_server(APP, *args, env=env)
    clients = clients_on_both_workers(server, "/ws?topics=boot.a,boot.b", per_worker=1)
    try:
        for c in clients:
            assert first_two(c) == ["A1", "B1"]
        assert redis.cli("GET", PREFIX + "boot.a") == "A1"
        startup_report(server)
        # and the live path afterwards, across the workers
        assert clients[0].ctl(op="publish", topic="boot.b", text="B2", retain=True)["ok"]
        for c in clients:
            # each worker published the values at its startup: the other
            # worker's publish may come live after this one's subscribe (the
            # same value again); nothing else comes before B2
            got = c.next_text()
            while got != "B2":
                assert got in ("A1", "B1"), got
                got = c.next_text()
        assert "Traceback" not in server.stderr, server.stderr
    finally:
        for c in clients:
            c.close()


def test_startup_publishes_beyond_the_queue_bound_raise_at_once(start_server):
    """Before the I/O thread runs nobody takes publishes off the queue: beyond
    --max-queued-bytes one raises BlockingIOError at once (not after waiting
    10 s for room that cannot come), and the server starts and serves."""
    spec = ";".join(f"big.{i}=*{512 * 1024}" for i in range(4))  # 2 MiB
    t0 = time.monotonic()
    server = start_server(APP, "--max-queued-bytes", "1048576", env={"TOPICS_STARTUP_PUBLISH": spec})
    started_s = time.monotonic() - t0
    status, _, body = server.get("/startup")
    report = json.loads(body)
    assert report["native"] is True, report
    assert report["error"] == ("BlockingIOError: topic_publish: the publishes made before the server serves "
                               "(lifespan startup) exceed --max-queued-bytes"), report
    assert report["published"] in (["big.0"], ["big.0", "big.1"]), report
    assert started_s < 9, started_s  # no 10 s wait
    with WorkerClient(server, "/ws?topics=big.0") as c:
        assert c.next_text() == "x" * (512 * 1024)
    server.assert_serving()
