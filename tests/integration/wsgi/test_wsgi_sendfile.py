"""wsgi.file_wrapper of a real file: the pool thread hands the I/O thread a
duplicate of the descriptor and the I/O thread writes it with sendfile(2)
(counted in --metrics as bayleaf_sendfile_bytes_total)."""

import hashlib
import http.client
import os
import random
import re
import socket
import time

import pytest

from harness import IncompleteResponse, build_request, free_port, wait_until

from .conftest import APPS, assert_validator_clean
from .test_wsgi_django import _download

MiB = 1 << 20


def data(n):
    return random.Random(n).randbytes(n)


class Metered:
    def __init__(self, server, port):
        self.server, self.port = server, port

    def __getattr__(self, name):
        return getattr(self.server, name)

    def sendfile_bytes(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", "/metrics")
            text = conn.getresponse().read().decode()
        finally:
            conn.close()
        return sum(int(v) for v in re.findall(r"^bayleaf_sendfile_bytes_total(?:\{[^}]*\})? (\d+)$",
                                              text, re.M))


@pytest.fixture
def file_server(start_server, tmp_path):
    started = []

    def start(*args, app="file_app:app", allow=()):
        port = free_port()
        s = start_server(app, "--metrics", f"127.0.0.1:{port}", *args, cwd=APPS,
                         env={"FILE_APP_DIR": str(tmp_path)})
        started.append((s, allow))
        m = Metered(s, port)
        wait_until(lambda: _metrics_up(m), 30, message="--metrics answering")
        return m

    yield start
    for s, allow in started:
        assert_validator_clean(s, allow)


def _metrics_up(m):
    try:
        m.sendfile_bytes()
        return True
    except OSError:
        return False


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_large_file_byte_exact_with_sendfile(file_server):
    s = file_server()
    size = 8 * MiB + 13
    before = s.sendfile_bytes()
    status, headers, body = s.get(f"/file?size={size}")
    assert status == 200 and headers["content-length"] == str(size)
    assert hashlib.sha256(body).digest() == hashlib.sha256(data(size)).digest()
    assert s.sendfile_bytes() - before == size


def test_file_at_a_nonzero_offset(file_server):
    s = file_server()
    size, skip = 3 * MiB + 5, 1234567
    before = s.sendfile_bytes()
    status, headers, body = s.get(f"/file?size={size}&skip={skip}")
    assert status == 200 and headers["content-length"] == str(size - skip)
    assert body == data(size)[skip:]
    assert s.sendfile_bytes() - before == size - skip


def test_content_length_smaller_than_the_file(file_server):
    s = file_server()
    size = 2 * MiB
    before = s.sendfile_bytes()
    with s.connect() as c:
        resp = c.request("GET", f"/file?size={size}&skip=10&clen=100000")
        assert resp.status == 200 and resp.body == data(size)[10:100010]
        assert c.request("GET", "/hello").body == b"hello"  # the connection goes on
    assert s.sendfile_bytes() - before == 100000


def test_no_length_is_chunked_or_close_delimited(file_server):
    s = file_server()
    size = MiB + 1
    with s.connect() as c:
        resp = c.request("GET", f"/file?size={size}&skip=1&clen=none")
        assert resp.header("transfer-encoding") == "chunked" and resp.body == data(size)[1:]
        assert c.request("GET", "/hello").body == b"hello"
    with s.connect() as c:
        resp = c.request("GET", f"/file?size={size}&clen=none", version="HTTP/1.0")
        assert resp.body == data(size)
        assert c.wait_closed()


def test_pipelined_requests_after_a_file(file_server):
    s = file_server()
    size = 4 * MiB + 1
    with s.connect() as c:
        c.send(build_request("GET", f"/file?size={size}&id=pipe")
               + build_request("GET", "/hello")
               + build_request("GET", f"/file?size={size}&skip=7&id=pipe"))
        first = c.read_response()
        assert first.body == data(size)
        assert c.read_response().body == b"hello"
        assert c.read_response().body == data(size)[7:]
        # The next request may reach another pool thread before this one has
        # heard FILE_SENT and called close(): wait for it, then count.
        wait_until(lambda: c.request("GET", "/closes?id=pipe").json() == {"closes": 2}, 20,
                   message="close() of both files")


def test_head_sends_no_body(file_server):
    s = file_server()
    size = MiB
    before = s.sendfile_bytes()
    with s.connect() as c:
        resp = c.request("HEAD", f"/file?size={size}&id=head")
        assert resp.status == 200 and resp.header("content-length") == str(size)
        assert resp.body == b""
        assert c.request("GET", "/closes?id=head").json() == {"closes": 1}
    assert s.sendfile_bytes() == before


def test_client_leaves_mid_file(file_server):
    s = file_server()
    size = 64 * MiB
    s.get("/file?size=4096")  # warm: threads, modules, the metrics listener
    s.get("/hello")
    base = fd_count(s.pid)
    sock = s.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(build_request("GET", f"/file?size={size}&id=gone"))
    assert sock.recv(100).startswith(b"HTTP/1.1 200")
    time.sleep(0.3)  # the server waits for the socket: its file and poll are open
    sock.close()
    wait_until(lambda: s.get_json("/closes?id=gone")["closes"] == 1, 10, message="close()")
    wait_until(lambda: fd_count(s.pid) <= base, 10, message="no descriptor left behind")
    time.sleep(0.2)
    assert s.get_json("/closes?id=gone")["closes"] == 1
    assert s.sendfile_bytes() < size
    assert s.get("/hello")[2] == b"hello"


def test_file_shorter_than_its_content_length_cuts_the_connection(file_server):
    s = file_server(allow=("Traceback",))
    size = 2 * MiB
    with s.connect() as c:
        with pytest.raises(IncompleteResponse) as e:
            c.request("GET", f"/file?size={size}&clen={size + 1000}&id=short")
        assert e.value.partial == data(size)
    s.wait_for_text(r"ended 1000 bytes early")
    wait_until(lambda: s.get_json("/closes?id=short")["closes"] == 1, 10, message="close()")
    assert s.get("/hello")[2] == b"hello"


def test_access_log_counts_the_file(file_server, tmp_path):
    log = tmp_path / "access.log"
    s = file_server("--access-log", str(log))
    size = 3 * MiB + 3
    assert len(s.get(f"/file?size={size}&skip=3")[2]) == size - 3
    wait_until(lambda: re.search(r'"GET /file\?size=%d&skip=3" 200 %d\n' % (size, size - 3),
                                 log.read_text() if log.exists() else ""), 10,
               message="the access log line")


def test_django_file_response_uses_sendfile(file_server):
    s = file_server("--wsgi", "siteproj.wsgi:application", app="siteproj.asgi:application")
    before = s.sendfile_bytes()
    _download(s)
    size = os.path.getsize(APPS / "siteproj" / "download.bin")
    assert s.sendfile_bytes() - before == size


def test_send_timeout_applies_to_a_file(file_server):
    s = file_server("--send-timeout", "1")
    size = 64 * MiB
    sock = s.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(build_request("GET", f"/file?size={size}&id=stall"))
    assert sock.recv(100).startswith(b"HTTP/1.1 200")
    try:
        s.wait_for_text(r"--send-timeout\): connection reset", timeout=15)
        wait_until(lambda: s.get_json("/closes?id=stall")["closes"] == 1, 10, message="close()")
        assert s.get("/hello")[2] == b"hello"
    finally:
        sock.close()
