"""Graceful shutdown on SIGTERM/SIGINT."""

import signal
import socket
import time

import pytest

from harness import IS_BAYLEAF, IncompleteResponse, build_request, expected_stream, skip_server


@skip_server("daphne", reason="daphne drops in-flight responses on SIGTERM")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_during_inflight_response_completes_it(start_server, sig):
    server = start_server("echo:app")
    server.assert_serving()
    total, chunk = 20000, 1000  # 20 chunks, 0.1 s apart: ~2 s
    with server.connect() as conn:
        conn.send(build_request("GET", f"/stream?total={total}&chunk={chunk}&delay=0.1"))
        head = conn.read_head(timeout=5)
        assert head.status == 200
        if not conn.buf:
            conn._fill(time.monotonic() + 5)  # the first chunk has arrived (stays buffered)
        assert conn.buf
        t0 = time.monotonic()
        server.send_signal(sig)
        # no new connections are served once shutdown started (bayleaf closes its
        # listeners in the callback that logs it)
        server.wait_for_text("(?i)received %s|shutting down" % sig.name, timeout=30)
        if not IS_BAYLEAF:
            time.sleep(0.2)  # uvicorn logs before it closes its listeners
        try:
            with server.connect(timeout=1) as late:
                late.send(build_request("GET", "/hello"))
                late_resp = late.read_response(timeout=1)
            assert late_resp.status != 200, "a new request was served after " + sig.name
        except (OSError, IncompleteResponse, TimeoutError):
            pass
        # the in-flight response runs to the end
        parts = []
        conn._read_body(head, "GET", time.monotonic() + 60, parts.append)
        body = b"".join(parts)
    assert body == expected_stream(total, chunk)
    rc = server.wait_exit(60)
    assert rc is not None, f"server still running 60 s after {sig.name}\n" + server.describe()
    assert rc == 0, server.describe()
    assert time.monotonic() - t0 < 25  # it did not wait for the 30 s graceful timeout


def test_sigterm_with_idle_keepalive_connection_exits_promptly(start_server):
    server = start_server("echo:app")
    with server.connect() as conn:
        assert conn.request("GET", "/hello").status == 200
        t0 = time.monotonic()
        server.send_signal(signal.SIGTERM)
        rc = server.wait_exit(60)
        assert rc is not None, "an idle keep-alive connection kept the server from exiting\n" + server.describe()
        assert rc == 0
        assert time.monotonic() - t0 < 25  # it did not wait for the 30 s graceful timeout
        assert conn.wait_closed(10)


def test_sigterm_idle_server_exits_zero(start_server):
    server = start_server("echo:app")
    server.assert_serving()
    rc, killed = server.stop(signal.SIGTERM, grace=60)  # generous: only a hang fails
    assert not killed and rc == 0, server.describe()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
