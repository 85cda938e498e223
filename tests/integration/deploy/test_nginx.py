"""Debian's nginx in front of the server, configured by examples/deploy/nginx.conf
(unix socket) and nginx-tcp.conf (TCP): HTTP, a Channels chat over WebSocket,
and the client and scheme the app sees through it."""

import asyncio
import http.client
import json

import pytest

from harness import APPS_DIR, wait_until

from .nginx_support import client_ssl_context, needs_nginx
from .support import (APP, DEPLOY_APPS, OUTSIDER, get_scope, header, http_request, run, ws_connect,
                      ws_scope)

pytestmark = needs_nginx

CHAT_APP = "chproj.asgi:application"
CHAT_ENV = {"DJANGO_SETTINGS_MODULE": "chproj.settings", "CHPROJ_REDIS_URL": ""}


class Stack:
    """nginx in front of a server, over a unix socket or TCP."""

    def __init__(self, kind, server, nginx, sock=None):
        self.kind = kind
        self.server = server
        self.nginx = nginx
        self.port = nginx.port
        self.sock = sock

    def upstream_server(self):
        """scope["server"] as the app should see it through nginx."""
        if self.kind == "unix":
            return [self.sock, None]
        return ["127.0.0.1", self.port]  # X-Forwarded-Port: nginx's $server_port

    def check_clean(self):
        assert self.server.alive(), self.server.describe()
        errors = self.nginx.errors()
        assert not errors, "nginx logged errors:\n" + "\n".join(errors[-20:])


@pytest.fixture
def stack_factory(start_server, nginx, sock_path):
    def make(kind, app=APP, cwd=DEPLOY_APPS, env=None, args=(), tls=None, balancer=None):
        args = ("--proxy-headers",) + tuple(args)
        if kind == "unix":
            server = start_server(app, *args, cwd=cwd, env=env, unix=sock_path)
            ng = nginx("nginx.conf", sock_path, tls=tls, balancer=balancer)
            return Stack(kind, server, ng, sock_path)
        server = start_server(app, *args, cwd=cwd, env=env)
        ng = nginx("nginx-tcp.conf", server.port, tls=tls, balancer=balancer)
        return Stack(kind, server, ng)

    return make


KINDS = ["unix", "tcp"]


@pytest.mark.parametrize("kind", KINDS)
def test_http_through_nginx(stack_factory, kind):
    st = stack_factory(kind)
    status, headers, body = http_request(st.port, "GET", "/hello")
    assert (status, body) == (200, b"hello\n")
    assert headers.get("server", "").startswith("nginx")

    # several requests on one client connection (and nginx's pooled upstream ones)
    conn = http.client.HTTPConnection("127.0.0.1", st.port, timeout=10)
    try:
        for i in range(30):
            conn.request("GET", f"/hello?i={i}")
            r = conn.getresponse()
            assert (r.status, r.read()) == (200, b"hello\n")
    finally:
        conn.close()

    # a body in, a streamed body out (nginx buffers both by default)
    status, _, body = http_request(st.port, "POST", "/body", body=b"x" * (1024 * 1024 + 7))
    assert (status, body) == (200, b"1048583")
    status, _, body = http_request(st.port, "GET", "/stream?n=40&size=25000")
    assert status == 200 and len(body) == 40 * 25000
    assert body[:25000] == b"a" * 25000 and body[-25000:] == bytes([97 + 39 % 26]) * 25000
    status, _, body = http_request(st.port, "GET", "/empty")
    assert (status, body) == (204, b"")
    status, _, body = http_request(st.port, "GET", "/missing")
    assert (status, body) == (404, b"no such thing\n")

    # static files are nginx's
    status, _, body = http_request(st.port, "GET", "/static/hello.txt")
    assert (status, body) == (200, b"static hello\n")

    # what the app sees
    scope = get_scope(st.port, path="/scope?q=1")
    assert scope["scheme"] == "http"
    assert scope["client"] == ["127.0.0.1", st.port]  # Daphne's rule: X-Forwarded-Port is the client's
    assert scope["server"] == st.upstream_server()
    assert scope["query_string"] == "q=1"
    assert header(scope, "host") == "127.0.0.1"
    assert header(scope, "x-forwarded-for") == "127.0.0.1"
    assert header(scope, "x-forwarded-host") == "127.0.0.1"
    assert header(scope, "connection") is None  # only WebSockets get one
    assert header(scope, "daphne-root-path") is None
    st.check_clean()


@pytest.mark.parametrize("kind", KINDS)
def test_outside_client_cannot_claim_an_address_or_https(stack_factory, kind):
    """A client that is not a trusted proxy sends X-Forwarded-* of its own:
    nginx appends its real address and overwrites the scheme; Bayleaf takes the
    right-most untrusted address."""
    st = stack_factory(kind)
    forged = {"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https", "Forwarded": "for=7.7.7.7;proto=https"}
    scope = get_scope(st.port, headers=forged, source=OUTSIDER)
    assert scope["client"][0] == OUTSIDER
    assert scope["scheme"] == "http"
    assert header(scope, "x-forwarded-for") == f"6.6.6.6, {OUTSIDER}"
    scope = run(ws_scope(st.port, headers=forged, source=OUTSIDER))
    assert scope["client"][0] == OUTSIDER
    assert scope["scheme"] == "ws"
    st.check_clean()


@pytest.mark.parametrize("kind", KINDS)
def test_trusted_balancer_forwards_https(stack_factory, kind):
    """nginx behind a TLS-terminating balancer (the example's geo block lists
    it): the balancer's X-Forwarded-Proto: https reaches the app as https / wss,
    and its X-Forwarded-For as the client."""
    st = stack_factory(kind, balancer="127.0.0.1")
    lb = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.50"}
    scope = get_scope(st.port, headers=lb)
    assert scope["scheme"] == "https"
    assert scope["client"] == ["203.0.113.50", st.port]
    assert header(scope, "x-forwarded-for") == "203.0.113.50, 127.0.0.1"
    scope = run(ws_scope(st.port, headers=lb))
    assert scope["scheme"] == "wss"
    assert scope["client"] == ["203.0.113.50", st.port]
    scope = get_scope(st.port, headers={"X-Forwarded-Proto": "http"})
    assert scope["scheme"] == "http"
    # anyone else still cannot
    scope = get_scope(st.port, headers=lb, source=OUTSIDER)
    assert scope["scheme"] == "http"
    assert scope["client"][0] == OUTSIDER
    st.check_clean()


@pytest.mark.parametrize("kind", KINDS)
def test_tls_at_nginx(stack_factory, tls_cert, kind):
    """nginx terminates TLS: the app sees https and wss."""
    st = stack_factory(kind, tls=tls_cert)
    ctx = client_ssl_context(tls_cert[0])
    scope = get_scope(st.port, tls=ctx)
    assert scope["scheme"] == "https"
    assert scope["client"] == ["127.0.0.1", st.port]
    scope = run(ws_scope(st.port, tls=ctx))
    assert scope["scheme"] == "wss"
    st.check_clean()


@pytest.mark.parametrize("kind", KINDS)
def test_websocket_echo_through_nginx(stack_factory, kind):
    st = stack_factory(kind)

    async def go():
        async with ws_connect(st.port, "/ws/echo") as ws:
            for size in (1, 1000, 70000, 500000):  # "é" is 2 bytes: under the 1 MiB limit
                text = "é" * size
                await ws.send(text)
                assert await asyncio.wait_for(ws.recv(), 10) == text
            await ws.send(b"\x00\xff" * 1000)
            assert await asyncio.wait_for(ws.recv(), 10) == b"\x00\xff" * 1000
            await ws.close(1000)
            assert ws.close_code == 1000

    run(go())
    st.check_clean()


@pytest.mark.parametrize("kind", KINDS)
def test_channels_chat_through_nginx(stack_factory, kind):
    """The Channels chat consumers (tests/integration/apps/chproj, in-memory
    layer): two members of a room, each sees the other's messages."""
    st = stack_factory(kind, app=CHAT_APP, cwd=APPS_DIR, env=CHAT_ENV)
    origin = f"http://127.0.0.1:{st.port}"

    async def go():
        async with ws_connect(st.port, "/ws/async/chat/lobby/", origin=origin) as alice, \
                ws_connect(st.port, "/ws/sync/chat/lobby/", origin=origin) as bob:
            # both joined the group once the second accept is seen: a message from
            # each must reach both
            await alice.send(json.dumps({"message": "hello from alice"}))
            got_a = json.loads(await asyncio.wait_for(alice.recv(), 10))
            got_b = json.loads(await asyncio.wait_for(bob.recv(), 10))
            assert got_a["message"] == got_b["message"] == "hello from alice"
            assert got_a["sender"] == got_b["sender"] == "async"
            await bob.send(json.dumps({"message": "hi alice"}))
            got_a = json.loads(await asyncio.wait_for(alice.recv(), 10))
            got_b = json.loads(await asyncio.wait_for(bob.recv(), 10))
            assert got_a["message"] == got_b["message"] == "hi alice"
            assert got_a["sender"] == "sync"
        # a foreign origin is refused by AllowedHostsOriginValidator, through nginx too
        try:
            async with ws_connect(st.port, "/ws/async/chat/lobby/", origin="http://evil.example"):
                raise AssertionError("a foreign origin was accepted")
        except Exception as e:  # websockets.InvalidStatusCode
            assert getattr(e, "status_code", None) == 403, repr(e)

    run(go())
    # the consumers ran in the server process and left the group
    stats = json.loads(http_request(st.port, "GET", "/stats/")[2])
    assert stats.get("connect:async:lobby") == 1 and stats.get("connect:sync:lobby") == 1, stats
    wait_until(lambda: json.loads(http_request(st.port, "GET", "/stats/")[2]).get("disconnect:sync:lobby") == 1,
               30, message="disconnect() of the consumers")
    st.check_clean()
