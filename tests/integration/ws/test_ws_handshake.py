"""The WebSocket opening handshake and the scope the app sees."""

import json
import time

import pytest
import websockets

from harness import IS_BAYLEAF, bayleaf_only, unjson

from .ws_support import (APP, OP_TEXT, WSConn, accept_for, check_echo, events, make_key, open_ws,
                         outq, run, url, wait_event)


# --------------------------------------------------------------------------
# the 101 and the request forms that must get it
# --------------------------------------------------------------------------

def test_101_with_correct_accept(ws_server):
    key = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 section 1.3's example
    with WSConn(ws_server.connect()) as ws:
        resp = ws.handshake("/echo", key=key)
        assert resp.status == 101, resp
        assert resp.header("sec-websocket-accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        assert resp.header("upgrade").lower() == "websocket"
        assert "upgrade" in resp.header("connection").lower()
        assert resp.header("content-length") is None and resp.header("transfer-encoding") is None
        ws.send_text("hi")
        assert ws.recv_text(5) == "hi"


@pytest.mark.parametrize("headers", [
    [("Connection", "keep-alive, Upgrade")],                    # Firefox
    [("Connection", "Upgrade, keep-alive")],
    [("Connection", "keep-alive"), ("Connection", "Upgrade")],  # the token in a repeated header
    [("connection", "UPGRADE"), ("upgrade", "WebSocket")],      # any case, names and values
    [("CONNECTION", "upgrade"), ("UPGRADE", "WEBSOCKET"), ("SEC-WEBSOCKET-VERSION", "13")],
    [("Connection", "  Upgrade  ")],
    [("Sec-WebSocket-Version", " 13 ")],
], ids=["firefox", "upgrade-first", "repeated", "mixed-case", "upper-case", "ows", "version-ows"])
def test_connection_forms_accepted(ws_server, headers):
    with WSConn(ws_server.connect()) as ws:
        resp = ws.handshake("/echo", headers=headers)
        assert resp.status == 101, (resp, resp.body)
        assert resp.header("sec-websocket-accept") == accept_for(ws.key)
        ws.send_text("ok")
        assert ws.recv_text(5) == "ok"


# Frames whose bytes would be broken HTTP if the parser read on past the head:
# a zero masking key leaves a bare LF and a request line on the wire.
EARLY_FRAMES = {
    "text": ["early bird"],
    "bare-lf": ["one\ntwo", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "three\n\n"],
}


@pytest.mark.parametrize("texts", EARLY_FRAMES.values(), ids=EARLY_FRAMES.keys())
def test_frames_sent_with_the_handshake_are_not_lost(ws_server, texts):
    """A client may pipeline its first frames right behind the request."""
    from .ws_support import frame
    key = make_key()
    req = ("GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
    frames = b"".join(frame(OP_TEXT, t, key=b"\0\0\0\0") for t in texts)
    with WSConn(ws_server.connect()) as ws:
        ws.send(req + frames)
        resp = ws.raw.read_head()
        assert resp.status == 101
        assert [ws.recv_text(5) for _ in texts] == texts


# --------------------------------------------------------------------------
# refusals by the server itself
# --------------------------------------------------------------------------

def refused(server, path="/echo", **kw):
    with WSConn(server.connect()) as ws:
        resp = ws.handshake(path, **kw)
        closed = ws.wait_closed(5) if resp.status != 101 else False
    return resp, closed


@pytest.mark.parametrize("version", [None, "8", "14", "12, 13", ""], ids=["missing", "8", "14", "list", "empty"])
def test_bad_version_426(ws_server, tmp_path, version):
    out = tmp_path / "app.jsonl"
    headers = [("Sec-WebSocket-Version", version)] if version is not None else [("Sec-WebSocket-Version", None)]
    resp, closed = refused(ws_server, "/never" + outq(out), headers=headers)
    assert resp.status == 426, resp
    assert resp.header("sec-websocket-version") == "13", resp
    assert closed
    # the app never heard of it: an echo through the app after the refusal
    # has gone through Python's queue behind anything the refusal put there
    check_echo(ws_server)
    assert events(out) == []


@pytest.mark.parametrize("key", [
    "abc",                                   # too short
    "AAAAAAAAAAAAAAAAAAAAAA==AA",           # too long
    "AAAAAAAAAAAAAAAAAAAA",                 # 15 bytes, base64 without padding
    "AAAAAAAAAAAAAAAAAAAAAAAA",             # 18 bytes
    "!!!!!!!!!!!!!!!!!!!!!!==",             # not base64
    "AAAAAAAAAAAAAAAAAAAAAAAAAAA=",         # 20 bytes
    None,                                    # missing
], ids=["short", "long", "15-bytes", "18-bytes", "not-base64", "20-bytes", "missing"])
def test_bad_key_400(ws_server, key):
    with WSConn(ws_server.connect()) as ws:
        if key is None:
            resp = ws.handshake("/echo", headers=[("Sec-WebSocket-Key", None)])
        else:
            resp = ws.handshake("/echo", key=key)
        assert resp.status == 400, resp
        assert ws.wait_closed(5)
    check_echo(ws_server)


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_non_get_upgrade_refused(ws_server, method):
    resp, closed = refused(ws_server, method=method, headers=[("Content-Length", "0")])
    assert resp.status in (400, 405), resp
    check_echo(ws_server)


def test_missing_upgrade_header_is_plain_http(ws_server):
    """Without `Upgrade: websocket` it is an ordinary HTTP request (no WebSocket)."""
    with WSConn(ws_server.connect()) as ws:
        resp = ws.handshake("/hello", headers=[("Upgrade", None), ("Connection", "keep-alive")])
        assert resp.status == 200 and resp.body == b"hello", resp


# --------------------------------------------------------------------------
# the scope
# --------------------------------------------------------------------------

def get_scope(server, path, headers=None):
    with open_ws(server, path, headers=headers) as ws:
        client_port = ws.raw.sock.getsockname()[1]
        scope = unjson(json.loads(ws.recv_text(5)))
        ws.send_close(1000)
        ws.expect_close(5)
    return scope, client_port


def test_scope_fields(ws_server):
    scope, client_port = get_scope(
        ws_server, "/scope/caf%C3%A9%20x/%E2%82%AC?q=1%202&x=%C3%A9&flag",
        headers=[("X-Custom-Header", "Foo Bar"), ("Sec-WebSocket-Protocol", "a, b"),
                 ("Sec-WebSocket-Protocol", "  c ,d,, "), ("Origin", "http://example.com")])
    assert scope["type"] == "websocket"
    assert scope["asgi"]["version"] == "3.0"
    if IS_BAYLEAF:
        assert scope["asgi"]["spec_version"] == "2.5"
    assert scope["scheme"] == "ws"
    assert scope.get("http_version", "1.1") == "1.1"
    assert scope["path"] == "/scope/café x/€"
    assert scope["raw_path"] == b"/scope/caf%C3%A9%20x/%E2%82%AC"
    assert scope["query_string"] == b"q=1%202&x=%C3%A9&flag"
    assert scope["root_path"] == ""
    assert scope["subprotocols"] == ["a", "b", "c", "d"]
    assert list(scope["client"]) == ["127.0.0.1", client_port]
    assert list(scope["server"]) == ["127.0.0.1", ws_server.port]
    headers = [(bytes(k), bytes(v)) for k, v in scope["headers"]]
    for k, _ in headers:
        assert k == k.lower(), headers
    assert (b"x-custom-header", b"Foo Bar") in headers
    assert (b"origin", b"http://example.com") in headers
    assert (b"upgrade", b"websocket") in headers
    assert any(k == b"sec-websocket-key" for k, _ in headers)
    # both Sec-WebSocket-Protocol headers, in order, without the surrounding whitespace
    assert [v for k, v in headers if k == b"sec-websocket-protocol"] == [b"a, b", b"c ,d,,"]
    if IS_BAYLEAF:
        assert "websocket.http.response" in scope["extensions"], scope.get("extensions")


def test_header_value_ows_stripped(ws_server):
    """RFC 9110 5.5: whitespace around a field value is not part of it."""
    scope, _ = get_scope(ws_server, "/scope", headers=[("X-Pad", "  padded \t "), ("Sec-WebSocket-Protocol", "a ")])
    headers = [(bytes(k), bytes(v)) for k, v in scope["headers"]]
    assert (b"x-pad", b"padded") in headers, headers
    assert (b"sec-websocket-protocol", b"a") in headers, headers


def test_scope_without_subprotocols(ws_server):
    scope, _ = get_scope(ws_server, "/scope")
    assert scope["subprotocols"] == []
    assert scope["query_string"] == b""
    assert scope["path"] == "/scope"


@bayleaf_only
def test_scope_root_path(start_server):
    server = start_server(APP, "--root-path", "/mount")
    scope, _ = get_scope(server, "/scope/x")
    assert scope["root_path"] == "/mount"


# --------------------------------------------------------------------------
# the app's decision
# --------------------------------------------------------------------------

def test_subprotocol_chosen_by_app(ws_server):
    async def go():
        async with websockets.connect(url(ws_server, "/accept?sub=superchat"),
                                      subprotocols=["chat", "superchat"], ping_interval=None) as ws:
            assert ws.subprotocol == "superchat"
            assert ws.response_headers["Sec-WebSocket-Protocol"] == "superchat"
            assert await ws.recv() == "sub=chat,superchat"
            await ws.send("x")
            assert await ws.recv() == "x"
    run(go())


def test_no_subprotocol_header_when_app_picks_none(ws_server):
    with open_ws(ws_server, "/accept", headers=[("Sec-WebSocket-Protocol", "chat")]) as ws:
        assert ws.response.header("sec-websocket-protocol") is None, ws.response
        assert ws.recv_text(5) == "sub=chat"


def test_accept_with_extra_headers(ws_server):
    with open_ws(ws_server, "/accept?hdr=x-extra:hello&hdr=set-cookie:a%3Db&sub=p1",
                 headers=[("Sec-WebSocket-Protocol", "p1")]) as ws:
        r = ws.response
        assert r.header("x-extra") == "hello", r
        assert r.header("set-cookie") == "a=b", r
        assert r.header("sec-websocket-protocol") == "p1", r
        assert r.header("sec-websocket-accept") == accept_for(ws.key)
        assert ws.recv_text(5) == "sub=p1"


def test_close_before_accept_is_403(ws_server, tmp_path):
    out = tmp_path / "app.jsonl"
    with WSConn(ws_server.connect()) as ws:
        resp = ws.handshake("/reject" + outq(out))
        assert resp.status == 403, resp
        assert ws.wait_closed(5)
    rec = wait_event(out, "after-reject")
    assert rec["message"]["type"] == "websocket.disconnect", rec
    check_echo(ws_server)


def test_close_before_accept_seen_by_websockets_client(ws_server):
    async def go():
        with pytest.raises(websockets.exceptions.InvalidStatusCode) as ei:
            async with websockets.connect(url(ws_server, "/reject"), open_timeout=5):
                pass
        assert ei.value.status_code == 403
    run(go())


@bayleaf_only
def test_denial_response(ws_server):
    with WSConn(ws_server.connect()) as ws:
        resp = ws.handshake("/deny?status=401")
        assert resp.status == 401, resp
        assert resp.header("content-type") == "application/json"
        assert resp.header("x-denied") == "yes"
        assert resp.header("sec-websocket-accept") is None
        assert json.loads(resp.body) == {"error": "denied", "path": "/deny"}
        assert ws.wait_closed(5)
    check_echo(ws_server)


@bayleaf_only
def test_denial_response_other_status(ws_server):
    with WSConn(ws_server.connect()) as ws:
        resp = ws.handshake("/deny?status=418")
        assert resp.status == 418, resp
        assert json.loads(resp.body)["error"] == "denied"


def test_app_raising_before_accept_is_500(ws_server):
    with WSConn(ws_server.connect()) as ws:
        resp = ws.handshake("/raise")
        assert resp.status == 500, resp
        assert ws.wait_closed(5)
    check_echo(ws_server)


def test_app_raising_after_accept_closes_1011(ws_server):
    with open_ws(ws_server, "/raise-open") as ws:
        f = ws.expect_close(5)
        assert f.close_code == 1011, f
        ws.send_close(1000)
        assert ws.wait_closed(5)
    check_echo(ws_server)


def test_app_returning_after_accept_closes_1000(ws_server):
    with open_ws(ws_server, "/return-open") as ws:
        f = ws.expect_close(5)
        assert f.close_code == 1000, f
        ws.send_close(1000)
        assert ws.wait_closed(5)


@bayleaf_only
def test_connect_timeout_403_and_app_disconnected(start_server, tmp_path):
    server = start_server(APP, "--websocket_connect_timeout", "1")
    out = tmp_path / "app.jsonl"
    with WSConn(server.connect()) as ws:
        t0 = time.monotonic()
        resp = ws.handshake("/never" + outq(out))
        elapsed = time.monotonic() - t0
        assert resp.status == 403, resp
        # not before the 1 s timeout (timer granularity aside); before the
        # default 5 s would fire, so the underscore spelling took effect
        assert 0.8 <= elapsed < 4.5, elapsed
        assert ws.wait_closed(10)
    rec = wait_event(out, "never-answered", timeout=30)
    assert rec["message"]["type"] == "websocket.disconnect", rec
    check_echo(server)


@bayleaf_only
def test_connect_timeout_hyphen_spelling(start_server):
    server = start_server(APP, "--websocket-connect-timeout", "0.5")
    with WSConn(server.connect()) as ws:
        t0 = time.monotonic()
        assert ws.handshake("/never").status == 403
        # before the default 5 s would fire: the hyphen spelling took effect
        assert time.monotonic() - t0 < 4.5
