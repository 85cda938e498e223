"""HTTP/1.1 hardening (RFC 9110, RFC 9112): request smuggling shapes and
malformed framing are refused with 400 and the connection is closed (nothing
after the error is read as another request); size limits answer 414/431;
deadlines cut off idle and slow clients (keep-alive, slowloris, WebSocket
handshake); --limit-concurrency answers 503 beyond N.

A gap found later is recorded here as an xfail(strict=True) test with its
reason, so it turns into a failure the day it is fixed; none is open."""

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from harness import BAYLEAF, free_port, server_env

APPS = Path(__file__).resolve().parent / "apps"
APP = "conf_app:app"

# --------------------------------------------------------------------------
# a raw client
# --------------------------------------------------------------------------


def raw(server, timeout=5.0):
    s = socket.create_connection((server.host, server.port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_all(sock, timeout=5.0):
    """Everything until EOF; raises TimeoutError if the server keeps the
    connection open past timeout."""
    sock.settimeout(timeout)
    out = b""
    deadline = time.monotonic() + timeout
    while True:
        try:
            data = sock.recv(65536)
        except socket.timeout:
            raise TimeoutError(f"connection still open after {timeout}s; got {out[:300]!r}")
        except ConnectionResetError:
            return out
        if not data:
            return out
        out += data
        if time.monotonic() > deadline:
            raise TimeoutError(f"connection still open after {timeout}s; got {out[:300]!r}")


def statuses(data):
    """Status codes of the responses in data, walking heads and
    Content-Length bodies (what bayleaf and the app send here)."""
    out = []
    while data.startswith(b"HTTP/1."):
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.split(b"\r\n")
        out.append(int(lines[0][9:12]))
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        data = rest[length:]
    return out


def exchange(server, data, timeout=5.0):
    """Send data, read until the server closes; the list of statuses."""
    with raw(server, timeout) as s:
        s.sendall(data)
        return statuses(read_all(s, timeout))


def collect(server, data, idle=1.0):
    """Send data; the statuses answered before EOF or `idle` seconds of silence
    (for requests the server wrongly keeps the connection open after)."""
    out = b""
    with raw(server) as s:
        s.sendall(data)
        s.settimeout(idle)
        while True:
            try:
                chunk = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not chunk:
                break
            out += chunk
    return statuses(out)


def crlf(text):
    return text.replace("\n", "\r\n").encode("latin-1")


@pytest.fixture
def http_server(module_server):
    return module_server()


# --------------------------------------------------------------------------
# smuggling shapes and malformed framing: 400, then close
# --------------------------------------------------------------------------

# Each request is followed by a second, valid one: it must never be answered
# (the first one's framing is broken, so nothing after it can be trusted).
NEXT = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"

SMUGGLING = {
    "cl-and-te": crlf("POST /echo HTTP/1.1\nHost: x\nContent-Length: 6\nTransfer-Encoding: chunked\n\n0\n\n"),
    "te-and-cl": crlf("POST /echo HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\nContent-Length: 6\n\n0\n\n"),
    "two-cl-differ": crlf("POST /echo HTTP/1.1\nHost: x\nContent-Length: 3\nContent-Length: 4\n\nabcd"),
    "two-cl-same": crlf("POST /echo HTTP/1.1\nHost: x\nContent-Length: 3\nContent-Length: 3\n\nabc"),
    "cl-list": crlf("POST /echo HTTP/1.1\nHost: x\nContent-Length: 3, 3\n\nabc"),
    "cl-plus": crlf("POST /echo HTTP/1.1\nHost: x\nContent-Length: +3\n\nabc"),
    "cl-negative": crlf("POST /echo HTTP/1.1\nHost: x\nContent-Length: -1\n\nabc"),
    "cl-hex": crlf("POST /echo HTTP/1.1\nHost: x\nContent-Length: 0x3\n\nabc"),
    "cl-overflow": crlf("POST /echo HTTP/1.1\nHost: x\nContent-Length: 99999999999999999999\n\nabc"),
    "cl-space-inside": crlf("POST /echo HTTP/1.1\nHost: x\nContent-Length: 1 2\n\nabc"),
    "te-chunked-not-last": crlf("POST /echo HTTP/1.1\nHost: x\nTransfer-Encoding: chunked, gzip\n\n0\n\n"),
    "te-unknown": crlf("POST /echo HTTP/1.1\nHost: x\nTransfer-Encoding: gzip\n\nabc"),
    "te-xchunked": crlf("POST /echo HTTP/1.1\nHost: x\nTransfer-Encoding: xchunked\n\n0\n\n"),
    "te-twice": crlf("POST /echo HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\nTransfer-Encoding: chunked\n\n0\n\n"),
    "te-space-before-colon": crlf("POST /echo HTTP/1.1\nHost: x\nTransfer-Encoding : chunked\n\n0\n\n"),
    # RFC 9112 6.3: a Transfer-Encoding naming no coding is 400, whether the
    # body would then be read by Content-Length or as the next request.
    "te-empty-with-cl": crlf("POST /echo HTTP/1.1\nHost: x\nTransfer-Encoding:\nContent-Length: 5\n\n0\n\n\n"),
    "te-empty": crlf("POST /echo HTTP/1.1\nHost: x\nTransfer-Encoding: \n\n"),
    "te-only-commas": crlf("POST /echo HTTP/1.1\nHost: x\nTransfer-Encoding: , ,\n\n"),
    "te-vertical-tab": b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \x0bchunked\r\n\r\n0\r\n\r\n",
    "chunk-size-garbage": crlf("POST /echo HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\n\nzz\nabc\n0\n\n"),
    "chunk-size-negative": crlf("POST /echo HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\n\n-1\nabc\n0\n\n"),
    "chunk-size-0x": crlf("POST /echo HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\n\n0x3\nabc\n0\n\n"),
    "chunk-size-leading-space": crlf("POST /echo HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\n\n 3\nabc\n0\n\n"),
    "chunk-size-trailing-space": crlf("POST /echo HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\n\n3 \nabc\n0\n\n"),
    "chunk-size-overflow": crlf("POST /echo HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\n\n"
                                "ffffffffffffffffff\nabc\n0\n\n"),
    "chunk-data-too-long": crlf("POST /echo HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\n\n3\nabcX\n0\n\n"),
    "chunk-ext-ctl": b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;a=\x01\r\nabc\r\n0\r\n\r\n",
    "chunk-bare-lf": b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n",
    "obs-fold": crlf("GET / HTTP/1.1\nHost: x\nX-A: a\n b\n\n"),
    "obs-fold-tab": crlf("GET / HTTP/1.1\nHost: x\nX-A: a\n\tb\n\n"),
    "obs-fold-first-header": crlf("GET / HTTP/1.1\n Host: x\n\n"),
    "bare-lf-every-line": b"GET / HTTP/1.1\nHost: x\n\n",
    "bare-lf-header-line": b"GET / HTTP/1.1\r\nHost: x\nX: y\r\n\r\n",
    "bare-lf-ends-head": b"GET / HTTP/1.1\r\nHost: x\r\n\n",
    "bare-lf-ends-head-no-fields": b"GET / HTTP/1.1\r\n\n",
    "bare-cr-in-value": b"GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n",
    "nul-in-value": b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n",
    "ctl-in-value": b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n",
    "del-in-value": b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x7fb\r\n\r\n",
    "nul-in-name": b"GET / HTTP/1.1\r\nHost: x\r\nX\x00Y: a\r\n\r\n",
    "space-in-name": b"GET / HTTP/1.1\r\nHost: x\r\nX Y: a\r\n\r\n",
    "space-before-colon": b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
    "nul-in-target": b"GET /a\x00b HTTP/1.1\r\nHost: x\r\n\r\n",
    "space-in-target": b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
    "del-in-target": b"GET /a\x7fb HTTP/1.1\r\nHost: x\r\n\r\n",
    "ctl-in-method": b"G\x01T / HTTP/1.1\r\nHost: x\r\n\r\n",
    "lowercase-version": b"GET / http/1.1\r\nHost: x\r\n\r\n",
    "version-1.2": b"GET / HTTP/1.2\r\nHost: x\r\n\r\n",
    "http-0.9": b"GET /\r\n\r\n",
    "authority-form-get": b"GET example.com:80 HTTP/1.1\r\nHost: x\r\n\r\n",
    "expect-unknown": crlf("GET / HTTP/1.1\nHost: x\nExpect: 200-ok\n\n"),
}
EXPECTED = {"version-1.2": (400, 505), "expect-unknown": (417,)}


@pytest.mark.parametrize("data", SMUGGLING.values(), ids=SMUGGLING.keys())
def test_malformed_request_is_refused_and_closed(http_server, request, data):
    got = exchange(http_server, data + NEXT)
    want = EXPECTED.get(request.node.callspec.id, (400,))
    assert len(got) == 1 and got[0] in want, f"responses {got}, expected one of {want} then close"


@pytest.mark.parametrize("parts", [
    [b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a", b"\r\n ", b"b\r\n\r\n"],
    [b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a", b"\r\n", b" b\r\n\r\n"],
    [b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a", b"\r", b"\n", b" ", b"b\r\n\r\n"],
], ids=["cut-before-crlf-sp", "cut-before-sp", "byte-by-byte"])
def test_obs_fold_split_across_writes_is_refused(http_server, parts):
    """The parser tells a value cut by TCP from a folded one however the
    bytes arrive."""
    with raw(http_server) as s:
        for p in parts:
            s.sendall(p)
            time.sleep(0.05)
        assert statuses(read_all(s)) == [400]


def _two_writes(server, data, cut):
    with raw(server) as s:
        s.sendall(data[:cut])
        time.sleep(0.02)
        s.sendall(data[cut:])
        return statuses(read_all(s))


def test_head_split_anywhere_is_the_same_request(http_server):
    """A valid head cut at every position, in two writes: always one 200."""
    data = b"GET /hello HTTP/1.1\r\nHost: x\r\nX-A: a b\r\nConnection: close\r\n\r\n"
    for cut in range(1, len(data)):
        assert _two_writes(http_server, data, cut) == [200], f"cut at {cut}: {data[:cut]!r}"


def test_bare_lf_ending_the_head_split_anywhere(http_server):
    data = b"GET /hello HTTP/1.1\r\nHost: x\r\n\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
    for cut in range(len(data) - 40, len(data) - 30):
        assert _two_writes(http_server, data, cut) == [400], f"cut at {cut}: {data[:cut]!r}"


# Chunk extensions and trailers are dropped, within bounds (4 KiB of
# extensions a chunk; trailers within the head's limits): beyond them the
# request ends with the error status, or, once the app has the request, the
# connection closes. Never is the request after it answered.
UNBOUNDED = {
    "chunk-ext-too-long": crlf("POST /echo HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\n\n"
                               "3;a=" + "e" * 5000 + "\nabc\n0\n\n"),
    "trailer-too-long": crlf("POST /echo HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\n\n"
                             "3\nabc\n0\nX-T: " + "t" * 70000 + "\n\n"),
}
UNBOUNDED_STATUS = {"chunk-ext-too-long": 400, "trailer-too-long": 431}


@pytest.mark.parametrize("name", UNBOUNDED.keys())
def test_chunk_extensions_and_trailers_are_bounded(http_server, name):
    got = exchange(http_server, UNBOUNDED[name] + NEXT, timeout=10)
    assert got in ([], [UNBOUNDED_STATUS[name]]), f"responses {got}"


def test_smuggled_request_in_a_body_is_not_answered(http_server):
    """CL+TE with a request hidden in the body: one 400, never a 200 for it."""
    hidden = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
    data = crlf("POST /echo HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\nContent-Length: 4\n\n0\n\n") + hidden
    assert exchange(http_server, data) == [400]


FIXED_GAPS = {
    "bare-lf-ends-request-line": b"GET / HTTP/1.1\nHost: x\r\n\r\n",
    "empty-header-name": b"GET / HTTP/1.1\r\nHost: x\r\n: value\r\n\r\n",
    "two-hosts": b"GET /scope HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
}


@pytest.mark.parametrize("data", FIXED_GAPS.values(), ids=FIXED_GAPS.keys())
def test_refused_head_shapes(http_server, data):
    assert collect(http_server, data + NEXT) == [400]


# --------------------------------------------------------------------------
# Host (RFC 9112 3.2): HTTP/1.1 needs exactly one; HTTP/1.0 may omit it; an
# empty value is allowed (the target has no authority)
# --------------------------------------------------------------------------

NO_HOST = {
    "get": b"GET /scope HTTP/1.1\r\n\r\n",
    "keep-alive": b"GET /scope HTTP/1.1\r\nConnection: keep-alive\r\n\r\n",
    "post-body": b"POST /echo HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
    "options-star": b"OPTIONS * HTTP/1.1\r\n\r\n",
    "absolute-form": b"GET http://example.com/scope HTTP/1.1\r\n\r\n",
    "look-alike-names": b"GET /scope HTTP/1.1\r\nX-Host: x\r\nHosts: x\r\n\r\n",
    "websocket": (b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"),
}


@pytest.mark.parametrize("data", NO_HOST.values(), ids=NO_HOST.keys())
def test_http11_without_host_is_400_and_closed(http_server, data):
    """400, then the server closes: the valid request after it is never
    answered (exchange() reads to EOF and fails if the connection stays)."""
    assert exchange(http_server, data + NEXT) == [400]
    assert exchange(http_server, b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") == [200]


def _scope(server, data):
    with raw(server) as s:
        s.sendall(data)
        out = read_all(s)
    assert statuses(out) == [200], out[:300]
    return json.loads(out.split(b"\r\n\r\n", 1)[1])


def test_http10_without_host_is_served(http_server):
    scope = _scope(http_server, b"GET /scope?a=1 HTTP/1.0\r\n\r\n")
    assert scope["http_version"] == "1.0" and scope["path"] == "/scope" and scope["query_string"] == "a=1"
    assert [k for k, _ in scope["headers"]] == []
    # and kept alive on request: two answers, the second without Host either
    data = b"GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /hello HTTP/1.0\r\n\r\n"
    assert exchange(http_server, data) == [200, 200]


@pytest.mark.parametrize("value", [b"", b" ", b" \t "], ids=["empty", "space", "ows"])
def test_http11_empty_host_is_served(http_server, value):
    scope = _scope(http_server, b"GET /scope HTTP/1.1\r\nHost:" + value + b"\r\nConnection: close\r\n\r\n")
    assert scope["http_version"] == "1.1" and scope["path"] == "/scope"
    assert ["host", ""] in scope["headers"], scope["headers"]


def test_http11_empty_host_keeps_the_connection(http_server):
    data = b"GET /hello HTTP/1.1\r\nHost:\r\n\r\nGET /hello HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n"
    assert exchange(http_server, data) == [200, 200]


def test_http11_without_host_after_a_good_request(http_server):
    """On a kept-alive connection: the first request is answered, the one
    without Host gets 400 and the connection closes."""
    data = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n" + NO_HOST["get"] + NEXT
    assert exchange(http_server, data) == [200, 400]


def test_transfer_encoding_in_http10_closes(http_server):
    data = (b"POST /echo HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n0\r\n\r\n")
    got = collect(http_server, data + NEXT)
    assert len(got) == 1, f"responses {got}: the connection was reused"


def test_absolute_form_host_wins(http_server):
    data = b"GET http://evil.example/scope?q=1 HTTP/1.1\r\nHost: good.example\r\nConnection: close\r\n\r\n"
    with raw(http_server) as s:
        s.sendall(data)
        out = read_all(s)
    if statuses(out) == [400]:
        return
    scope = json.loads(out.split(b"\r\n\r\n", 1)[1])
    hosts = [v for k, v in scope["headers"] if k == "host"]
    assert hosts == ["evil.example"], scope


def test_absolute_form_path_and_query(http_server):
    data = b"GET http://example.com:8080/scope?a=1 HTTP/1.1\r\nHost: example.com:8080\r\nConnection: close\r\n\r\n"
    with raw(http_server) as s:
        s.sendall(data)
        out = read_all(s)
    assert statuses(out) == [200]
    scope = json.loads(out.split(b"\r\n\r\n", 1)[1])
    assert scope["path"] == "/scope" and scope["query_string"] == "a=1"


def test_server_survives_the_malformed_set(http_server):
    assert exchange(http_server, b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") == [200]
    assert http_server.alive()


def test_empty_url_span_is_clean_under_ubsan(tmp_path):
    """Run apart from the harness so a sanitizer report fails this test alone."""
    port = free_port()
    err = tmp_path / "stderr.txt"
    with open(err, "wb") as e:
        proc = subprocess.Popen([BAYLEAF, "-v", "0", "-p", str(port), APP], cwd=str(APPS), env=server_env(),
                                stdout=subprocess.DEVNULL, stderr=e, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "server did not start"
                time.sleep(0.05)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"CONNECT \r\n\r\n")
            s.settimeout(5)
            try:
                answer = s.recv(1000)
            except OSError:
                answer = b""
        # a fixed window for a negative check (a slow machine only makes it pass)
        time.sleep(0.2)
        alive = proc.poll() is None
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
    text = err.read_text(errors="replace")
    assert alive, "server died on 'CONNECT \\r\\n\\r\\n'\n" + text[-2000:]
    assert "runtime error" not in text, text[-2000:]
    assert answer.startswith(b"HTTP/1.1 400 "), answer


# --------------------------------------------------------------------------
# limits
# --------------------------------------------------------------------------

@pytest.mark.parametrize("n,want", [(16 * 1024 - 1, 200), (16 * 1024 + 1, 414), (1 << 20, 414)],
                         ids=["under", "over", "1MiB"])
def test_request_target_limit(http_server, n, want):
    target = b"/" + b"a" * (n - 1)
    got = exchange(http_server, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert got == [want]


@pytest.mark.parametrize("count,want", [(128, 200), (129, 431), (10000, 431)])
def test_header_count_limit(http_server, count, want):
    headers = b"Host: x\r\nConnection: close\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(count - 2))
    assert exchange(http_server, b"GET / HTTP/1.1\r\n" + headers + b"\r\n") == [want]


@pytest.mark.parametrize("shape", ["one-huge-value", "many-1k-headers", "huge-name"])
def test_header_block_limit(http_server, shape):
    if shape == "one-huge-value":
        fields = b"X: " + b"v" * 70000 + b"\r\n"
    elif shape == "many-1k-headers":
        fields = b"".join(b"X-%d: %s\r\n" % (i, b"v" * 1000) for i in range(70))
    else:
        fields = b"X" * 70000 + b": v\r\n"
    assert exchange(http_server, b"GET / HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n") == [431]


def test_header_block_limit_fails_early(http_server):
    """431 once the limit is passed, without waiting for the end of the head."""
    with raw(http_server) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"v" * 70000)
        assert statuses(read_all(s)) == [431]


def test_limit_concurrency(fresh_server):
    """--limit-concurrency 2: a third connection's request gets a 503 (or the
    connection is refused outright) while two are held."""
    srv = fresh_server("--limit-concurrency", "2")
    held = [raw(srv) for _ in range(2)]
    try:
        for s in held:
            s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            s.settimeout(5)
            assert s.recv(4096).startswith(b"HTTP/1.1 200")
        got = collect(srv, b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        assert got in ([503], []), f"third connection got {got}"
    finally:
        for s in held:
            s.close()


# --------------------------------------------------------------------------
# deadlines
# --------------------------------------------------------------------------

@pytest.fixture
def timed_server(module_server):
    return module_server("--keepalive-timeout", "1", "--header-timeout", "1",
                         "--websocket_connect_timeout", "1")


def _closed_within(sock, low, high):
    """Closed not before `low` (the timeout, less timer granularity) and by
    `high`: generous for a loaded, sanitized run, yet below the defaults
    (75 s keep-alive, 30 s head, 5 s WebSocket connect) the flags replace."""
    t0 = time.monotonic()
    data = read_all(sock, timeout=high + 2)
    took = time.monotonic() - t0
    assert low <= took <= high, f"closed after {took:.2f}s, expected {low}..{high}s"
    return data


def test_keepalive_idle_connection_is_closed(timed_server):
    with raw(timed_server) as s:
        s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(5)
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
        assert _closed_within(s, 0.5, 15.0) == b""


def test_keepalive_timer_restarts_per_request(timed_server):
    with raw(timed_server) as s:
        s.settimeout(5)
        # 2 s in all, past the 1 s timeout; each gap 0.4 s, well under it even
        # when a slow machine stretches it
        for _ in range(5):
            s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            assert s.recv(4096).startswith(b"HTTP/1.1 200")
            time.sleep(0.4)
        assert _closed_within(s, 0.1, 15.0) == b""


def test_silent_connection_is_closed(timed_server):
    """Connect and send nothing: dropped after the header timeout, no response."""
    with raw(timed_server) as s:
        assert _closed_within(s, 0.5, 15.0) == b""


@pytest.mark.parametrize("what", ["head", "second-request", "upgrade-request"])
def test_slowloris_is_cut_off(timed_server, what):
    """A client dribbling a head one byte every 0.2 s is cut off by the total
    header deadline (1 s), not kept alive by its progress."""
    with raw(timed_server) as s:
        s.settimeout(5)
        if what == "second-request":
            s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            assert s.recv(4096).startswith(b"HTTP/1.1 200")
        head = b"GET /hello HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"s" * 200
        if what == "upgrade-request":
            head = (b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + b"A" * 200)
        t0 = time.monotonic()
        got = b""
        for byte in head:
            try:
                s.sendall(bytes([byte]))
            except OSError:
                break
            s.settimeout(0.2)
            try:
                data = s.recv(4096)
                if not data:
                    break
                got += data
            except socket.timeout:
                pass
            except ConnectionResetError:
                break
            # the whole head takes ~45 s to dribble: a timer reset by progress
            # would not cut it before then
            if time.monotonic() - t0 > 20:
                pytest.fail("still connected after 20 s of dribbling")
        took = time.monotonic() - t0
    assert took < 15.0, f"cut off after {took:.1f}s"
    assert statuses(got) in ([], [408]), got[:200]


def test_websocket_never_accepted_is_refused(timed_server):
    """--websocket_connect_timeout 1: an app that never answers the handshake
    gets the client a 403 after about a second."""
    with raw(timed_server) as s:
        s.sendall(b"GET /never HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
        out = _closed_within(s, 0.5, 4.5)
    assert statuses(out) == [403]


def test_deadlines_left_the_server_serving(timed_server):
    assert exchange(timed_server, b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") == [200]
    assert timed_server.alive()
    assert os.path.exists(f"/proc/{timed_server.pid}")
