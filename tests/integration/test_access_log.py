"""--access-log FILE|- writes one Daphne-format line per request."""

import re
import time

from harness import build_request, skip_server, wait_until

pytestmark = skip_server("uvicorn", reason="uvicorn has no --access-log FILE")

LINE = re.compile(
    r'^(?P<client>\S+) - - \[(?P<date>\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2})\] '
    r'"(?P<method>[A-Z]+) (?P<path>\S+)" (?P<status>\d{3}) (?P<size>\d+)$')


def log_lines(text):
    return [m.groupdict() for m in map(LINE.match, text.splitlines()) if m]


def make_requests(server):
    with server.connect() as conn:
        assert conn.request("GET", "/hello").status == 200
        assert conn.request("POST", "/body", body=b"z" * 300).status == 200
        assert conn.request("GET", "/log/third?q=1").status == 200


def check(lines):
    assert len(lines) == 3, lines
    assert [(l["method"], l["path"].split("?")[0], l["status"]) for l in lines] == [
        ("GET", "/hello", "200"), ("POST", "/body", "200"), ("GET", "/log/third", "200")]
    for l in lines:
        # the brief shows "127.0.0.1"; Daphne 4 itself writes "127.0.0.1:PORT"
        assert re.fullmatch(r"127\.0\.0\.1(:\d+)?", l["client"]), l
        time.strptime(l["date"], "%d/%b/%Y:%H:%M:%S")


def test_access_log_to_file(start_server, tmp_path):
    log = tmp_path / "access.log"
    server = start_server("echo:app", "--access-log", str(log))
    make_requests(server)
    try:
        wait_until(lambda: log.exists() and len(log_lines(log.read_text())) >= 3, 3,
                   message="3 access log lines")
        flushed_live = True
    except AssertionError:
        flushed_live = False
        server.stop()
    text = log.read_text() if log.exists() else ""
    check(log_lines(text))
    assert flushed_live, "access log lines only appeared after shutdown (not flushed per request)"
    bad = [l for l in text.splitlines() if l.strip() and not LINE.match(l)]
    assert not bad, f"lines not in Daphne's format: {bad}"


def test_access_log_to_stdout(start_server):
    server = start_server("echo:app", "--access-log", "-")
    make_requests(server)
    try:
        wait_until(lambda: len(log_lines(server.stdout)) >= 3, 30, message="3 access log lines on stdout")
    except AssertionError:
        server.stop()
    check(log_lines(server.stdout))


def test_access_log_records_error_statuses(start_server, tmp_path):
    log = tmp_path / "access.log"
    server = start_server("errors:app", "--access-log", str(log))
    with server.connect() as conn:
        assert conn.request("GET", "/raise-before").status == 500
    with server.connect() as conn:
        conn.send(build_request("GET", "/ok"))
        conn.read_response()
    try:
        wait_until(lambda: log.exists() and len(log_lines(log.read_text())) >= 2, 30, message="2 lines")
    except AssertionError:
        server.stop()
    lines = log_lines(log.read_text())
    assert [(l["path"], l["status"]) for l in lines] == [("/raise-before", "500"), ("/ok", "200")]
