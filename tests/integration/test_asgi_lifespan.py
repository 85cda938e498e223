"""Lifespan protocol: startup/shutdown, state, failures, --lifespan off/auto."""

import signal

import pytest

from harness import IS_BAYLEAF, read_json_lines, skip_server, wait_until

pytestmark = skip_server("daphne", reason="daphne does not implement lifespan")


def names(path):
    return [e["event"] for e in read_json_lines(path)]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_startup_state_and_shutdown(start_server, tmp_path, sig):
    out = tmp_path / "lifespan.jsonl"
    server = start_server("lifespan_apps:full", env={"LIFESPAN_OUT": str(out)})
    info = server.get_json("/state")
    ev = names(out)
    assert ev[:2] == ["lifespan-scope", "startup"], ev
    assert "http" in ev and ev.index("http") > ev.index("startup"), "a request was served before startup completed"
    first = read_json_lines(out)[0]
    assert first["asgi"]["version"] == "3.0"
    if IS_BAYLEAF:  # uvicorn 0.17 predates lifespan state
        assert first["has_state"], "lifespan scope has no 'state' dict"
        assert info["has_state"], "http scope has no 'state'"
        assert info["state"].get("token") == "startup-token-42", info
    rc, killed = server.stop(sig)
    assert not killed, "server did not exit within 5 s of " + sig.name + "\n" + server.describe()
    assert rc == 0, server.describe()
    assert names(out)[-1] == "shutdown", names(out)


def test_state_is_copied_per_request(start_server, tmp_path):
    """Each request gets the startup state (a shallow copy per the spec)."""
    if not IS_BAYLEAF:
        pytest.skip("uvicorn 0.17 has no lifespan state")
    out = tmp_path / "lifespan.jsonl"
    server = start_server("lifespan_apps:full", env={"LIFESPAN_OUT": str(out)})
    for i in range(3):
        info = server.get_json(f"/state/{i}")
        assert info["state"] == {"token": "startup-token-42"}, "state changes of one request leaked"


def test_startup_failed_exits_nonzero_with_message(start_server, tmp_path):
    server = start_server("lifespan_apps:startup_fails", wait=False)
    rc = server.wait_exit(10)
    assert rc is not None, "server still running after lifespan.startup.failed\n" + server.describe()
    assert rc != 0
    where = server.stderr if IS_BAYLEAF else server.stderr + server.stdout
    assert "database unreachable: xyzzy-7" in where, server.describe()


def test_lifespan_off_sends_no_lifespan_scope(start_server, tmp_path):
    out = tmp_path / "scopes.jsonl"
    server = start_server("lifespan_apps:recorder", "--lifespan", "off", env={"LIFESPAN_OUT": str(out)})
    status, _, body = server.get("/x")
    assert status == 200 and body == b"recorded"
    rc, killed = server.stop()
    assert rc == 0 and not killed, server.describe()
    types = [e["type"] for e in read_json_lines(out)]
    assert types == ["http"], types


def test_lifespan_on_sends_lifespan_scope(start_server, tmp_path):
    out = tmp_path / "scopes.jsonl"
    server = start_server("lifespan_apps:recorder", "--lifespan", "on", env={"LIFESPAN_OUT": str(out)})
    server.get("/x")
    types = [e["type"] for e in read_json_lines(out)]
    assert types[0] == "lifespan" and "http" in types, types
    rc, killed = server.stop()
    assert rc == 0 and not killed


def test_lifespan_auto_app_raises_serving_goes_on(start_server, tmp_path):
    out = tmp_path / "events.jsonl"
    server = start_server("lifespan_apps:no_lifespan", env={"LIFESPAN_OUT": str(out)})
    status, _, body = server.get("/")
    assert status == 200 and body == b"served without lifespan"
    wait_until(lambda: read_json_lines(out), 30, message="the app to be called for lifespan")
    assert read_json_lines(out)[0] == {"event": "raised", "type": "lifespan"}
    server.assert_serving("/")
    rc, killed = server.stop()
    assert rc == 0 and not killed, server.describe()


def test_startup_complete_before_listening_or_serving(start_server, tmp_path):
    """A request sent immediately is only answered after startup completed."""
    out = tmp_path / "lifespan.jsonl"
    server = start_server("lifespan_apps:full", env={"LIFESPAN_OUT": str(out)})
    server.get_json("/first")
    ev = names(out)
    assert ev.index("startup") < ev.index("http")
