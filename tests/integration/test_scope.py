"""The HTTP connection scope the app sees."""

import json

import pytest

from harness import IS_BAYLEAF, IS_DAPHNE, RawConn, build_request


def scope_via(conn_sock, raw_request):
    conn = RawConn(conn_sock)
    conn.send(raw_request)
    resp = conn.read_response()
    assert resp.status == 200, resp
    return resp.json()["scope"], conn


def test_basic_scope_fields(echo_server):
    s = echo_server.socket()
    client_port = s.getsockname()[1]
    scope, conn = scope_via(s, build_request("GET", "/plain/path?x=1"))
    conn.close()
    assert scope["type"] == "http"
    assert scope["asgi"]["version"] == "3.0"
    if IS_BAYLEAF:
        assert scope["asgi"]["spec_version"] == "2.5"
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope["path"] == "/plain/path"
    assert scope["raw_path"] == b"/plain/path"
    assert scope["query_string"] == b"x=1"
    assert scope["root_path"] == ""
    assert list(scope["client"]) == ["127.0.0.1", client_port]
    assert list(scope["server"]) == ["127.0.0.1", echo_server.port]


@pytest.mark.parametrize("version, host", [("HTTP/1.1", ""), ("HTTP/1.0", None)],
                         ids=["http11-empty-host", "http10-no-host"])
def test_server_and_client_without_a_host_value(echo_server, version, host):
    """RFC 9112 3.2 lets these through (empty Host: a target without an
    authority; HTTP/1.0: no Host at all): the scope's server and client are
    still the socket's addresses, and the headers are as sent."""
    s = echo_server.socket()
    client_port = s.getsockname()[1]
    scope, conn = scope_via(s, build_request("GET", "/nohost?x=1", version=version, host=host))
    conn.close()
    assert scope["http_version"] == version[5:]
    assert scope["path"] == "/nohost" and scope["query_string"] == b"x=1"
    assert list(scope["server"]) == ["127.0.0.1", echo_server.port]
    assert list(scope["client"]) == ["127.0.0.1", client_port]
    hosts = [v for k, v in scope["headers"] if k == b"host"]
    assert hosts == ([] if host is None else [b""])


def test_http10_version(echo_server):
    scope, conn = scope_via(echo_server.socket(), build_request("GET", "/v10", version="HTTP/1.0"))
    conn.close()
    assert scope["http_version"] == "1.0"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_methods(echo_server, method):
    scope, conn = scope_via(echo_server.socket(), build_request(method, "/m", body=b"abc"))
    conn.close()
    assert scope["method"] == method


@pytest.mark.parametrize("raw, path", [
    ("/caf%C3%A9/a%20b", "/café/a b"),
    ("/%E2%82%AC/%F0%9F%8D%83", "/€/\U0001F343"),
    ("/a%2Fb/c", "/a/b/c"),
    ("/plus+sign", "/plus+sign"),
    ("/%7Etilde", "/~tilde"),
])
def test_path_is_percent_decoded_utf8(echo_server, raw, path):
    scope, conn = scope_via(echo_server.socket(), build_request("GET", raw))
    conn.close()
    assert scope["path"] == path
    assert scope["raw_path"] == raw.encode("ascii")


def test_query_string_is_not_decoded(echo_server):
    q = "a=1&b=%20x+y&caf%C3%A9=%E2%82%AC&flag&a=2"
    scope, conn = scope_via(echo_server.socket(), build_request("GET", "/q?" + q))
    conn.close()
    assert scope["query_string"] == q.encode()
    assert scope["path"] == "/q"
    assert scope["raw_path"] == b"/q"


def test_empty_query_string(echo_server):
    scope, conn = scope_via(echo_server.socket(), build_request("GET", "/noquery"))
    conn.close()
    assert scope["query_string"] == b""


def test_headers_lowercased_raw_values_duplicates_and_order(echo_server):
    sent = [
        ("Host", "example.test:1234"),
        ("X-Custom-Header", "Value With  Spaces And CAPS"),
        ("X-Dup", "first"),
        ("Accept", "*/*"),
        ("X-Dup", "second"),
        ("X-Bytes", "caf\xe9"),  # a latin-1 byte: passed through as-is
        ("x-lower", "v"),
        ("Cookie", "a=1; b=2"),
    ]
    scope, conn = scope_via(echo_server.socket(), build_request("GET", "/h", headers=sent, host=None))
    conn.close()
    got = [tuple(h) for h in scope["headers"]]
    expected = [(n.lower().encode(), v.encode("latin-1")) for n, v in sent]
    if IS_DAPHNE:  # twisted groups repeated headers; only per-name order survives
        got = sorted(got, key=lambda h: h[0])
        expected = sorted(expected, key=lambda h: h[0])
    assert got == expected
    for name, _ in got:
        assert name == name.lower()


def test_header_values_are_bytes_and_names_bytes(echo_server):
    status, _, body = echo_server.request("GET", "/types", headers={"X-A": "1"})
    assert status == 200
    raw = json.loads(body)
    for name, value in raw["scope"]["headers"]:
        assert set(name) == {"__bytes__"} and set(value) == {"__bytes__"}


def test_root_path_option(start_server):
    server = start_server("echo:app", "--root-path", "/mount")
    scope = server.get_json("/mount/sub/page?z=9")["scope"]
    assert scope["root_path"] == "/mount"
    # like Daphne: path is the full request path, root_path is reported beside it
    assert scope["path"] == "/mount/sub/page"
    assert scope["query_string"] == b"z=9"


def test_scope_over_unix_socket(start_server, short_dir):
    path = short_dir + "/bl.sock"
    server = start_server("echo:app", unix=path)
    s = server.socket()
    scope, conn = scope_via(s, build_request("GET", "/over-unix"))
    conn.close()
    assert scope["path"] == "/over-unix"
    if IS_BAYLEAF:  # uvicorn 0.17 and daphne 4 report server=None here
        assert scope["server"] is not None and list(scope["server"]) == [path, None]
    # ASGI: client is optional; for a unix socket there is no [host, port]
    assert scope.get("client") is None


def test_post_body_reaches_scope_app(echo_server):
    body = b"x" * 1000
    status, _, data = echo_server.request("POST", "/post", body=body)
    info = json.loads(data)
    assert status == 200
    assert info["body_len"] == 1000
    assert info["scope"]["method"] == "POST"
