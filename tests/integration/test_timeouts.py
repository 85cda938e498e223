"""bayleaf's connection timeouts (--keepalive-timeout, --header-timeout,
--graceful-timeout; see `bayleaf --help`)."""

import signal
import time

from harness import bayleaf_only, build_request

pytestmark = bayleaf_only


def test_idle_keepalive_connection_closed_after_timeout(start_server):
    server = start_server("echo:app", "--keepalive-timeout", "1")
    with server.connect() as conn:
        assert conn.request("GET", "/hello").status == 200
        t0 = time.monotonic()
        # closed by the timer, however slow the machine (a generous deadline), and
        # not before the 1 s timeout (timer granularity aside)
        assert conn.wait_closed(15), "idle keep-alive connection still open 15 s after a 1 s timeout"
        assert time.monotonic() - t0 >= 0.8
    server.assert_serving()


def test_keepalive_timer_does_not_cut_active_connection(start_server):
    # idle 0.5 s between requests, well under the 2 s timeout: a slow machine
    # stretching the gaps does not reach it
    server = start_server("echo:app", "--keepalive-timeout", "2")
    with server.connect() as conn:
        for _ in range(5):
            assert conn.request("GET", "/hello").status == 200
            time.sleep(0.5)
        # a slow response longer than the keep-alive timeout is not cut either
        resp = conn.request("GET", "/sleep/x?s=3", timeout=30)
        assert resp.status == 200


def test_incomplete_head_closed_after_header_timeout(start_server):
    server = start_server("echo:app", "--header-timeout", "1")
    with server.connect() as conn:
        conn.send(b"GET /slowloris HTTP/1.1\r\nHost: x\r\nX-Partial: ")
        t0 = time.monotonic()
        data = conn.read_to_close(timeout=15)
        elapsed = time.monotonic() - t0
        assert conn.eof, "connection with an incomplete head still open 15 s after a 1 s timeout"
        assert elapsed >= 0.8, "closed before the 1 s header timeout"
        assert data == b"" or data.startswith(b"HTTP/1.1 408"), data[:100]
    server.assert_serving()


def test_graceful_timeout_bounds_shutdown(start_server):
    server = start_server("echo:app", "--graceful-timeout", "1")
    with server.connect() as conn:
        conn.send(build_request("GET", "/sleep/long?s=20"))
        time.sleep(0.3)
        t0 = time.monotonic()
        server.send_signal(signal.SIGTERM)
        rc = server.wait_exit(60)
        assert rc is not None, "still running 60 s after SIGTERM with --graceful-timeout 1"
        assert time.monotonic() - t0 < 15  # not the 20 s the app sleeps
