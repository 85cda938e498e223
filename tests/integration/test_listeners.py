"""Where the server listens: TCP (-b/-p), unix socket (-u), inherited fd (--fd)."""

import os
import socket

import pytest

from harness import (IS_BAYLEAF, RawConn, bayleaf_only, free_port,
                     listening_tcp_ports, skip_server)


def test_unix_socket_serves_requests(start_server, short_dir):
    path = os.path.join(short_dir, "srv.sock")
    server = start_server("echo:app", unix=path)
    with server.connect() as conn:
        for i in range(3):
            resp = conn.request("GET", f"/unix/{i}")
            assert resp.status == 200
            assert resp.json()["scope"]["path"] == f"/unix/{i}"
        assert conn.request("POST", "/body", body=b"u" * 100000).json()["length"] == 100000
    status, _, body = server.get("/hello")  # via http.client over AF_UNIX
    assert status == 200 and body == b"Hello, world!\n"


@bayleaf_only
def test_unix_socket_only_opens_no_tcp_listener(start_server, short_dir):
    server = start_server("echo:app", unix=os.path.join(short_dir, "srv.sock"))
    server.assert_serving()
    assert listening_tcp_ports(server.pid) == set()


@bayleaf_only
def test_unix_socket_and_port_both_listen(start_server, short_dir):
    path = os.path.join(short_dir, "srv.sock")
    server = start_server("echo:app", unix=path, tcp=True)
    assert server.port in listening_tcp_ports(server.pid)
    assert server.get("/hello")[0] == 200  # TCP
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    with RawConn(s) as conn:
        assert conn.request("GET", "/hello").status == 200


@skip_server("uvicorn", reason="uvicorn 0.17 wraps --fd sockets as AF_UNIX")
def test_inherited_fd(start_server):
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(64)
        lsock.set_inheritable(True)
        port = lsock.getsockname()[1]
        server = start_server("echo:app", fd=lsock.fileno())
    finally:
        lsock.close()  # the server holds its own copy now
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    with RawConn(s) as conn:
        resp = conn.request("GET", "/via-fd")
        assert resp.status == 200
        scope = resp.json()["scope"]
        assert scope["path"] == "/via-fd"
        assert list(scope["server"]) == ["127.0.0.1", port]
        assert list(scope["client"]) == ["127.0.0.1", s.getsockname()[1]]
    if IS_BAYLEAF:
        assert listening_tcp_ports(server.pid) == {port}, "--fd alone must not open another TCP listener"


def test_explicit_bind_address(start_server):
    server = start_server("echo:app", "-b", "127.0.0.1")
    scope = server.get_json("/bound")["scope"]
    assert list(scope["server"]) == ["127.0.0.1", server.port]


def _ipv6_loopback_works():
    if not socket.has_ipv6:
        return False
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback_works(), reason="no IPv6 loopback here")
def test_ipv6_bind(start_server):
    port = free_port()
    server = start_server("echo:app", "-b", "::1", "-p", str(port), tcp=False, wait=False)
    server.port = port
    server.host = "::1"
    from harness import wait_until

    def ready():
        if not server.alive():
            pytest.fail("server exited\n" + server.describe())
        try:
            socket.create_connection(("::1", port), timeout=1).close()
            return True
        except OSError:
            return False

    wait_until(ready, 10, message="IPv6 listener")
    s = socket.create_connection(("::1", port), timeout=10)
    with RawConn(s) as conn:
        scope = conn.request("GET", "/v6").json()["scope"]
    assert list(scope["client"])[0] == "::1"
    assert list(scope["server"]) == ["::1", port]


@bayleaf_only
def test_default_tcp_listener_is_loopback(start_server):
    server = start_server("echo:app")
    assert server.port in listening_tcp_ports(server.pid)
    server.assert_serving()
