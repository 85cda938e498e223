"""systemd: socket activation (LISTEN_FDS) and sd_notify (READY/STOPPING/RELOADING)."""

import os
import signal
import socket

import pytest

from harness import bayleaf_only, listening_tcp_ports
from proc_support import NotifySocket, accepts, get_env, get_pid, listening_socket

pytestmark = bayleaf_only


def activation(n=1, names=None):
    """The /bin/sh wrapper that sets the variables for its own pid, as systemd does
    (the sockets are put at 3, 4, ... with fd_map)."""
    extra = f" LISTEN_FDNAMES={names}" if names else ""
    return f'LISTEN_PID=$$ LISTEN_FDS={n}{extra} exec "$0" "$@"'


def test_socket_activation_serves_passed_socket(procs):
    lsock = listening_socket()
    port = lsock.getsockname()[1]
    try:
        p = procs.start([], sh=activation(), fd_map={3: lsock.fileno()}, port=port)
    finally:
        lsock.close()
    assert get_pid(port) == p.pid
    # only the passed socket: no default 127.0.0.1:8000
    assert listening_tcp_ports(p.pid) == {port}
    assert "Listening on systemd socket 0 (127.0.0.1:%d)" % port in p.stderr
    # consumed: the app and its subprocesses do not see them
    assert get_env(port, "LISTEN_FDS") is None
    assert get_env(port, "LISTEN_PID") is None


def test_socket_activation_two_sockets_with_names(procs, sdir):
    tcp = listening_socket()
    path = os.path.join(sdir, "act.sock")
    uds = listening_socket(socket.AF_UNIX, path)
    port = tcp.getsockname()[1]
    try:
        p = procs.start([], sh=activation(2, "web:admin"), fd_map={3: tcp.fileno(), 4: uds.fileno()},
                        port=port)
    finally:
        tcp.close()
        uds.close()
    assert get_pid(port) == p.pid
    assert get_pid(path) == p.pid
    assert "Listening on systemd socket web" in p.stderr
    assert "Listening on systemd socket admin" in p.stderr
    p.stop()
    assert os.path.exists(path), "a socket systemd owns must not be unlinked"


def test_systemd_endpoint_by_index_next_to_unix_socket(procs, sdir):
    lsock = listening_socket()
    port = lsock.getsockname()[1]
    path = os.path.join(sdir, "u.sock")
    try:
        p = procs.start(["-e", "systemd:domain=INET:index=0", "-u", path],
                        sh=activation(), fd_map={3: lsock.fileno()}, port=port)
    finally:
        lsock.close()
    assert get_pid(port) == p.pid
    assert get_pid(path) == p.pid


def test_socket_activation_for_another_pid_is_ignored(procs, sdir):
    """LISTEN_PID names another process: the variables were inherited by mistake."""
    path = os.path.join(sdir, "u.sock")
    p = procs.start(["-u", path], env={"LISTEN_PID": "1", "LISTEN_FDS": "1"}, unix=path)
    assert get_pid(path) == p.pid
    assert "systemd" not in p.stderr


@pytest.mark.parametrize("kind", ["path", "abstract"])
def test_sd_notify_ready_and_stopping(procs, sdir, kind):
    if kind == "path":
        ns = NotifySocket(path=os.path.join(sdir, "notify"))
    else:
        ns = NotifySocket(abstract=f"bayleaf-test-{os.getpid()}-{os.path.basename(sdir)}")
    try:
        path = os.path.join(sdir, "n.sock")
        # a slow lifespan startup: READY=1 must wait for it
        p = procs.start(["-u", path], env={"NOTIFY_SOCKET": ns.env, "PROC_STARTUP_DELAY": "0.5"},
                        unix=path, wait=False)
        pid, _ = ns.wait_for("READY=1")
        assert pid == p.pid
        assert "Listening on" in p.stderr, "READY=1 before the server accepts"
        assert get_pid(path) == p.pid
        assert get_env(path, "NOTIFY_SOCKET") is None, "the app must not inherit NOTIFY_SOCKET"
        p.send_signal(signal.SIGTERM)
        pid, _ = ns.wait_for("STOPPING=1")
        assert pid == p.pid
        assert p.wait_exit(10) == 0
        assert [m for _, m in ns.drain(0.1) if "READY=1" in m] == []
    finally:
        ns.close()


def test_sd_notify_from_supervisor_only(procs, sdir):
    ns = NotifySocket(path=os.path.join(sdir, "notify"))
    try:
        path = os.path.join(sdir, "w.sock")
        p = procs.start(["-u", path, "--workers", "2"], env={"NOTIFY_SOCKET": ns.env}, unix=path, wait=False)
        pid, _ = ns.wait_for("READY=1")
        assert pid == p.pid
        assert p.stderr.count("Listening on") == 2, "READY=1 before both workers accept"
        first = set(p.workers())
        p.send_signal(signal.SIGHUP)
        pid, msg = ns.wait_for("RELOADING=1")
        assert pid == p.pid and "MONOTONIC_USEC=" in msg
        pid, _ = ns.wait_for("READY=1", timeout=30)
        assert pid == p.pid
        assert "Reload complete" in p.stderr
        assert not first & set(p.workers())
        p.send_signal(signal.SIGTERM)
        pid, _ = ns.wait_for("STOPPING=1")
        assert pid == p.pid
        assert p.wait_exit(15) == 0
        # workers never spoke to systemd
        assert all(sender == p.pid for sender, _ in ns.drain(0.1))
    finally:
        ns.close()


def test_explicit_listener_replaces_passed_sockets_with_a_warning(procs, sdir):
    lsock = listening_socket()
    path = os.path.join(sdir, "only.sock")
    try:
        p = procs.start(["-u", path], sh=activation(), fd_map={3: lsock.fileno()}, unix=path)
    finally:
        lsock.close()
    assert get_pid(path) == p.pid
    assert "Sockets passed by systemd (1) not served" in p.stderr
    assert listening_tcp_ports(p.pid) == set()
