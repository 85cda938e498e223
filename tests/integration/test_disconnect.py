"""http.disconnect delivery and what send()/receive() do once a response is over."""

import time

from harness import IS_BAYLEAF, build_request, qs, read_json_lines, skip_server, wait_until


def events(path, kind):
    return [e for e in read_json_lines(path) if e["event"] == kind]


def test_disconnect_delivered_while_app_waits(echo_server, tmp_path):
    out = tmp_path / "events.jsonl"
    conn = echo_server.connect()
    try:
        conn.send(build_request("POST", "/wait-disconnect" + qs(out=out), body=b"some body"))
        wait_until(lambda: events(out, "waiting"), 5, message="app to read the body")
        time.sleep(0.2)  # the app is now blocked in receive()
        assert not events(out, "received"), "receive() returned while the client was still connected"
    finally:
        conn.close()
    got = wait_until(lambda: events(out, "received"), 5, message="http.disconnect to reach the app")
    assert got[0]["type"] == "http.disconnect"
    sent = wait_until(lambda: events(out, "send"), 5, message="the app's late send")
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
        wait_until(lambda: events(out, "waiting"), 5, message="app start")
        time.sleep(0.2)
    finally:
        conn.close()
    got = wait_until(lambda: [e for e in events(out, "received") if e["type"] == "http.disconnect"], 5,
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
        got = wait_until(lambda: events(out, "received"), 5, message="receive() after the response")
        assert got[0]["type"] == "http.disconnect", got
        assert got[0]["elapsed"] < 2.0
        sent = wait_until(lambda: events(out, "send"), 5, message="late send")
        if IS_BAYLEAF:
            assert sent[0]["raised"] is not None, "send() after the response completed did not raise"
            assert sent[0]["is_oserror"], f"expected an OSError subclass, got {sent[0]}"
        # the late send must not leak bytes onto the connection
        resp2 = conn.request("GET", "/hello")
        assert resp2.status == 200 and resp2.body == b"Hello, world!\n"
        assert conn.is_open_idle(0.2)
