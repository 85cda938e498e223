"""A small Django 3.2 project (apps/djproj) served through channels and plain Django."""

import hashlib
import json
import os
import urllib.parse

import pytest

from harness import build_request


@pytest.fixture(params=["djproj.asgi:application", "djproj.asgi:django_app"],
                ids=["channels-router", "plain-django"])
def django_server(request, shared_server):
    return shared_server(request.param)


def test_normal_view(django_server):
    status, headers, body = django_server.get("/hello/")
    assert status == 200
    assert body == b"Hello from Django\n"
    assert headers["x-view"] == "hello"
    assert headers["content-type"].startswith("text/plain")


def test_404(django_server):
    status, _, _ = django_server.get("/no/such/page/")
    assert status == 404


def test_streaming_view(django_server):
    with django_server.connect() as conn:
        resp = conn.request("GET", "/stream/?n=500")
        assert resp.status == 200
        assert resp.chunked or resp.header("content-length") is not None
        lines = resp.body.decode().splitlines()
        assert lines == [f"line {i}" for i in range(500)]
        # keep-alive still works after a streamed response
        assert conn.request("GET", "/hello/").body == b"Hello from Django\n"


def test_post_view_reads_body(django_server):
    body = os.urandom(1024 * 1024 + 17)
    status, _, data = django_server.request("POST", "/echo/", body=body,
                                            headers={"Content-Type": "application/octet-stream"})
    assert status == 200, data[:500]
    info = json.loads(data)
    assert info["length"] == len(body)
    assert info["sha256"] == hashlib.sha256(body).hexdigest()


def test_post_form(django_server):
    form = urllib.parse.urlencode([("name", "café au lait"), ("tag", "a"), ("tag", "b")])
    status, _, data = django_server.request("POST", "/echo/", body=form,
                                            headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200
    assert json.loads(data)["form"] == {"name": ["café au lait"], "tag": ["a", "b"]}


def test_post_chunked_body(django_server):
    from harness import chunked
    pieces = [b"first-", b"second-" * 1000, b"third"]
    with django_server.connect() as conn:
        conn.send(build_request("POST", "/echo/", headers=[("Transfer-Encoding", "chunked"),
                                                           ("Content-Type", "text/plain")])
                  + chunked(*pieces))
        resp = conn.read_response()
    assert resp.status == 200
    assert json.loads(resp.body)["sha256"] == hashlib.sha256(b"".join(pieces)).hexdigest()


def test_get_not_allowed_on_post_view(django_server):
    status, headers, _ = django_server.get("/echo/")
    assert status == 405
    assert headers["allow"] == "POST"


def test_request_meta(django_server):
    status, _, data = django_server.request("GET", "/info/?a=1&a=2&b=%C3%A9",
                                            headers={"User-Agent": "bayleaf-tests/1"})
    info = json.loads(data)
    assert info["path"] == "/info/"
    assert info["query"] == {"a": ["1", "2"], "b": ["é"]}
    assert info["user_agent"] == "bayleaf-tests/1"
    assert info["remote_addr"] == "127.0.0.1"
    assert info["server_port"] == str(django_server.port)
    assert info["is_secure"] is False


def test_root_path_becomes_script_name(start_server):
    server = start_server("djproj.asgi:application", "--root-path", "/mount")
    status, _, data = server.get("/mount/info/")
    assert status == 200, data
    info = json.loads(data)
    assert info["script_name"] == "/mount"
    assert info["path_info"] == "/info/"
    assert info["path"] == "/mount/info/"


def test_http10_django(django_server):
    with django_server.connect() as conn:
        resp = conn.request("GET", "/hello/", version="HTTP/1.0")
        assert resp.status == 200 and resp.body == b"Hello from Django\n"
        assert conn.wait_closed(5)
