"""A WSGI app served by bayleaf: detection, the environ, response framing."""

import json

from harness import build_request


def test_detected_and_logged(wsgi_server):
    s = wsgi_server()
    s.wait_for_text(r"wsgi_app:app is a WSGI application: serving HTTP with 1 WSGI thread")
    status, headers, body = s.get("/hello")
    assert (status, body) == (200, b"Hello, world!\n")


def test_environ_cgi_keys(wsgi_server):
    s = wsgi_server()
    env = s.get_json("/environ?a=1&b=%20x", headers={"X-Custom": "v1", "Cookie": "a=1"})
    assert env["REQUEST_METHOD"] == "GET"
    assert env["SCRIPT_NAME"] == ""
    assert env["PATH_INFO"] == "/environ"
    assert env["QUERY_STRING"] == "a=1&b=%20x"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["SERVER_PORT"] == str(s.port)
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["HTTP_X_CUSTOM"] == "v1"
    assert env["HTTP_COOKIE"] == "a=1"
    assert env["wsgi.url_scheme"] == "http"
    assert env["wsgi.version"] == [1, 0]
    # one WSGI thread by default: no other thread calls the app at the same time
    assert env["wsgi.multithread"] is False and env["wsgi.run_once"] is False
    assert "CONTENT_LENGTH" not in env and "HTTP_CONTENT_LENGTH" not in env


def test_path_info_percent_decoded_latin1(wsgi_server):
    s = wsgi_server()
    with s.connect() as c:
        env = c.request("GET", "/envir%6Fn").json()
    assert env["PATH_INFO"] == "/environ"
    with s.connect() as c:
        resp = c.request("GET", "/caf%C3%A9")
    assert resp.status == 404  # PATH_INFO "/cafÃ©": bytes as latin-1 (PEP 3333)


def test_repeated_headers_joined_and_underscored_dropped(wsgi_server):
    s = wsgi_server()
    with s.connect() as c:
        env = c.request("GET", "/environ", headers=[("X-A", "1"), ("X-A", "2"), ("X_A", "spoof"),
                                                    ("Cookie", "a=1"), ("Cookie", "b=2")]).json()
    assert env["HTTP_X_A"] == "1,2"
    assert env["HTTP_COOKIE"] == "a=1; b=2"


def test_streamed_response_is_chunked(wsgi_server):
    s = wsgi_server()
    with s.connect() as c:
        resp = c.request("GET", "/stream?n=3")
    assert resp.status == 200
    assert resp.header("transfer-encoding") == "chunked"
    assert resp.body == b"chunk 0\nchunk 1\nchunk 2\n"


def test_content_length_kept_across_chunks(wsgi_server):
    s = wsgi_server()
    with s.connect() as c:
        resp = c.request("GET", "/clen")
        assert resp.header("content-length") == "10" and resp.body == b"helloworld"
        assert c.request("GET", "/hello").body == b"Hello, world!\n"  # kept alive


def test_write_callable(wsgi_server):
    s = wsgi_server()
    status, _, body = s.get("/write")
    assert (status, body) == (200, b"written twice\n")


def test_head_has_no_body(wsgi_server):
    s = wsgi_server()
    with s.connect() as c:
        resp = c.request("HEAD", "/hello")
        assert resp.status == 200 and resp.body == b""
        assert c.request("GET", "/hello").body == b"Hello, world!\n"


def test_keep_alive_and_pipelining(wsgi_server):
    s = wsgi_server()
    with s.connect() as c:
        c.send(build_request("GET", "/hello") + build_request("GET", "/stream?n=2")
               + build_request("GET", "/clen"))
        assert c.read_response().body == b"Hello, world!\n"
        assert c.read_response().body == b"chunk 0\nchunk 1\n"
        assert c.read_response().body == b"helloworld"


def test_http10(wsgi_server):
    s = wsgi_server()
    with s.connect() as c:
        env = c.request("GET", "/environ", version="HTTP/1.0").json()
    assert env["SERVER_PROTOCOL"] == "HTTP/1.0"


def test_access_log(wsgi_server):
    s = wsgi_server()
    s.get("/hello?x=1")
    s.wait_for_text(r'"GET /hello\?x=1" 200 14', stream="stdout")


def test_interface_flag_and_wsgi_beside_asgi(start_server):
    """--interface wsgi names the positional app WSGI; --wsgi puts one beside an ASGI app."""
    from .conftest import APPS, assert_validator_clean
    s = start_server("wsgi_app:app", "--interface", "wsgi", "--wsgi-threads", "3", cwd=APPS)
    s.wait_for_text(r"serving HTTP with 3 WSGI thread")
    assert s.get("/hello")[2] == b"Hello, world!\n"
    assert_validator_clean(s)
    both = start_server("ws_echo:app", "--wsgi", "wsgi_app:app", cwd=APPS)
    both.wait_for_text(r"Serving HTTP with the WSGI application wsgi_app:app \(1 thread\(s\)\), "
                       r"WebSocket with ws_echo:app")
    assert both.get("/hello")[2] == b"Hello, world!\n"
    assert_validator_clean(both)
