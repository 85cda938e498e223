"""--body-timeout: a request body that stops arriving ends the request (408
before a response, else the connection closes) and the app hears
http.disconnect; a body that keeps moving, or a client waiting for our
100 Continue, is never cut."""

import threading
import time

import pytest

from harness import bayleaf_only, build_request, read_json_lines, wait_until

pytestmark = bayleaf_only

TIMEOUT = "2"


@pytest.fixture(scope="module")
def server(module_server_factory):
    return module_server_factory("echo:app", "--body-timeout", TIMEOUT)


def test_stalled_body_is_408_and_the_app_hears_a_disconnect(server, tmp_path):
    out = tmp_path / "events.jsonl"
    with server.connect() as conn:
        conn.send(build_request("POST", f"/wait-disconnect?mode=body&out={out}",
                                headers=[("Content-Length", "100")]) + b"0123456789")
        wait_until(lambda: any(e.get("length") == 10 for e in read_json_lines(out)), 20,
                   message="the first body bytes reach the app")
        resp = conn.read_response(timeout=30)
        assert resp.status == 408
        assert conn.wait_closed(timeout=30)
    wait_until(lambda: any(e.get("type") == "http.disconnect" for e in read_json_lines(out)), 20,
               message="http.disconnect for the app")
    server.wait_for_text(r"--body-timeout\): 408", timeout=10)


def test_stalled_chunked_body_before_the_first_chunk_is_408(server):
    with server.connect() as conn:
        conn.send(build_request("POST", "/body", headers=[("Transfer-Encoding", "chunked")]) + b"5\r\nab")
        resp = conn.read_response(timeout=30)
        assert resp.status == 408
        assert conn.wait_closed(timeout=30)


def test_stalled_body_after_an_early_response_closes(server):
    """/hello answers without reading: the rest of the body would be read and
    dropped; a client that stops sending it no longer holds the connection."""
    with server.connect() as conn:
        conn.send(build_request("POST", "/hello", headers=[("Content-Length", "1000")]) + b"x" * 10)
        resp = conn.read_response(timeout=30)
        assert resp.status == 200
        assert conn.wait_closed(timeout=30), "connection still open after a stalled body"


def test_a_body_that_keeps_moving_is_not_cut(server):
    """Eight bytes half a second apart: four seconds in all, twice the
    timeout, but never two seconds without progress."""
    body = b"abcdefgh"
    with server.connect() as conn:
        conn.send(build_request("POST", "/body", headers=[("Content-Length", str(len(body)))]))
        for i in range(len(body)):
            time.sleep(0.5)
            conn.send(body[i:i + 1])
        resp = conn.read_response(timeout=30)
        assert resp.status == 200, resp.raw_head
        assert resp.json()["length"] == len(body)


def test_a_client_waiting_for_100_continue_is_not_cut(server):
    """The app sleeps past the timeout before it reads: the client, told to
    wait for 100 Continue, sends nothing meanwhile and is still served."""
    with server.connect() as conn:
        conn.send(build_request("POST", "/sleep?s=3.5", headers=[("Content-Length", "5"),
                                                                ("Expect", "100-continue")]))
        head = conn.read_head(timeout=30)
        assert head.status == 100, head.raw_head
        conn.send(b"hello")
        resp = conn.read_response(timeout=30)
        assert resp.status == 200
        assert resp.json()["body_len"] == 5


def test_an_app_that_is_behind_does_not_cut_the_client(server):
    """The app sleeps past the timeout before its first receive(): reading
    stops at the read-ahead bound and the client's bytes wait in the kernel.
    That silence is ours, not the client's: the whole body arrives."""
    body = b"z" * (4 << 20)
    with server.connect() as conn:
        sender = threading.Thread(target=conn.send, args=(
            build_request("POST", "/body?wait=4", headers=[("Content-Length", str(len(body)))]) + body,))
        sender.start()
        try:
            resp = conn.read_response(timeout=60)
        finally:
            sender.join(60)
        assert resp.status == 200, resp.raw_head
        assert resp.json()["length"] == len(body)


def test_server_still_serving(server):
    server.assert_serving()
