"""`manage.py runserver` with "bayleaf" in INSTALLED_APPS (pyapp/bayleaf/management):
Bayleaf serves the project, static files under DEBUG, --noasgi falls back to
Django's WSGI server, the autoreloader restarts bayleaf, and nothing outlives
runserver."""

import os
import signal
import socket
import subprocess

import pytest

from djtools import (RELOADING, assert_no_bayleaf_left, bayleaf_pids, open_websocket, pid_alive,
                     project_env, touch_until, ws_exchange)
from harness import PYTHON, bayleaf_only, wait_until

pytestmark = bayleaf_only

STATIC_PATH = "/static/pages/hello.txt"


def test_serves_http_and_websocket(runserver):
    server = runserver()
    status, headers, body = server.get("/hello/")
    assert status == 200, server.describe()
    assert body == b"hello v1\n"
    assert headers["server"] == "bayleaf"
    # the view ran in the bayleaf process, a grandchild of runserver
    assert int(headers["x-pid"]) in server.bayleaf_pids()
    assert ws_exchange(server.port, "/ws/echo/", send="hi") == "echo: hi"
    assert status == 200
    out = server.stdout
    assert "Performing system checks" in out
    assert "Starting Bayleaf" in out and f"http://127.0.0.1:{server.port}/" in out
    assert "siteproj.settings" in out


def test_static_files_served_under_debug(runserver):
    server = runserver("--noreload")
    status, headers, body = server.get(STATIC_PATH)
    assert status == 200, server.describe()
    assert body == b"static hello\n"
    assert headers["server"] == "bayleaf"


def test_nostatic(runserver):
    server = runserver("--noreload", "--nostatic")
    status, _, _ = server.get(STATIC_PATH)
    assert status == 404
    assert server.get("/hello/")[0] == 200


def test_no_static_files_without_debug_unless_insecure(runserver):
    server = runserver("--noreload", env={"SITEPROJ_DEBUG": "0"})
    assert server.get(STATIC_PATH)[0] == 404
    server = runserver("--noreload", "--insecure", env={"SITEPROJ_DEBUG": "0"})
    status, _, body = server.get(STATIC_PATH)
    assert (status, body) == (200, b"static hello\n")


def test_noasgi_runs_django_wsgi_server(runserver):
    server = runserver("--noasgi", "--noreload")
    status, headers, body = server.get("/hello/")
    assert status == 200, server.describe()
    assert body == b"hello v1\n"
    assert headers["server"].startswith("WSGIServer/")
    assert int(headers["x-pid"]) == server.proc.pid
    assert server.bayleaf_pids() == []
    assert server.get(STATIC_PATH)[0] == 200  # Django's static files handler


def test_verbosity_is_passed_on(runserver):
    server = runserver("--noreload", "-v", "0")
    assert server.get("/hello/")[0] == 200
    (pid,) = server.bayleaf_pids()
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        argv = f.read().split(b"\0")
    assert argv[argv.index(b"-v") + 1] == b"0"
    assert '"GET /hello/' not in server.stdout  # no access log at -v 0


def test_autoreload_restarts_bayleaf(runserver, project):
    server = runserver()
    status, headers, body = server.get("/hello/")
    assert body == b"hello v1\n"
    first = int(headers["x-pid"])
    assert server.bayleaf_pids() == [first]

    views = project / "pages" / "views.py"
    views.write_text(views.read_text().replace('"hello v1"', '"hello v2"'))

    def changed():
        try:
            return server.get("/hello/", timeout=5)[2] == b"hello v2\n"
        except OSError:
            return False  # between two servers

    touch_until(server, views, changed, message="the new code to be served")
    status, headers, _ = server.get("/hello/")
    second = int(headers["x-pid"])
    assert second != first
    assert not pid_alive(first), "the old bayleaf is still running"
    assert server.bayleaf_pids() == [second]
    assert RELOADING in server.stderr
    assert server.alive()


def test_autoreload_survives_an_error_in_the_application(runserver, project):
    server = runserver()
    consumers = project / "pages" / "consumers.py"
    good = consumers.read_text()
    consumers.write_text(good + "\nraise RuntimeError('broken on purpose')\n")
    touch_until(server, consumers, lambda: "broken on purpose" in server.stderr,
                message="the error to be reported")
    wait_until(lambda: not server.bayleaf_pids(), 10, message="the old bayleaf to exit")
    assert server.alive(), server.describe()
    consumers.write_text(good)

    def serving():
        try:
            return server.get("/hello/", timeout=5)[0] == 200
        except OSError:
            return False

    touch_until(server, consumers, serving, message="the fixed code to be served")
    assert len(server.bayleaf_pids()) == 1


@pytest.mark.parametrize("mode", ["autoreload", "noreload"])
def test_ctrl_c_stops_everything(runserver, mode):
    args = ("--noreload",) if mode == "noreload" else ()
    server = runserver(*args)
    (pid,) = server.bayleaf_pids()
    ws = open_websocket(server.port, "/ws/echo/")  # an open connection does not hold it up
    server.signal_group(signal.SIGINT)  # what a terminal's Ctrl-C does
    assert server.wait_exit(20) == 0, server.describe()
    ws.settimeout(5)
    assert ws.recv(100).startswith(b"\x88")  # a close frame: "going away"
    ws.close()
    # runserver waits for bayleaf: it is gone by the time runserver has exited
    assert not pid_alive(pid)
    assert_no_bayleaf_left(server.project, timeout=1)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()


@pytest.mark.parametrize("mode", ["autoreload", "noreload"])
def test_sigterm_to_runserver_stops_everything(runserver, mode):
    args = ("--noreload",) if mode == "noreload" else ()
    server = runserver(*args)
    assert len(server.bayleaf_pids()) == 1
    server.proc.send_signal(signal.SIGTERM)  # only the top process
    assert server.wait_exit(20) == 0, server.describe()
    assert_no_bayleaf_left(server.project, timeout=1)


def test_killed_runserver_leaves_no_orphan(runserver):
    server = runserver("--noreload")
    (pid,) = server.bayleaf_pids()
    server.proc.kill()  # no chance to clean up: bayleaf's parent-death signal does it
    server.proc.wait(10)
    wait_until(lambda: not pid_alive(pid), 10, message="bayleaf to exit after its parent")


def test_killed_autoreloader_child_leaves_no_orphan(runserver):
    server = runserver()
    (pid,) = server.bayleaf_pids()
    with open(f"/proc/{pid}/stat") as f:
        inner = int(f.read().rsplit(")", 1)[1].split()[1])  # bayleaf's parent
    assert inner != server.proc.pid
    os.kill(inner, signal.SIGKILL)
    wait_until(lambda: not pid_alive(pid), 10, message="bayleaf to exit after its parent")
    # the reloader's outer process exits too (its child did not ask for a restart)
    assert server.wait_exit(10) != 0


def test_runserver_exits_when_bayleaf_stops(runserver):
    server = runserver("--noreload")
    (pid,) = server.bayleaf_pids()
    os.kill(pid, signal.SIGTERM)
    assert server.wait_exit(15) == 0, server.describe()
    assert "Bayleaf stopped" in server.stderr


def test_port_in_use(runserver):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        server = runserver("--noreload", port=port, wait=False)
        assert server.wait_exit(30) == 1, server.describe()
    assert "already in use" in server.stderr
    assert server.bayleaf_pids() == []


def test_missing_binary_is_a_command_error(runserver):
    server = runserver("--noreload", env={"BAYLEAF_BIN": "/nonexistent/bayleaf"}, wait=False)
    assert server.wait_exit(30) == 1
    assert "BAYLEAF_BIN=/nonexistent/bayleaf" in server.stderr


def test_system_check_wants_bayleaf_before_staticfiles(project):
    settings = project / "siteproj" / "settings.py"
    text = settings.read_text()
    text = text.replace('    "bayleaf",\n', "").replace(
        '    "django.contrib.staticfiles",\n', '    "django.contrib.staticfiles",\n    "bayleaf",\n')
    settings.write_text(text)
    proc = subprocess.run([PYTHON, "manage.py", "check"], cwd=str(project), env=project_env(),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "bayleaf.E001" in proc.stderr
    assert bayleaf_pids(project) == []
