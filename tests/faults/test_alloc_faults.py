"""Out of memory on the I/O thread, injected at a named allocation site
(BAYLEAF_FAULT_ALLOC="site:n" fails that site's nth allocation once;
include/bayleaf/common/fault.h):

- accept: the connection struct of a client just accepted. That client's
  socket is closed (no response, no descriptor kept), one log line says so,
  and the next client is served: the listener is not left stopped.
- writable: the WRITABLE event that wakes a send() waiting for a slow
  client. The connection is shed instead of left waiting: the app's send()
  raises (its disconnect is reserved, it cannot fail), the app hears its
  disconnect, the client sees the connection end, the server goes on.
"""

import socket
import time

from conformance_ws import Closed, connect
from faults_support import fd_count, get_json, wait_for

WAIT = 30  # generous deadlines for a positive outcome on a busy machine
ACCEPT_LOG = "(?i)accept on .* failed: .*pausing accepts"
WRITABLE_LOG = "(?i)out of memory: cannot wake the application's send"


def faults(spec):
    return {"BAYLEAF_FAULT_ALLOC": spec}


def settle_fds(srv, base, timeout=WAIT):
    wait_for(lambda: fd_count(srv.pid) <= base, timeout,
             what=f"server fds back to {base}; now {fd_count(srv.pid)}")


def read_all(sock, timeout=WAIT):
    """Bytes until the server ends the connection (FIN or RST)."""
    sock.settimeout(timeout)
    got = b""
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            return got
        if not data:
            return got
        got += data


def test_accept_allocation_failure_drops_that_client_only(fault_server):
    # accept 1: the harness's readiness probe; 2: the request below; 3 fails
    srv = fault_server(env=faults("accept:3"))
    assert get_json(srv, "/stats") is not None
    time.sleep(0.2)  # Python opens a few descriptors lazily: then the baseline
    base = fd_count(srv.pid)

    s = socket.create_connection((srv.host, srv.port), timeout=WAIT)
    try:
        s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_all(s) == b"", "the client whose connection could not be allocated got an answer"
    finally:
        s.close()

    # the next clients are served: accepting resumed
    for _ in range(3):
        status, _, body = srv.get("/hello")
        assert (status, body) == (200, b"hello")
    settle_fds(srv, base)
    srv.wait_for_text(ACCEPT_LOG)
    assert srv.alive()
    lines = [ln for ln in srv.stderr.splitlines() if "accept on" in ln.lower()]
    assert len(lines) == 1, lines


def test_writable_failure_sheds_the_websocket(fault_server):
    """The app pushes 4 MiB in 64 KiB messages; its second send() waits for
    the client (backpressure) and the WRITABLE that would wake it fails. No
    pings: nothing but the fix may end the connection."""
    srv = fault_server("--ping-interval", "0", env=faults("writable:1"))
    assert get_json(srv, "/stats") is not None
    time.sleep(0.2)
    base = fd_count(srv.pid)

    ws = connect(srv, "/push?mb=4")
    got = 0
    try:
        while True:
            try:
                f = ws.recv_frame(WAIT)
            except (Closed, ConnectionResetError):
                break
            got += len(f.payload)
    finally:
        ws.close()
    assert got < 4 * 1024 * 1024, "the whole push arrived: no WRITABLE was ever needed"

    # the app's send() raised and the app heard its disconnect: nothing waits
    wait_for(lambda: get_json(srv, "/stats")["push_failed"] == 1, WAIT, what="the app's send() to fail")
    wait_for(lambda: get_json(srv, "/stats")["disconnects"] >= 1, WAIT, what="the app's disconnect")
    stats = get_json(srv, "/stats")
    assert stats["pushed"] == 0, stats
    srv.wait_for_text(WRITABLE_LOG)

    # the next WebSocket's push needs WRITABLEs too, and they work again
    ws = connect(srv, "/push?mb=1")
    try:
        got = 0
        while got < 1024 * 1024:
            got += len(ws.recv_message(WAIT)[1])
        wait_for(lambda: get_json(srv, "/stats")["pushed"] == 1, WAIT, what="the second push to end")
    finally:
        ws.close()
    settle_fds(srv, base)


def test_writable_failure_cuts_the_http_stream(fault_server):
    """A streamed (chunked) 4 MiB response: the WRITABLE that would wake its
    paced send() fails. The response is cut (no final chunk), the app's
    send() raises and its next receive() says http.disconnect."""
    srv = fault_server(env=faults("writable:1"))
    assert get_json(srv, "/stats") is not None
    time.sleep(0.2)
    base = fd_count(srv.pid)

    s = socket.create_connection((srv.host, srv.port), timeout=WAIT)
    try:
        s.sendall(b"GET /stream?mb=4 HTTP/1.1\r\nHost: x\r\n\r\n")
        got = read_all(s)
    finally:
        s.close()
    assert got.startswith(b"HTTP/1.1 200"), got[:200]
    assert not got.endswith(b"\r\n0\r\n\r\n"), "the response was completed: no WRITABLE failed"

    wait_for(lambda: get_json(srv, "/stats")["stream_failed"] == 1, WAIT, what="the app's send() to fail")
    wait_for(lambda: get_json(srv, "/stats")["stream_after_fail"] == "http.disconnect", WAIT,
             what="the app's receive() to say http.disconnect")
    srv.wait_for_text(WRITABLE_LOG)

    # the next stream is whole
    status, _, body = srv.get("/stream?mb=1")
    assert status == 200 and len(body) == 1024 * 1024
    assert get_json(srv, "/stats")["streamed"] == 1
    settle_fds(srv, base)


def test_request_body_event_failure_tells_the_app(fault_server):
    """The BODY event of a request the app is reading cannot be allocated:
    the client gets a 500, and the app's receive() says http.disconnect
    instead of waiting for the rest of the body for ever. (Expect:
    100-continue orders it: the REQUEST event is posted, the app's
    receive() asks for the body, and the body's BODY event fails.)"""
    srv = fault_server(env=faults("request:2"))  # 1: this REQUEST, 2: its BODY
    body = b"b" * 5000
    s = socket.create_connection((srv.host, srv.port), timeout=WAIT)
    try:
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body))
        got = b""
        while b"\r\n\r\n" not in got:
            data = s.recv(4096)
            assert data, got
            got += data
        assert got.startswith(b"HTTP/1.1 100 "), got
        s.sendall(body)
        got = read_all(s)
    finally:
        s.close()
    assert b"HTTP/1.1 500 " in got, got
    wait_for(lambda: get_json(srv, "/stats")["request_disconnects"] == 1, WAIT,
             what="the app's receive() to say http.disconnect")
    status, _, reply = srv.request("POST", "/upload", body=body)
    assert (status, reply) == (200, b"hello")


def test_complete_response_needs_no_writable(fault_server):
    """One task's paced body waits for the client while another task ends the
    response. The waiter returns with the response's end: it does not
    depend on a WRITABLE the I/O thread may no longer owe (here, one it
    cannot allocate), and the response is whole."""
    srv = fault_server(env=faults("writable:1"))
    s = socket.create_connection((srv.host, srv.port), timeout=WAIT)
    try:
        s.sendall(b"GET /race-final HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        got = read_all(s)
    finally:
        s.close()
    assert got.startswith(b"HTTP/1.1 200") and got.endswith(b"\r\n0\r\n\r\n"), got[:200]
    assert got.count(b"r") >= 262144
    wait_for(lambda: get_json(srv, "/stats")["race_woken"] + get_json(srv, "/stats")["race_stuck"] == 1,
             WAIT + 10, what="the waiting send() to end")
    assert get_json(srv, "/stats")["race_woken"] == 1
