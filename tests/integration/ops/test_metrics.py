"""--metrics: Prometheus text served by the I/O side, parsed with
prometheus_client's own parser, moving with real traffic."""

import asyncio
import os
import re
import signal
import socket
import subprocess

import pytest
import websockets

from harness import APPS_DIR, BAYLEAF, free_port, wait_until

from .ops_support import APP, Metrics, loop_blocked, total, value


@pytest.fixture
def metered(start_server):
    def start(*args, **kw):
        m = Metrics(kw.pop("metrics_unix", None))
        server = start_server(APP, "--metrics", m.arg, *args, **kw)
        wait_until(lambda: m.ready() == 200, 60, message="/ready answering 200")
        return server, m
    return start


def test_http_responses_by_status_class(metered):
    server, m = metered()
    before = m.scrape()
    for status in (200, 200, 204, 301, 302, 404, 500, 503, 503):
        assert server.request("GET", f"/status/{status}")[0] == status
    with server.connect() as raw:  # refused by the server itself: 400
        raw.send(b"NOT A REQUEST\r\n\r\n")
        assert raw.read_response().status == 400
    # A response is counted just after its last bytes are written: the client
    # can read them (and scrape) a moment before the count lands.
    def grew():
        after = m.scrape()
        return {c: value(after, "bayleaf_http_responses_total", status=c)
                - value(before, "bayleaf_http_responses_total", status=c) for c in ("2xx", "3xx", "4xx", "5xx")}
    wait_until(lambda: grew() == {"2xx": 3, "3xx": 2, "4xx": 2, "5xx": 3}, 10,
               message="the responses counted by status class")


def test_open_connections_by_kind(metered):
    server, m = metered()

    async def go():
        async with websockets.connect(f"ws://127.0.0.1:{server.port}/ws/echo"):
            with server.connect() as raw:
                raw.send(b"GET /status/200 HTTP/1.1\r\nHost: x\r\n\r\n")
                assert raw.read_response().status == 200  # kept alive
                s = m.scrape()
                assert value(s, "bayleaf_connections", kind="http") == 1
                assert value(s, "bayleaf_connections", kind="websocket") == 1

    asyncio.run(go())
    wait_until(lambda: value(m.scrape(), "bayleaf_connections", kind="websocket") == 0, 30)
    wait_until(lambda: value(m.scrape(), "bayleaf_connections", kind="http") == 0, 30)


def test_websocket_messages_bytes_and_close_codes(metered):
    server, m = metered()
    base = f"ws://127.0.0.1:{server.port}"

    async def go():
        async with websockets.connect(base + "/ws/echo", compression=None) as ws:
            for msg in ("a" * 10, "b" * 20, b"\x00" * 30):
                await ws.send(msg)
                assert await ws.recv() == msg
        for code in (1011, 4001):
            async with websockets.connect(base + f"/ws/close/{code}", compression=None) as ws:
                await ws.send("x")
                assert await ws.recv() == "x"
                with pytest.raises(websockets.ConnectionClosed):
                    await ws.recv()
                assert ws.close_code == code

    asyncio.run(go())
    wait_until(lambda: value(m.scrape(), "bayleaf_connections", kind="websocket") == 0, 30)
    s = m.scrape()
    assert value(s, "bayleaf_websocket_messages_total", direction="in") == 5
    assert value(s, "bayleaf_websocket_messages_total", direction="out") == 5
    assert value(s, "bayleaf_websocket_bytes_total", direction="in") == 62
    assert value(s, "bayleaf_websocket_bytes_total", direction="out") == 62
    assert value(s, "bayleaf_websocket_closes_total", code="1000") == 1
    assert value(s, "bayleaf_websocket_closes_total", code="1011") == 1
    assert value(s, "bayleaf_websocket_closes_total", code="other") == 1


def test_scrape_answers_while_the_app_blocks_the_loop(metered, tmp_path):
    server, m = metered()
    with loop_blocked(server, tmp_path / "gate") as done:
        # The loop stays blocked until the test ends the block: scrapes keep
        # coming, and show it.
        wait_until(lambda: value(m.scrape(), "bayleaf_python_loop_lag_seconds") >= 1.0, 30,
                   message="a scrape showing the blocked loop")
        assert not done
        assert m.ready() == 200
    assert done == [200]
    wait_until(lambda: value(m.scrape(), "bayleaf_python_loop_lag_seconds") < 1.0, 30)


def test_send_timeouts_are_counted(metered):
    server, m = metered("--send-timeout", "0.5")
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", server.port))
    try:
        s.sendall(b"GET /big?mb=256 HTTP/1.1\r\nHost: x\r\n\r\n")  # and never read
        wait_until(lambda: value(m.scrape(), "bayleaf_send_timeouts_total") == 1, 20,
                   message="the send timeout counted")
    finally:
        s.close()


def test_queued_bridge_gauges_are_exposed(metered):
    server, m = metered()
    s = m.scrape()
    for d in ("up", "down"):
        assert ("bayleaf_bridge_queued_bytes", (("direction", d),)) in s
        assert ("bayleaf_bridge_queued_events", (("direction", d),)) in s
        assert value(s, "bayleaf_bridge_queued_events", direction=d) >= 0


def test_unix_socket_address_and_unknown_paths(metered, short_dir):
    server, m = metered(metrics_unix=f"{short_dir}/metrics.sock")
    assert server.request("GET", "/")[0] == 200
    wait_until(lambda: value(m.scrape(), "bayleaf_http_responses_total", status="2xx") == 1, 10,
               message="the response counted")
    assert m.get("/nope")[0] == 404


def test_ready_is_503_during_startup_and_draining(start_server, tmp_path):
    m = Metrics()
    gate = tmp_path / "gate"
    server = start_server(APP, "--metrics", m.arg, env={"OPS_STARTUP_GATE": str(gate)}, wait=False)
    wait_until(lambda: m.ready() == 503, 30, message="/ready answering 503 during lifespan startup")
    gate.touch()
    wait_until(lambda: m.ready() == 200, 60, message="/ready answering 200 after startup")
    assert value(m.scrape(), "bayleaf_accepting") == 1
    with loop_blocked(server, tmp_path / "block") as done:
        wait_until(lambda: value(m.scrape(), "bayleaf_python_loop_lag_seconds") > 0.5, 30)
        server.send_signal(signal.SIGTERM)
        wait_until(lambda: m.ready() == 503, 30, message="/ready answering 503 while draining")
        assert not done
    assert done == [200]


def test_workers_are_labelled_and_restarts_counted(metered):
    server, m = metered("--workers", "2")
    wait_until(lambda: len(server.stderr.split("Listening on")) == 3, 30, message="both workers listening")
    for _ in range(20):
        assert server.request("GET", "/status/200")[0] == 200
    wait_until(lambda: total(m.scrape(), "bayleaf_http_responses_total", status="2xx") == 20, 10,
               message="the 20 responses counted")
    s = m.scrape()
    workers = {dict(ls).get("worker") for (n, ls) in s if n == "bayleaf_http_responses_total"}
    assert workers == {"0", "1"}
    assert total(s, "bayleaf_worker_restarts_total") == 0
    # One worker dies: restarted, counted, and its counts are kept.
    pids = [int(p) for p in re.findall(r"Started worker (\d+)", server.stderr)]
    os.kill(pids[0], signal.SIGKILL)
    wait_until(lambda: total(m.scrape(), "bayleaf_worker_restarts_total") == 1, 30)
    wait_until(lambda: m.ready() == 200 and len(re.findall(r"Started worker", server.stderr)) == 3, 30)
    assert total(m.scrape(), "bayleaf_http_responses_total", status="2xx") == 20


@pytest.mark.parametrize("address", ["nowhere", "127.0.0.1:http", "[::1]9000", "1.2.3.4:70000"])
def test_bad_metrics_address_is_one_error_line(address):
    proc = subprocess.run([BAYLEAF, "-p", str(free_port()), "--metrics", address, APP], cwd=str(APPS_DIR),
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == [f"bayleaf: error: invalid address {address} (expected HOST:PORT, [V6]:PORT or unix:PATH)"]
