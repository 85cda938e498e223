"""send() holds its own reference to every value it reads from a message
while the app's code can run (gateway/py/py_exchange.c, py_http.c, py_ws.c): a __bool__, an
__index__ or a dict subclass that drops the value it was called for. Before,
the body, the close reason and the subprotocol were borrowed: freed memory was
read (ASan: heap-use-after-free; a release build sent whatever reused it).
See apps/capi_app.py."""

import subprocess

import pytest

from harness import bayleaf_only, free_port, server_command, server_env
from ws.ws_support import OP_CLOSE, OP_TEXT, open_ws

APP = "capi_app:app"

pytestmark = bayleaf_only


@pytest.fixture
def capi_server(start_server):
    return start_server(APP)


@pytest.mark.parametrize("n", [400, 5000])
def test_body_dropped_by_more_body_bool(capi_server, n):
    with capi_server.connect() as c:
        r = c.request("GET", f"/body-dropped?n={n}")
    assert r.status == 200
    assert r.body == b"A" * n, r.body[:80]
    capi_server.assert_serving("/body-dropped")


def test_close_reason_dropped_by_code_index(capi_server):
    with open_ws(capi_server, "/close-reason-dropped") as ws:
        f = ws.expect_close()
    assert f.opcode == OP_CLOSE
    assert (f.close_code, f.close_reason) == (4000, b"r" * 100), f
    capi_server.assert_serving("/body-dropped")


def test_subprotocol_dropped_while_the_message_is_copied(capi_server):
    sub = "chat-" + "x" * 40
    with open_ws(capi_server, "/subprotocol-dropped", headers=[("Sec-WebSocket-Protocol", sub)]) as ws:
        assert ws.response.header("sec-websocket-protocol") == sub, ws.response
    capi_server.assert_serving("/body-dropped")


@pytest.mark.parametrize("result, status, error", [
    ("'done'", 1, "TypeError"),
    ("300", 1, "returned 300, not an exit status"),
    ("3", 3, None),
])
def test_runner_result_is_checked(tmp_path, result, status, error):
    """py_embed.c takes the exit status from bayleaf.runner.main(): a result that
    is not an int in 0..255 is a printed error and status 1 (before: PyLong_AsLong
    unchecked, exit 255 with the error left pending, or a status cut to 8 bits)."""
    pkg = tmp_path / "pyapp" / "bayleaf"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "runner.py").write_text(f"def main(options):\n    return {result}\n")
    env = server_env({"BAYLEAF_PYAPP": str(tmp_path / "pyapp")})
    r = subprocess.run(server_command("unused:app", port=free_port()), env=env, cwd=tmp_path,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == status, (r.returncode, r.stderr[-2000:])
    if error:
        assert error in r.stderr, r.stderr[-2000:]
    assert "runtime error" not in r.stderr and "Sanitizer" not in r.stderr, r.stderr[-3000:]


def test_start_sent_from_inside_start(capi_server):
    """The headers iterable sends its own start: that one stands, the outer
    send() raises (before: the inner head was overwritten and leaked)."""
    with capi_server.connect() as c:
        r = c.request("GET", "/start-reentered")
    assert (r.status, r.header("x-inner"), r.body) == (201, "1", b"RuntimeError"), r
    capi_server.assert_serving("/body-dropped")


def test_accept_sent_from_inside_accept(capi_server):
    """The headers iterable accepts: one 101, the outer accept raises (before:
    two accept events for one handshake)."""
    with open_ws(capi_server, "/accept-reentered") as ws:
        assert ws.recv_message() == (OP_TEXT, b"RuntimeError")
        ws.send_close(1000)
        assert ws.expect_close().close_code == 1000
    capi_server.assert_serving("/body-dropped")
    assert "Exception inside application" not in capi_server.stderr, capi_server.stderr[-2000:]


def test_close_sent_from_inside_close(capi_server):
    """The close code's __index__ closes first: one close frame (4001), the
    outer close raises ClientDisconnected (before: a second close event)."""
    with open_ws(capi_server, "/close-reentered") as ws:
        f = ws.expect_close()
        assert f.close_code == 4001, f
        ws.send_close(4001)
        assert ws.wait_closed(), "no EOF after the closing handshake"
    capi_server.assert_serving("/body-dropped")
    assert "Exception inside application" not in capi_server.stderr, capi_server.stderr[-2000:]
