"""--access-log: Daphne's WebSocket lines (WSCONNECTING, WSCONNECT, WSREJECT, WSDISCONNECT)."""

import re
import time

from harness import skip_server, wait_until

from .ws_support import APP, WSConn, open_ws

pytestmark = [skip_server("uvicorn", reason="uvicorn has no --access-log FILE")]

# Daphne: '%s %s %s [%s] "%s" %s %s' % (host, ident, user, date, request, status or "-", length or "-")
LINE = re.compile(
    r'^(?P<client>\S+) - - \[(?P<date>\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2})\] '
    r'"(?P<action>WS[A-Z]+) (?P<path>\S+)" - -$')


def ws_lines(path):
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [m.groupdict() for m in map(LINE.match, text.splitlines()) if m]


def actions(lines, path):
    return [l["action"] for l in lines if l["path"].split("?")[0] == path]


def test_ws_access_log_lines(start_server, tmp_path):
    log = tmp_path / "access.log"
    server = start_server(APP, "--access-log", str(log))

    # accepted, used, closed by the client
    with open_ws(server, "/echo/logged") as ws:
        wait_until(lambda: actions(ws_lines(log), "/echo/logged") == ["WSCONNECTING", "WSCONNECT"], 15,
                   message="WSCONNECTING + WSCONNECT while the socket is open")
        ws.send_text("x")
        assert ws.recv_text(5) == "x"
        ws.send_close(1000)
        ws.expect_close(5)
        assert ws.wait_closed(5)
    wait_until(lambda: "WSDISCONNECT" in actions(ws_lines(log), "/echo/logged"), 15, message="WSDISCONNECT")

    # refused by the app
    with WSConn(server.connect()) as ws:
        assert ws.handshake("/reject/logged").status == 403
    # as Daphne: the socket closing after a refusal is logged too
    wait_until(lambda: "WSDISCONNECT" in actions(ws_lines(log), "/reject/logged"), 15,
               message="WSREJECT, then WSDISCONNECT")

    # no line after the last expected one: a fixed window for a negative check
    # (a slow machine only makes it pass more easily)
    time.sleep(0.2)
    lines = ws_lines(log)
    assert actions(lines, "/echo/logged") == ["WSCONNECTING", "WSCONNECT", "WSDISCONNECT"], lines
    assert actions(lines, "/reject/logged") == ["WSCONNECTING", "WSREJECT", "WSDISCONNECT"], lines
    for l in lines:
        # Daphne 4 writes "127.0.0.1:PORT"
        assert re.fullmatch(r"127\.0\.0\.1(:\d+)?", l["client"]), l
        time.strptime(l["date"], "%d/%b/%Y:%H:%M:%S")
    bad = [l for l in log.read_text().splitlines() if l.strip() and not LINE.match(l)]
    assert not bad, f"lines not in Daphne's WebSocket format: {bad}"


def test_ws_access_log_connect_timeout_and_denial(start_server, tmp_path):
    log = tmp_path / "access.log"
    server = start_server(APP, "--access-log", str(log), "--websocket_connect_timeout", "0.5")
    with WSConn(server.connect()) as ws:
        assert ws.handshake("/never/logged").status == 403
    with WSConn(server.connect()) as ws:
        assert ws.handshake("/deny/logged").status == 401
    wait_until(lambda: "WSDISCONNECT" in actions(ws_lines(log), "/never/logged")
               and "WSDISCONNECT" in actions(ws_lines(log), "/deny/logged"), 15,
               message="WSREJECT and WSDISCONNECT lines")
    time.sleep(0.2)  # negative window for extra lines, as above
    lines = ws_lines(log)
    assert actions(lines, "/never/logged") == ["WSCONNECTING", "WSREJECT", "WSDISCONNECT"], lines
    assert actions(lines, "/deny/logged") == ["WSCONNECTING", "WSREJECT", "WSDISCONNECT"], lines


def test_ws_access_log_tcp_drop(start_server, tmp_path):
    log = tmp_path / "access.log"
    server = start_server(APP, "--access-log", str(log))
    ws = open_ws(server, "/echo/dropped")
    ws.send_text("x")
    assert ws.recv_text(5) == "x"
    ws.close()
    wait_until(lambda: "WSDISCONNECT" in actions(ws_lines(log), "/echo/dropped"), 15,
               message="WSDISCONNECT after a TCP drop")
    assert actions(ws_lines(log), "/echo/dropped") == ["WSCONNECTING", "WSCONNECT", "WSDISCONNECT"]


def test_ws_access_log_ping_timeout(start_server, tmp_path):
    log = tmp_path / "access.log"
    server = start_server(APP, "--access-log", str(log), "--ping-interval", "0.3", "--ping-timeout", "0.3")
    with open_ws(server, "/echo/silent") as ws:
        ws.raw.read_to_close(timeout=5)  # the ping arrives, is not answered, the server drops us
    wait_until(lambda: "WSDISCONNECT" in actions(ws_lines(log), "/echo/silent"), 5,
               message="WSDISCONNECT after a ping timeout")
