"""One log: every line a run writes to stderr, from Python or from C (the I/O
thread, signals, the supervisor and its workers, send timeouts), follows the
one --log-fmt."""

import os
import re
import signal
import socket

import pytest

from harness import wait_until

from .ops_support import APP, Metrics, loop_blocked, value

LEVEL = r"(DEBUG|INFO|WARNING|ERROR|CRITICAL)"
STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"

FORMATS = {
    "default": (None, rf"{STAMP} {LEVEL} *(?P<msg>\S.*)"),
    "colons": ("%(levelname)s:%(name)s:%(message)s", rf"{LEVEL}:bayleaf(\.[a-z]+)?:(?P<msg>\S.*)"),
    "fields": ("[%(asctime)s] {%(process)d} %(name)-18s %(levelname)-7s | %(message)s",
               rf"\[{STAMP}\] {{\d+}} bayleaf(\.[a-z]+)? *{LEVEL} * \| (?P<msg>\S.*)"),
}


def check_lines(stderr, pattern):
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines
    for line in lines:
        m = re.fullmatch(pattern, line)
        assert m, f"a line not in the format: {line!r}\n--- all ---\n{stderr}"
        assert m.group("msg")[0].isupper() or not m.group("msg")[0].isalpha(), f"not capitalised: {line!r}"
    return lines


def send_timeout(server):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", server.port))
    s.sendall(b"GET /big?mb=256 HTTP/1.1\r\nHost: x\r\n\r\n")  # never read
    server.wait_for_text("--send-timeout", timeout=30)
    s.close()


@pytest.mark.parametrize("name", FORMATS)
def test_one_process_run_is_in_one_format(start_server, name):
    fmt, pattern = FORMATS[name]
    args = ["-v", "2", "--send-timeout", "0.5"] + (["--log-fmt", fmt] if fmt else [])
    server = start_server(APP, *args)
    assert server.request("GET", "/")[0] == 200
    send_timeout(server)
    rc, _ = server.stop(signal.SIGTERM)
    assert rc == 0
    text = "\n".join(check_lines(server.stderr, pattern))
    for what in ("Lifespan startup complete", "Listening on", "read none of", "Received SIGTERM",
                 "Lifespan shutdown complete"):
        assert what in text, text


@pytest.mark.parametrize("name", FORMATS)
def test_workers_and_supervisor_lines_are_in_one_format(start_server, name):
    fmt, pattern = FORMATS[name]
    server = start_server(APP, "--workers", "2", *(["--log-fmt", fmt] if fmt else []))
    server.wait_for_text(r"2 worker\(s\) ready", timeout=30)
    victim = int(re.findall(r"Started worker (\d+)", server.stderr)[0])
    os.kill(victim, signal.SIGKILL)
    server.wait_for_text(rf"Worker {victim} was killed by signal 9.*restarting it", timeout=30)
    wait_until(lambda: len(re.findall(r"Started worker", server.stderr)) == 3, 30)
    rc, _ = server.stop(signal.SIGTERM, grace=30)
    assert rc == 0
    text = "\n".join(check_lines(server.stderr, pattern))
    assert "Supervisor" in text and "all workers stopped" in text
    if fmt and "%(name)" in fmt:
        assert "bayleaf.supervisor" in text and "bayleaf.server" in text


DJANGO_APP = "log_django_app:app"
DJANGO_LINE = r"DJ\|" + LEVEL + r"\|bayleaf(\.[a-z]+)?\|(MainThread|bayleaf-io)\|(?P<msg>\S.*)"


def test_django_logging_formats_the_c_lines_too(start_server):
    server = start_server(DJANGO_APP, "-v", "2", "--send-timeout", "0.5")
    assert server.request("GET", "/")[0] == 200
    send_timeout(server)
    rc, _ = server.stop(signal.SIGTERM)
    assert rc == 0
    text = "\n".join(check_lines(server.stderr, DJANGO_LINE))
    for what in ("DJ|INFO|bayleaf.server|bayleaf-io|Listening on", "read none of",
                 "DJ|INFO|bayleaf.server|bayleaf-io|Received SIGTERM", "DJ|DEBUG|bayleaf|MainThread|Lifespan startup"):
        assert what in text, text


def test_a_blocked_python_still_lets_the_io_threads_line_out(start_server, tmp_path):
    m = Metrics()
    server = start_server(DJANGO_APP, "--metrics", m.arg)
    with loop_blocked(server, tmp_path / "gate") as done:
        wait_until(lambda: value(m.scrape(), "bayleaf_python_loop_lag_seconds") > 0.5, 30,
                   message="the loop blocked")
        server.send_signal(signal.SIGTERM)
        # Python cannot take it: the relay writes it itself, in --log-fmt's format,
        # while the loop is still blocked (the block ends only after this).
        server.wait_for_text(r"INFO +Received SIGTERM, shutting down", timeout=20)
        assert not done
    assert done == [200]
    server.wait_exit(30)
    assert "DJ|INFO|bayleaf.server|bayleaf-io|Listening on" in server.stderr
