"""Several listeners at once, Daphne's -e endpoint strings, unix socket modes."""

import os
import re
import socket
import stat
import subprocess

import pytest

from harness import bayleaf_only, free_port, listening_tcp_ports
from proc_support import (APPS, accepts, get_pid, http_get, listening_socket)

pytestmark = bayleaf_only


def run_to_exit(args, timeout=10):
    """bayleaf ARGS run to completion -> (rc, stderr)."""
    from harness import server_env
    from proc_support import BAYLEAF
    proc = subprocess.run([BAYLEAF] + list(args), cwd=str(APPS), env=server_env(), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stderr


def one_line(err):
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_unix_fd_and_tcp_together(procs, sdir):
    path = os.path.join(sdir, "a.sock")
    lsock = listening_socket()
    fd_port = lsock.getsockname()[1]
    port = free_port()
    try:
        p = procs.start(["-u", path, "--fd", lsock.fileno(), "-p", port], pass_fds=[lsock.fileno()],
                        port=port)
    finally:
        lsock.close()
    pid = p.pid
    assert get_pid(port) == pid
    assert get_pid(path) == pid
    assert get_pid(fd_port) == pid
    assert listening_tcp_ports(pid) == {port, fd_port}
    for name in (path, f"127.0.0.1:{port}", f"fd {p.cmd[4]}"):
        assert f"Listening on {name}" in p.stderr


def test_channels_doc_line_fd0_as_stdin(procs, sdir):
    """Channels' deployment docs: `daphne -u /run/daphne/daphne0.sock --fd 0 --access-log -
    --proxy-headers app`, with the supervisor's listening socket as stdin."""
    path = os.path.join(sdir, "daphne0.sock")
    lsock = listening_socket()
    port = lsock.getsockname()[1]
    try:
        p = procs.start(["-u", path, "--fd", "0", "--access-log", "-", "--proxy-headers"],
                        stdin=lsock.fileno(), unix=path)
    finally:
        lsock.close()
    assert get_pid(path) == p.pid
    assert get_pid(port) == p.pid
    status, body = http_get(port, "/from-fd0")
    assert status == 200
    p.wait_for_text(r'"GET /from-fd0" 200', stream="stdout")
    # the socket was moved off fd 0, which now reads /dev/null
    assert os.readlink(f"/proc/{p.pid}/fd/0") == "/dev/null"
    assert listening_tcp_ports(p.pid) == {port}


def test_endpoint_strings(procs, sdir):
    p1, p2 = free_port(), free_port()
    u1, u2 = os.path.join(sdir, "e1.sock"), os.path.join(sdir, "e2.sock")
    lsock = listening_socket()
    fd_port = lsock.getsockname()[1]
    try:
        p = procs.start(["-e", f"tcp:port={p1}:interface=127.0.0.1",
                         "-e", f"tcp:{p2}:interface=127.0.0.1",
                         "-e", f"unix:path={u1}", "--endpoint", f"unix:{u2}",
                         "-e", f"fd:fileno={lsock.fileno()}"],
                        pass_fds=[lsock.fileno()], port=p1)
    finally:
        lsock.close()
    for target in (p1, p2, u1, u2, fd_port):
        assert get_pid(target) == p.pid, target
    # -e alone opens no default 127.0.0.1:8000
    assert listening_tcp_ports(p.pid) == {p1, p2, fd_port}


def test_endpoint_with_escaped_ipv6_interface(procs):
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
    except OSError:
        pytest.skip("no IPv6 loopback here")
    port = free_port()
    p = procs.start(["-e", f"tcp6:port={port}:interface=\\:\\:1"], wait=False)

    def up():
        assert p.alive(), p.describe()
        try:
            socket.create_connection(("::1", port), timeout=1).close()
            return True
        except OSError:
            return False

    from harness import wait_until
    wait_until(up, 15, message="the IPv6 endpoint")
    p.wait_for_text(re.escape(f"Listening on [::1]:{port}"), timeout=15)


@pytest.mark.parametrize("spec", ["ssl:443:privateKey=key.pem:certKey=crt.pem", "ssl6:port=8443"])
def test_tls_endpoint_refused(spec):
    # refused while parsing, before Python starts: an app that cannot be
    # imported is never reached (no clock: the suite runs on busy machines)
    rc, err = run_to_exit(["-e", spec, "no_such_module_xyz:app"])
    assert rc != 0
    line = one_line(err)
    assert "TLS" in line and "nginx" in line, line
    assert "no_such_module_xyz" not in err


@pytest.mark.parametrize("spec,needle", [
    ("udp:53", "unknown type"),
    ("tcp:port=notaport", "invalid port"),
    ("tcp:port=1:colour=red", "unknown option"),
    ("unix:mode=600", "address is required"),
    ("systemd:domain=INET", "systemd:domain="),
])
def test_bad_endpoint_one_line(spec, needle):
    rc, err = run_to_exit(["-e", spec, "procapp:app"])
    assert rc != 0
    assert needle in one_line(err)


def test_systemd_endpoint_without_sockets_refused(sdir):
    rc, err = run_to_exit(["-e", "systemd:domain=INET:index=0", "procapp:app"])
    assert rc != 0
    assert "LISTEN_FDS" in one_line(err)


def test_unix_socket_mode(procs, sdir):
    a, b = os.path.join(sdir, "m1.sock"), os.path.join(sdir, "m2.sock")
    p = procs.start(["-u", a, "--unix-socket-mode", "600", "-e", f"unix:path={b}:mode=640"], unix=a)
    assert stat.S_IMODE(os.stat(a).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(b).st_mode) == 0o640
    assert get_pid(b) == p.pid
    rc, killed = p.stop()
    assert rc == 0 and not killed
    assert not os.path.exists(a) and not os.path.exists(b), "socket files left behind"


def test_live_unix_socket_never_replaced_stale_one_is(procs, sdir):
    path = os.path.join(sdir, "live.sock")
    first = procs.start(["-u", path], unix=path)
    rc, err = run_to_exit(["-u", path, "procapp:app"])
    assert rc != 0 and "another server" in one_line(err)
    assert get_pid(path) == first.pid
    first.stop(grace=10)
    # a stale file (bound, nobody listening) is replaced
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()
    second = procs.start(["-u", path], unix=path)
    assert get_pid(path) == second.pid


def test_listener_error_leaves_no_socket_file(procs, sdir):
    busy = listening_socket()
    path = os.path.join(sdir, "x.sock")
    try:
        rc, err = run_to_exit(["-u", path, "-b", "127.0.0.1", "-p", str(busy.getsockname()[1]),
                               "procapp:app"])
    finally:
        busy.close()
    assert rc != 0 and "in use" in one_line(err).lower()
    assert not os.path.exists(path)


def test_draining_server_leaves_its_successors_socket_file(procs, sdir):
    """A restart where the new server binds the path while the old one still drains:
    the old one must not unlink the new one's socket file when it exits."""
    import threading
    path = os.path.join(sdir, "succ.sock")
    old = procs.start(["-u", path], unix=path)
    results = []
    t = threading.Thread(target=lambda: results.append(http_get(path, "/slow?t=1.5", timeout=60)))
    t.start()
    old.wait_for_text("slow request started", timeout=30)  # in flight: the drain waits for it
    old.send_signal(15)
    old.wait_for_text("shutting down")
    new = procs.start(["-u", path], unix=path)  # the old socket no longer answers: stale
    t.join(60)
    assert results == [(200, b"slow done")]
    assert old.wait_exit(60) == 0
    assert os.path.exists(path)
    assert get_pid(path) == new.pid
