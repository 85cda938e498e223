"""Topics through a Redis that wants credentials: a password (--requirepass,
the default user) and an ACL user limited to the topics' keys and channels.
The right credentials work from the flag, the environment variable and the
Python publisher outside Bayleaf; wrong or missing ones give one log line per
outage (no flood, the back-off grows), the worker keeps serving, and it gets
in once Redis takes them. No password is ever written to a log or an error."""

import os
import re
import subprocess

import pytest

from harness import APPS_DIR, BAYLEAF, PYTHON, bayleaf_only, server_env, wait_until

from .conftest import APP, PREFIX, REDIS_SERVER, Redis, WorkerClient, clients_on_both_workers
from .test_topics_redis import cli_publish, texts

pytestmark = bayleaf_only

PYAPP = os.path.join(os.path.dirname(__file__), "..", "..", "..", "pyapp")
PASSWORD = "pw-Default-7f3a"  # the default user's (--requirepass)
BOB_PASSWORD = "pw-Bob-91c2"  # the ACL user's
SECRETS = (PASSWORD, BOB_PASSWORD, "pw-Wrong-55e0")


@pytest.fixture(scope="module")
def redis(tmp_path_factory):
    if not os.access(REDIS_SERVER, os.X_OK):
        pytest.fail(f"{REDIS_SERVER} not found: install Debian's redis-server (.ci/install-deps test)")
    acl = ["--user", "bob", "on", f">{BOB_PASSWORD}", f"~{PREFIX}*", f"&{PREFIX}*", "+@all"]
    r = Redis(tmp_path_factory.mktemp("redis_auth"), extra=["--requirepass", PASSWORD, *acl],
              cli_auth=["--no-auth-warning", "-a", PASSWORD])
    r.start()
    try:
        yield r
    finally:
        r.stop()


def url(redis, user, password, db=0):
    return f"redis://{user}:{password}@127.0.0.1:{redis.port}/{db}"


def connections(redis):
    """Connections Redis has accepted so far (INFO stats)."""
    m = re.search(r"total_connections_received:(\d+)", redis.cli("INFO", "stats"))
    return int(m.group(1))


def assert_no_secret(*texts_):
    for text in texts_:
        for secret in SECRETS:
            assert secret not in text, f"a password in the output:\n{text}"


_HELPER = """
import sys
from bayleaf import topics
topic, text, retain = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
topics.publish(topic, text=text, retain=retain)
print("done")
"""


def helper_publish(redis_url, topic, text, retain=False):
    """topics.publish() outside Bayleaf (pyapp's topics_redis.py, redis-py)."""
    env = server_env({"BAYLEAF_TOPICS_REDIS": redis_url, "PYTHONPATH": os.path.abspath(PYAPP)})
    r = subprocess.run([PYTHON, "-c", _HELPER, topic, text, "1" if retain else "0"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "done", r.stdout + r.stderr


def test_password_in_the_flag_across_two_workers(redis, start_server):
    """--topics-redis redis://:password@host/3: AUTH, then SELECT 3 on the
    command connection; publishes cross the workers, retained values land in db 3.
    The password shows in no log line and not in ps (/proc/PID/cmdline)."""
    server = start_server(APP, "--workers", "2", "--topics-redis", url(redis, "", PASSWORD, db=3))
    topic = "auth.flag"
    clients = clients_on_both_workers(server, f"/ws?topics={topic}", per_worker=1)
    try:
        redis.wait_numsub(PREFIX + topic, 2)
        cli_publish(redis, topic, 0, 3)
        for c in clients:
            assert texts(c, 3) == ["m0", "m1", "m2"]
        # each worker's publish reaches both workers
        for k, publisher in enumerate(clients):
            assert publisher.ctl(op="publish", topic=topic, text=f"w{k}")["ok"]
            for c in clients:
                assert c.next_text() == f"w{k}"
        assert clients[0].ctl(op="publish", topic="auth.kept", text="v1", retain=True)["ok"]
        wait_until(lambda: redis.cli("-n", "3", "GET", PREFIX + "auth.kept") == "v1", 15)
        with WorkerClient(server, "/ws?topics=auth.kept") as late:
            assert late.next_text() == "v1"
        assert len(re.findall(r"topics: using Redis at 127\.0\.0\.1:\d+", server.stderr)) == 2, server.stderr
        assert "cannot reach" not in server.stderr and "is down" not in server.stderr, server.stderr
        assert_no_secret(server.stderr, server.stdout)
        # nor in what ps shows, of the master and of each worker
        pids = [server.pid] + sorted({c.pid for c in clients})
        for pid in pids:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().decode()
            assert "--topics-redis" in cmdline and "redis://:" in cmdline, cmdline
            assert_no_secret(cmdline)
    finally:
        for c in clients:
            c.close()


def test_acl_user_from_the_environment_and_the_python_publisher(redis, start_server):
    """BAYLEAF_TOPICS_REDIS=redis://bob:password@host: AUTH bob <password>; bob
    may touch only the topics' keys and channels, which is all Bayleaf needs.
    The Python publisher outside Bayleaf takes the same URL."""
    bob = url(redis, "bob", BOB_PASSWORD)
    server = start_server(APP, env={"BAYLEAF_TOPICS_REDIS": bob})
    helper_publish(bob, "auth.acl", "r1", retain=True)
    with WorkerClient(server, "/ws?topics=auth.acl") as c:
        assert c.next_text() == "r1"  # the retained value, by the worker's GET as bob
        redis.wait_numsub(PREFIX + "auth.acl", 1)
        helper_publish(bob, "auth.acl", "p2")
        assert c.next_text() == "p2"
        assert c.ctl(op="publish", topic="auth.acl", text="p3")["ok"]
        assert c.next_text() == "p3"
    # the worker's two connections are bob's
    assert len(re.findall(r"\buser=bob\b", redis.cli("CLIENT", "LIST"))) >= 2
    assert_no_secret(server.stderr, server.stdout)


@pytest.mark.parametrize("how", ["wrong", "none"])
def test_refused_credentials_one_line_and_the_worker_serves(how, redis, start_server):
    wrong = SECRETS[2]
    target = url(redis, "", wrong) if how == "wrong" else f"redis://127.0.0.1:{redis.port}/0"
    before = connections(redis)
    server = start_server(APP, "--topics-redis", target)
    reason = "authentication refused: WRONGPASS" if how == "wrong" else "NOAUTH"
    server.wait_for_text(rf"topics: cannot reach Redis at 127\.0\.0\.1:{redis.port} \({reason}")
    # several attempts later (the back-off: 0.1, 0.2, 0.4 s...), still one line
    wait_until(lambda: connections(redis) >= before + 8, 30, message="four attempts")
    with WorkerClient(server, "/ws?topics=auth.refused") as c:
        assert c.ctl(op="ping")["ok"]
        server.assert_serving()
        err = server.stderr
        assert len(re.findall(r"topics: .*Redis at", err)) == 1, err
        assert "Traceback" not in err and "using Redis" not in err, err
        if how == "wrong":
            # Redis comes to take the password: the worker gets in by itself
            redis.cli("ACL", "SETUSER", "default", f">{wrong}")
            try:
                server.wait_for_text(r"topics: Redis at 127\.0\.0\.1:\d+ is up again after .*: 1 topics subscribed",
                                     timeout=30)
                redis.wait_numsub(PREFIX + "auth.refused", 1)
                cli_publish(redis, "auth.refused", 0, 1)
                assert c.next_text() == "m0"
            finally:
                redis.cli("ACL", "SETUSER", "default", f"<{wrong}")
    assert_no_secret(server.stderr, server.stdout)


def test_password_changed_while_serving_one_down_line(redis, start_server):
    """bob's password changes and his connections are cut: one "is down" line
    with the reason, however many attempts fail; back once it is right."""
    server = start_server(APP, "--topics-redis", url(redis, "bob", BOB_PASSWORD))
    with WorkerClient(server, "/ws?topics=auth.change") as c:
        redis.wait_numsub(PREFIX + "auth.change", 1)
        try:
            redis.cli("ACL", "SETUSER", "bob", "resetpass", ">pw-Other-0000")
            redis.cli("CLIENT", "KILL", "USER", "bob")
            # the line of the cut, then one about the credentials
            server.wait_for_text(r"is down \(")
            refused = r"Redis at 127\.0\.0\.1:\d+ refuses the credentials \(authentication refused: WRONGPASS"
            server.wait_for_text(refused)
            before = connections(redis)
            wait_until(lambda: connections(redis) >= before + 8, 30, message="four attempts")
            assert c.ctl(op="ping")["ok"]
            server.assert_serving()
            assert len(re.findall(r"is down \(", server.stderr)) == 1, server.stderr
            assert len(re.findall(refused, server.stderr)) == 1, server.stderr
            assert "is up again" not in server.stderr, server.stderr
        finally:
            redis.cli("ACL", "SETUSER", "bob", "resetpass", f">{BOB_PASSWORD}")
        server.wait_for_text(r"is up again after .*: 1 topics subscribed again", timeout=30)
        redis.wait_numsub(PREFIX + "auth.change", 1)
        cli_publish(redis, "auth.change", 0, 1)
        assert c.next_text() == "m0"
    assert_no_secret(server.stderr, server.stdout)


@pytest.mark.parametrize("how", ["flag", "env"])
def test_a_refused_url_is_shown_without_its_password(how):
    cmd = [BAYLEAF, "-p", "0"]
    env = server_env()
    bad = f"redis://bob:{BOB_PASSWORD}@127.0.0.1:99999/0"
    if how == "flag":
        cmd += ["--topics-redis", bad]
    else:
        env["BAYLEAF_TOPICS_REDIS"] = bad
    r = subprocess.run(cmd + [APP], cwd=str(APPS_DIR), env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode in (1, 2) and "'redis://bob:***@127.0.0.1:99999/0'" in r.stderr, r.stderr
    assert_no_secret(r.stdout, r.stderr)
    h = subprocess.run([BAYLEAF, "--help"], capture_output=True, text=True, timeout=30)
    assert "redis://[[user]:password@]host" in h.stdout
