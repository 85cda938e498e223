"""http.disconnect delivery and what send()/receive() do once a response is over."""

import time

from harness import IS_BAYLEAF, MB, bayleaf_only, build_request, qs, read_json_lines, skip_server, wait_until


def events(path, kind):
    return [e for e in read_json_lines(path) if e["event"] == kind]


def test_disconnect_delivered_while_app_waits(echo_server, tmp_path):
    out = tmp_path / "events.jsonl"
    conn = echo_server.connect()
    try:
        conn.send(build_request("POST", "/wait-disconnect" + qs(out=out), body=b"some body"))
        wait_until(lambda: events(out, "waiting"), 30, message="app to read the body")
        # the app is now blocked in receive(); a fixed window for a negative check
        # (a slow machine only makes it pass more easily)
        time.sleep(0.2)
        assert not events(out, "received"), "receive() returned while the client was still connected"
    finally:
        conn.close()
    got = wait_until(lambda: events(out, "received"), 30, message="http.disconnect to reach the app")
    assert got[0]["type"] == "http.disconnect"
    sent = wait_until(lambda: events(out, "send"), 30, message="the app's late send")
    if IS_BAYLEAF:
        assert sent[0]["is_oserror"], f"send() on a closed connection should raise an OSError subclass: {sent[0]}"
    echo_server.assert_serving()


@skip_server("daphne", reason="daphne buffers the whole body before calling the app")
def test_disconnect_while_body_is_incomplete(echo_server, tmp_path):
    out = tmp_path / "events.jsonl"
    conn = echo_server.connect()
    try:
        conn.send(build_request("POST", "/wait-disconnect" + qs(out=out, mode="body"),
                                headers=[("Content-Length", "100000")]) + b"x" * 1000)
        wait_until(lambda: events(out, "waiting"), 30, message="app start")
        time.sleep(0.2)  # most likely in receive() by now; either order must work
    finally:
        conn.close()
    got = wait_until(lambda: [e for e in events(out, "received") if e["type"] == "http.disconnect"], 30,
                     message="http.disconnect")
    msgs = events(out, "received")
    assert all(m["type"] == "http.request" for m in msgs[:-1])
    assert sum(m["length"] for m in msgs[:-1]) <= 1000
    assert got
    echo_server.assert_serving()


def test_receive_after_response_returns_disconnect_and_late_send_raises(echo_server, tmp_path):
    out = tmp_path / "events.jsonl"
    with echo_server.connect() as conn:
        resp = conn.request("GET", "/after-complete" + qs(out=out))
        assert resp.status == 200 and resp.body == b"done"
        # keep the connection open: the response being complete is enough
        got = wait_until(lambda: events(out, "received"), 30, message="receive() after the response")
        assert got[0]["type"] == "http.disconnect", got
        # at once, not when a timer or the client ends the connection (it stays
        # open): generous for a loaded, sanitized run
        assert got[0]["elapsed"] < 10.0
        sent = wait_until(lambda: events(out, "send"), 30, message="late send")
        if IS_BAYLEAF:
            assert sent[0]["raised"] is not None, "send() after the response completed did not raise"
            assert sent[0]["is_oserror"], f"expected an OSError subclass, got {sent[0]}"
        # the late send must not leak bytes onto the connection
        resp2 = conn.request("GET", "/hello")
        assert resp2.status == 200 and resp2.body == b"Hello, world!\n"
        assert conn.is_open_idle(0.2)


# The app's unsent bytes must balance on every path: an exchange freed with some
# left logs "accounting error", which the harness fails a test on (its send()
# could have waited on them for good).

@bayleaf_only
def test_client_leaving_mid_stream_balances_unsent(start_server):
    """Events still on their way when the client leaves are dropped, and their
    bytes taken off the app's count."""
    server = start_server("echo:app")
    for _ in range(5):
        with server.connect() as conn:
            conn.send(build_request("GET", "/stream?total=%d&chunk=65536" % (256 * MB)))
            resp = conn.read_head()
            assert resp.status == 200
            conn.read_exact(256 * 1024)
    server.assert_serving("/hello")
    assert "accounting error" not in server.stderr, server.stderr[-2000:]


@bayleaf_only
def test_first_body_cut_to_content_length_balances_unsent(start_server):
    """A first body message longer than the Content-Length is cut: all of it
    leaves the app's count, not just what was written."""
    server = start_server("errors:misbehaving")
    for _ in range(3):
        with server.connect() as conn:
            resp = conn.request("GET", "/long-first-body")
            assert resp.status == 200 and resp.body == b"xxxxx"
    server.assert_serving("/ok")
    assert "accounting error" not in server.stderr, server.stderr[-2000:]
