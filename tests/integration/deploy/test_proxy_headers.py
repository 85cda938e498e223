"""Proxy headers end to end (no proxy: the test client plays one): who is
trusted, what the scope and the access log then say. The parsing rules
themselves are unit-tested (tests/unit/test_proxy.c)."""

import json
import re
import subprocess

import pytest

from harness import APPS_DIR, BAYLEAF, bayleaf_only, wait_until

from .support import APP, DEPLOY_APPS, OUTSIDER, get_scope, header, run, ws_scope

pytestmark = bayleaf_only

FORWARDED = {"X-Forwarded-For": "6.6.6.6, 203.0.113.7", "X-Forwarded-Proto": "https",
             "X-Forwarded-Port": "8443"}


def serve(start_server, *args, **kw):
    return start_server(APP, *args, cwd=DEPLOY_APPS, **kw)


def test_off_by_default(start_server):
    """Like Daphne: without --proxy-headers the headers are the app's business only."""
    server = serve(start_server)
    scope = get_scope(server.port, headers=FORWARDED)
    assert scope["client"][0] == "127.0.0.1" and scope["client"][1] > 0
    assert scope["scheme"] == "http"
    assert scope["server"] == ["127.0.0.1", server.port]
    assert header(scope, "x-forwarded-for") == "6.6.6.6, 203.0.113.7"


def test_trusted_loopback_proxy(start_server):
    server = serve(start_server, "--proxy-headers")
    scope = get_scope(server.port, headers=FORWARDED)
    # the right-most address that is not a trusted proxy; Daphne's port rule
    assert scope["client"] == ["203.0.113.7", 8443]
    assert scope["scheme"] == "https"
    assert scope["server"] == ["127.0.0.1", 8443]
    # the headers themselves stay in the scope
    assert header(scope, "x-forwarded-proto") == "https"
    plain = get_scope(server.port, headers={"X-Forwarded-For": "203.0.113.8"})
    assert plain["client"] == ["203.0.113.8", 0]
    assert plain["scheme"] == "http"
    assert plain["server"] == ["127.0.0.1", server.port]


def test_untrusted_peers_are_ignored(start_server):
    # not in the list
    server = serve(start_server, "--proxy-headers", "--forwarded-allow-ips", "10.0.0.0/8, 192.168.0.1")
    scope = get_scope(server.port, headers=FORWARDED)
    assert scope["client"][0] == "127.0.0.1" and scope["client"][1] not in (0, 8443)
    assert scope["scheme"] == "http"
    assert scope["server"] == ["127.0.0.1", server.port]
    # another loopback address than the default list's
    server = serve(start_server, "--proxy-headers")
    scope = get_scope(server.port, headers=FORWARDED, source=OUTSIDER)
    assert scope["client"][0] == OUTSIDER
    assert scope["scheme"] == "http"
    # ... unless everyone is trusted
    server = serve(start_server, "--proxy-headers", "--forwarded-allow-ips", "*")
    scope = get_scope(server.port, headers=FORWARDED, source=OUTSIDER)
    assert scope["client"] == ["6.6.6.6", 8443]  # "*": every hop trusted, the left-most is the client


def test_forwarded_rfc7239(start_server):
    server = serve(start_server, "--proxy-headers")
    scope = get_scope(server.port, headers={
        "Forwarded": 'for=198.51.100.1, for="[2001:db8::7]:4711";proto=https;host="example.com:8443"'})
    assert scope["client"] == ["2001:db8::7", 4711]
    assert scope["scheme"] == "https"
    assert header(scope, "host") == "example.com:8443"
    # obfuscated: the proxy's own address stays
    scope = get_scope(server.port, headers={"Forwarded": "for=_hidden;proto=https"})
    assert scope["client"][0] == "127.0.0.1" and scope["scheme"] == "https"
    # X-Forwarded-For wins when both are there (a client may add either)
    scope = get_scope(server.port, headers={"Forwarded": "for=6.6.6.6;proto=https",
                                            "X-Forwarded-For": "203.0.113.9"})
    assert scope["client"] == ["203.0.113.9", 0]
    assert scope["scheme"] == "http"


def test_proxy_headers_host_and_port(start_server):
    server = serve(start_server, "--proxy-headers", "--proxy-headers-host", "X-Real-IP",
                   "--proxy-headers-port", "X-Real-Port")
    scope = get_scope(server.port, headers={"X-Real-IP": "198.51.100.20", "X-Real-Port": "40001",
                                            "X-Forwarded-For": "203.0.113.7"})
    assert scope["client"] == ["198.51.100.20", 40001]
    scope = get_scope(server.port, headers={"X-Forwarded-For": "203.0.113.7"})
    assert scope["client"][0] == "127.0.0.1"


def test_nginx_conf_recipe_for_the_real_client_port(start_server):
    """examples/deploy/nginx.conf's comment: X-Forwarded-Port stays the server
    port, and --proxy-headers-port X-Real-Port gives the client's own."""
    server = serve(start_server, "--proxy-headers", "--proxy-headers-port", "X-Real-Port")
    scope = get_scope(server.port, headers={"X-Forwarded-For": "203.0.113.7", "X-Real-Port": "40001",
                                            "X-Forwarded-Port": "443"})
    assert scope["client"] == ["203.0.113.7", 40001]
    assert scope["server"][1] == 443
    # Without it, as in Daphne, X-Forwarded-Port is the client's port too (what the comment says).
    server = serve(start_server, "--proxy-headers")
    scope = get_scope(server.port, headers={"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Port": "443"})
    assert scope["client"] == ["203.0.113.7", 443]
    assert scope["server"][1] == 443


def test_websocket_scheme_and_client(start_server):
    server = serve(start_server, "--proxy-headers")
    scope = run(ws_scope(server.port, headers={"X-Forwarded-Proto": "https",
                                               "X-Forwarded-For": "203.0.113.7"}))
    assert scope["type"] == "websocket"
    assert scope["scheme"] == "wss"
    assert scope["client"] == ["203.0.113.7", 0]
    scope = run(ws_scope(server.port, headers={"X-Forwarded-Proto": "http"}))
    assert scope["scheme"] == "ws"
    scope = run(ws_scope(server.port, headers={"Forwarded": "proto=wss"}))
    assert scope["scheme"] == "wss"
    scope = run(ws_scope(server.port, headers={"X-Forwarded-Proto": "https"}, source=OUTSIDER))
    assert scope["scheme"] == "ws"


def test_unix_socket_peers_are_trusted(start_server, sock_path):
    server = serve(start_server, "--proxy-headers", "--forwarded-allow-ips", "", unix=sock_path)
    status, _, body = server.request("GET", "/scope", headers=FORWARDED)
    assert status == 200
    scope = json.loads(body)
    assert scope["client"] == ["203.0.113.7", 8443]
    assert scope["scheme"] == "https"
    assert scope["server"] == [sock_path, None]  # a unix listener keeps its path
    status, _, body = server.request("GET", "/scope")
    assert json.loads(body)["client"] is None


def test_daphne_root_path(start_server):
    server = serve(start_server, "--root-path", "/default")
    scope = get_scope(server.port, path="/scope", headers={"Daphne-Root-Path": "/mount%20point/%C3%A9"})
    assert scope["root_path"] == "/mount point/é"
    assert header(scope, "daphne-root-path") is None  # as in Daphne: the server's header
    assert get_scope(server.port)["root_path"] == "/default"
    # only trusted peers mount the app elsewhere; the header is dropped all the same
    scope = get_scope(server.port, headers={"Daphne-Root-Path": "/evil"}, source=OUTSIDER)
    assert scope["root_path"] == "/default"
    assert header(scope, "daphne-root-path") is None
    # WebSocket scopes too
    scope = run(ws_scope(server.port, headers={"Daphne-Root-Path": "/ws%2Droot"}))
    assert scope["root_path"] == "/ws-root"


def test_access_log_shows_the_forwarded_client(start_server, tmp_path):
    log = tmp_path / "access.log"
    server = serve(start_server, "--proxy-headers", "--access-log", str(log))
    get_scope(server.port, path="/scope?a=%20b", headers={"X-Forwarded-For": "203.0.113.7"})
    get_scope(server.port, path="/scope", headers={"X-Forwarded-For": "2001:db8::5",
                                                   "X-Forwarded-Port": "4443"})
    get_scope(server.port, path="/scope", headers={"X-Forwarded-For": "203.0.113.7"}, source=OUTSIDER)
    lines = wait_until(lambda: log.exists() and len(log.read_text().splitlines()) >= 3 and
                       log.read_text().splitlines(), 5, message="3 access log lines")
    assert re.match(r'^203\.0\.113\.7:0 - - \[[^\]]+\] "GET /scope\?a=%20b" 200 \d+$', lines[0]), lines
    assert re.match(r'^2001:db8::5:4443 - - \[[^\]]+\] "GET /scope" 200 \d+$', lines[1]), lines
    assert re.match(rf'^{re.escape(OUTSIDER)}:\d+ - - \[[^\]]+\] "GET /scope" 200 \d+$', lines[2]), lines


@pytest.mark.parametrize("value", ["10.0.0.0/99", "10.0.0.0/8, nonsense", "300.1.1.1", "::1/129"])
def test_bad_allow_list_refuses_to_start(value):
    """A typo in the trusted proxies is a startup error (one line, exit 2),
    not a server that quietly trusts nobody."""
    proc = subprocess.run([BAYLEAF, "-p", "0", "--proxy-headers", "--forwarded-allow-ips", value,
                           "echo:app"], capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL, cwd=APPS_DIR)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and "invalid --forwarded-allow-ips entry" in lines[0], proc.stderr


@pytest.mark.parametrize("value", ["unknown", "not-an-ip", "1.2.3.4.5", "_obf"])
def test_junk_addresses_change_nothing(start_server, value):
    server = serve(start_server, "--proxy-headers")
    scope = get_scope(server.port, headers={"X-Forwarded-For": value})
    assert scope["client"][0] == "127.0.0.1"


def test_host_and_port_headers_need_proxy_headers(start_server):
    """Daphne refuses --proxy-headers-host without --proxy-headers; Bayleaf warns
    and ignores it."""
    server = serve(start_server, "--proxy-headers-host", "X-Real-IP")
    scope = get_scope(server.port, headers={"X-Real-IP": "198.51.100.20"})
    assert scope["client"][0] == "127.0.0.1"
    server.wait_for_text(r"do nothing without --proxy-headers")
