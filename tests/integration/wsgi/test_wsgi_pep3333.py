"""PEP 3333 point by point: wsgi.input, start_response and exc_info, close(),
wsgi.file_wrapper, wsgi.errors, SCRIPT_NAME, proxies, and the server's rules
(-t, drain) applied to WSGI views."""

import hashlib
import os
import signal
import socket
import time

from harness import build_request, chunked, wait_until

BODY = b"".join(b"line %d %s\n" % (i, b"y" * (i % 50)) for i in range(3000)) + b"no newline at end"


def _post(s, how, body=BODY, n=1000, headers=()):
    with s.connect() as c:
        resp = c.request("POST", f"/read?how={how}&n={n}", body=body,
                         headers=[("Content-Type", "text/plain")] + list(headers))
    assert resp.status == 200, resp
    return resp.json()


def test_input_read_all_and_sized(wsgi_server):
    s = wsgi_server()
    info = _post(s, "all")
    assert info["length"] == len(BODY) and info["sha256"] == hashlib.sha256(BODY).hexdigest()
    info = _post(s, "n", n=777)
    assert info["sha256"] == hashlib.sha256(BODY).hexdigest()
    # read(n) returns n bytes until the end (a view that reads CONTENT_LENGTH in one call works)
    assert all(r == 777 for r in info["reads"][:-2]) and info["reads"][-1] == 0


def test_input_readline_readlines_iteration(wsgi_server):
    s = wsgi_server()
    for how in ("line", "lines", "iter"):
        info = _post(s, how)
        assert info["sha256"] == hashlib.sha256(BODY).hexdigest(), how
        assert len(info["reads"]) == 3001, how
        assert info["reads"][0] == len(b"line 0 \n"), how


def test_input_never_past_content_length(wsgi_server):
    s = wsgi_server()
    with s.connect() as c:
        # the next request follows the body at once: read(CONTENT_LENGTH) then read() is empty
        c.send(build_request("POST", "/read?how=clen", body=b"hello")
               + build_request("GET", "/hello"))
        info = c.read_response().json()
        assert info["reads"] == [5, 0]
        assert c.read_response().body == b"Hello, world!\n"


def test_input_chunked_request(wsgi_server):
    s = wsgi_server()
    pieces = [b"abc\n", os.urandom(70000), b"", b"tail"]
    with s.connect() as c:
        c.send(build_request("POST", "/read?how=all", headers=[("Transfer-Encoding", "chunked")])
               + chunked(*pieces))
        info = c.read_response().json()
    assert info["sha256"] == hashlib.sha256(b"".join(pieces)).hexdigest()


def test_input_large_upload_streamed(wsgi_server):
    s = wsgi_server()
    body = os.urandom(8 * 1024 * 1024)
    info = _post(s, "n", body=body, n=65536)
    assert info["sha256"] == hashlib.sha256(body).hexdigest()


def test_100_continue_sent_when_the_view_reads(wsgi_server):
    s = wsgi_server()
    with s.connect() as c:
        c.send(b"POST /read?how=all HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\n"
               b"Content-Length: 5\r\n\r\n")
        interim = c.read_head()
        assert interim.status == 100
        c.send(b"hello")
        info = c.read_response().json()
        assert info["length"] == 5


def test_view_that_raises_is_500_with_traceback_logged(wsgi_server):
    s = wsgi_server(allow=("Traceback",))
    status, _, _ = s.get("/raise")
    assert status == 500
    s.wait_for_text(r"Exception inside WSGI application: RuntimeError\('view failed on purpose'\)")
    s.wait_for_text(r"Traceback \(most recent call last\)")
    assert s.get("/hello")[0] == 200


def test_raise_after_first_chunk_cuts_the_response(wsgi_server):
    s = wsgi_server(allow=("Traceback",))
    with s.connect() as c:
        c.send(build_request("GET", "/raise-late"))
        head = c.read_head()
        assert head.status == 200
        data = c.read_to_close()
    assert b"first\n" in data and not data.endswith(b"0\r\n\r\n")  # no clean end
    s.wait_for_text(r"late failure on purpose")


def test_exc_info_replaces_unsent_headers(wsgi_server):
    s = wsgi_server()
    status, _, body = s.get("/exc-info")
    assert (status, body) == (500, b"handled")


def test_close_called_once_on_client_disconnect(wsgi_server):
    s = wsgi_server()
    sock = s.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(build_request("GET", "/endless?id=gone"))
    assert sock.recv(100).startswith(b"HTTP/1.1 200")
    sock.close()
    wait_until(lambda: s.get_json("/closes?id=gone")["closes"] >= 1, 10, message="close()")
    time.sleep(0.2)  # a second close() would have come by now: none may
    assert s.get_json("/closes?id=gone")["closes"] == 1


def test_file_wrapper_real_file(wsgi_server):
    s = wsgi_server()
    status, headers, body = s.get("/file")
    expect = bytes(range(256)) * 4096 + b"1234567"
    assert status == 200 and headers["content-length"] == str(len(expect))
    assert body == expect


def test_file_wrapper_file_like(wsgi_server):
    s = wsgi_server()
    status, _, body = s.get("/filelike")
    assert (status, body) == (200, b"abc" * 10000)


def test_wsgi_errors_into_the_log(wsgi_server):
    s = wsgi_server()
    assert s.get("/errors")[2] == b"logged"
    s.wait_for_text(r"ERROR +first error line")
    s.wait_for_text(r"ERROR +second error line")


def test_script_name_from_root_path(wsgi_server):
    s = wsgi_server("--root-path", "/app")
    env = s.get_json("/app/environ")
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/app", "/environ")


def test_script_name_from_daphne_root_path(wsgi_server):
    s = wsgi_server()
    env = s.get_json("/mount/environ", headers={"Daphne-Root-Path": "/mount"})
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/mount", "/environ")
    assert "HTTP_DAPHNE_ROOT_PATH" not in env


def test_remote_addr_and_scheme_from_trusted_proxy(wsgi_server):
    s = wsgi_server("--proxy-headers")
    env = s.get_json("/environ", headers={"X-Forwarded-For": "203.0.113.9",
                                          "X-Forwarded-Proto": "https"})
    assert env["REMOTE_ADDR"] == "203.0.113.9"
    assert env["wsgi.url_scheme"] == "https"
    untrusted = wsgi_server("--proxy-headers", "--forwarded-allow-ips", "10.0.0.1")
    env = untrusted.get_json("/environ", headers={"X-Forwarded-For": "203.0.113.9",
                                                  "X-Forwarded-Proto": "https"})
    assert (env["REMOTE_ADDR"], env["wsgi.url_scheme"]) == ("127.0.0.1", "http")


def test_response_timeout_applies(wsgi_server):
    s = wsgi_server("-t", "0.5", "--wsgi-threads", "2")  # /hello is not queued behind the sleep
    status, _, _ = s.get("/sleep?s=2")
    assert status == 503
    assert s.get("/hello")[0] == 200


def test_drain_waits_for_running_views(wsgi_server):
    s = wsgi_server()
    c = s.connect()
    c.send(build_request("GET", "/sleep?s=1.5"))
    s.wait_for_text(r"\[t\] sleeping")  # the view runs
    s.send_signal(signal.SIGTERM)
    resp = c.read_response()
    assert (resp.status, resp.body) == (200, b"slept")
    assert s.wait_exit(10) == 0
    c.close()


def test_limit_concurrency_applies(wsgi_server):
    s = wsgi_server("--limit-concurrency", "1")
    busy = s.connect()
    busy.send(build_request("GET", "/sleep?s=1"))
    s.wait_for_text(r"\[t\] sleeping")
    assert s.get("/hello")[0] == 503
    resp = busy.read_response()
    assert (resp.status, resp.body) == (200, b"slept")
    busy.close()
