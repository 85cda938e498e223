"""The access log, line by line against the installed Daphne (python3-daphne):
the same requests to both, the lines compared field by field (dates aside, and
the client's ephemeral port). Log parsers written for Daphne keep working."""

import asyncio
import re
import time

import pytest
import websockets

from harness import bayleaf_only, free_port, wait_until

from .support import APP, DEPLOY_APPS, Daphne, http_request, run, ws_connect

pytestmark = bayleaf_only

# daphne/access.py: '%s %s %s [%s] "%s" %s %s' % (host, ident, user, date, request, status, length)
LINE = re.compile(r'^(?P<host>\S+) (?P<ident>\S+) (?P<user>\S+) \[(?P<date>[^\]]+)\] "(?P<request>[^"]*)" '
                  r'(?P<status>\S+) (?P<size>\S+)$')

HTTP_STEPS = [
    # (method, target, headers, body)
    ("GET", "/hello", {}, None),
    ("GET", "/hello?x=1&y=%2F", {}, None),               # the raw target, query included
    ("GET", "/a%20b/%C3%A9?q=%20&r=%2B", {}, None),      # not decoded
    ("HEAD", "/hello", {}, None),                         # no body sent: "-"
    ("GET", "/empty", {}, None),                          # 204: "-"
    ("GET", "/missing", {}, None),                        # the app's 404, with its size
    ("POST", "/body", {"Content-Type": "application/octet-stream"}, b"z" * 5000),
    ("GET", "/stream?n=7&size=1000", {}, None),           # chunked: the body's size
    ("GET", "/hello", {"X-Forwarded-For": "203.0.113.9"}, None),               # "203.0.113.9:0"
    ("GET", "/hello", {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Port": "4444"}, None),
    ("GET", "/hello", {"X-Forwarded-For": "2001:db8::9"}, None),
    ("PUT", "/body?x", {}, b"abc"),
    ("DELETE", "/missing", {}, None),
]


async def ws_steps(port):
    """WebSockets: accepted then closed by the client, refused, and one via a proxy."""
    async with ws_connect(port, "/ws/echo?token=abc") as ws:  # logged without the query
        await ws.send("x")
        assert await asyncio.wait_for(ws.recv(), 5) == "x"
    yield
    try:
        async with ws_connect(port, "/ws/reject"):
            raise AssertionError("/ws/reject was accepted")
    except websockets.InvalidStatusCode as e:
        assert e.status_code == 403
    yield
    async with ws_connect(port, "/ws/%41b", headers={"X-Forwarded-For": "203.0.113.10"}) as ws:
        await ws.send("y")
        assert await asyncio.wait_for(ws.recv(), 5) == "y"
    yield


def parse(path):
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    out = []
    for line in text.splitlines():
        m = LINE.match(line)
        assert m, f"not an access log line: {line!r}"
        out.append(m.groupdict())
    return out


def drive(port, log):
    """Every step, each waiting for its log lines so the order is fixed."""
    seen = 0
    for method, target, headers, body in HTTP_STEPS:
        http_request(port, method, target, body=body, headers=headers)
        seen += 1
        wait_until(lambda: len(parse(log)) >= seen, 30, message=f"a log line for {method} {target}")

    async def ws_all():
        nonlocal seen
        steps = ws_steps(port)
        async for _ in steps:
            # connecting + connect/reject (+ disconnect): wait for the lines to settle
            before = seen
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                lines = parse(log)
                if len(lines) > before and lines[-1]["request"].split()[0] in ("WSDISCONNECT", "WSREJECT"):
                    break
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.2)  # a WSDISCONNECT after a WSREJECT (Daphne)
            seen = len(parse(log))

    run(ws_all())
    return parse(log)


def normalise(line):
    host = re.sub(r"^127\.0\.0\.1:\d+$", "127.0.0.1:PORT", line["host"])
    return {**line, "host": host, "date": None}


def test_access_log_matches_daphne(start_server, tmp_path):
    bl_log, dp_log = tmp_path / "bayleaf.log", tmp_path / "daphne.log"
    server = start_server(APP, "--proxy-headers", "--access-log", str(bl_log), cwd=DEPLOY_APPS)
    ours = drive(server.port, bl_log)
    daphne = Daphne(tmp_path, free_port(), ["--proxy-headers", "--access-log", str(dp_log)])
    try:
        theirs = drive(daphne.port, dp_log)
    finally:
        daphne.stop()

    for line in ours + theirs:
        time.strptime(line["date"], "%d/%b/%Y:%H:%M:%S")
        assert (line["ident"], line["user"]) == ("-", "-"), line

    a, b = [normalise(l) for l in ours], [normalise(l) for l in theirs]
    assert len(a) == len(b), "\n".join(["bayleaf:"] + [str(l) for l in ours] + ["daphne:"] + [str(l) for l in theirs])
    for mine, ref in zip(a, b):
        for field in ("host", "ident", "user", "request", "status", "size"):
            assert mine[field] == ref[field], f"{field}: bayleaf {mine} != daphne {ref}"
    # and what they are
    requests = [l["request"] for l in a]
    assert "GET /a%20b/%C3%A9?q=%20&r=%2B" in requests
    assert requests[-3:] == ["WSCONNECTING /ws/%41b", "WSCONNECT /ws/%41b", "WSDISCONNECT /ws/%41b"]
    assert [l["host"] for l in a[8:11]] == ["203.0.113.9:0", "203.0.113.9:4444", "2001:db8::9:0"]


@pytest.mark.parametrize("forwarded", ["6.6.6.6, 203.0.113.9"])
def test_forwarded_for_lists_differ_from_daphne_on_purpose(start_server, tmp_path, forwarded):
    """Daphne takes the left-most X-Forwarded-For entry, which the client
    controls; Bayleaf the right-most one its trusted proxies did not add."""
    log = tmp_path / "bayleaf.log"
    server = start_server(APP, "--proxy-headers", "--access-log", str(log), cwd=DEPLOY_APPS)
    http_request(server.port, "GET", "/hello", headers={"X-Forwarded-For": forwarded})
    lines = wait_until(lambda: parse(log), 30, message="a log line")
    assert lines[0]["host"] == "203.0.113.9:0"
