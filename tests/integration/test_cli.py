"""Command line: --help/--version, bad options, bad app specs, port in use, cwd import."""

import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from harness import (APPS_DIR, IS_BAYLEAF, IS_DAPHNE, bayleaf_only, free_port, server_command,
                     server_env, skip_server)


def run(args, app_spec=None, port=None, cwd=APPS_DIR, timeout=10, translate=True):
    """Run the server command to completion (killed after `timeout`): (rc, stdout, stderr)."""
    cmd = server_command(app_spec, args, port=port, translate=translate)
    proc = subprocess.Popen(cmd, cwd=str(cwd), env=server_env(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=5)
        pytest.fail(f"{cmd} still running after {timeout}s (expected it to exit)\nstderr: {err.decode()[-2000:]}")
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def nonempty_lines(text):
    return [l for l in text.splitlines() if l.strip()]


def assert_one_line_error(rc, err, *needles):
    assert rc != 0, "expected a non-zero exit status"
    if not IS_DAPHNE:  # daphne prints tracebacks for these
        assert "Traceback" not in err, err
    if IS_BAYLEAF:
        lines = nonempty_lines(err)
        assert len(lines) == 1, f"expected exactly one line on stderr, got {len(lines)}:\n{err}"
    for n in needles:
        assert n.lower() in err.lower(), f"{n!r} not mentioned in stderr: {err!r}"


def test_help(tmp_path):
    rc, out, err = run(["--help"], translate=False)
    assert rc == 0, err
    text = out + err
    assert "--port" in text
    if IS_BAYLEAF:
        for opt in ["--bind", "--unix-socket", "--fd", "--root-path", "--http-timeout", "--verbosity",
                    "--access-log", "--server-name", "--no-server-name", "--lifespan", "--loop", "--version",
                    "--send-timeout", "--body-timeout", "--gc-threshold"]:
            assert opt in text, f"{opt} missing from --help"


PYTHON_VERSION_RE = re.compile(r"^Python %d\.%d\.\d+ \(built with %d\.%d\.\d+\), /\S+, /\S+libpython"
                               % (sys.version_info[:2] * 2))


@skip_server("daphne", reason="daphne has no --version")
def test_version():
    rc, out, err = run(["--version"], translate=False)
    assert rc == 0, err
    text = out + err
    assert re.search(r"\d+\.\d+", text), text
    if IS_BAYLEAF:
        # bayleaf VERSION, then the embedded Python and each library, one line each
        lines = nonempty_lines(text)
        assert lines[0].startswith("bayleaf "), text
        assert [l.split()[0] for l in lines[1:]] == ["Python", "libuv", "wslay", "llhttp",
                                                     "zlib", "OpenSSL"], text
        assert PYTHON_VERSION_RE.search(lines[1]), text


def test_unknown_flag():
    rc, out, err = run(["--no-such-flag"], "echo:app", port=free_port(), translate=False)
    assert_one_line_error(rc, err, "--no-such-flag" if not IS_DAPHNE else "")


@bayleaf_only
@pytest.mark.parametrize("args", [
    ["-p", "notaport"],
    ["-p", "70000"],
    ["--lifespan", "sometimes"],
    ["--loop", "nosuchloop"],
    ["-t", "soon"],
    ["-v", "loud"],
    ["--send-timeout", "-1"],
    ["--send-timeout", "soon"],
    ["--body-timeout", "-1"],
    ["--body-timeout", "soon"],
    ["--gc-threshold", "-5"],
    ["--gc-threshold", "many"],
    ["--websocket-max-frame-size", "-1"],
    ["--websocket-max-frame-size", "1k"],
    ["--max-queued-bytes", "1000"],
    ["--max-queued-bytes", "lots"],
], ids=lambda a: " ".join(a))
def test_bad_option_values(args):
    port = None if "-p" in args else free_port()
    rc, out, err = run(args, "echo:app", port=port)
    assert_one_line_error(rc, err)


def test_missing_app_argument():
    rc, out, err = run([], None, port=free_port())
    assert rc != 0
    assert "Traceback" not in err


def test_unknown_module():
    rc, out, err = run([], "no_such_module_xyz:app", port=free_port())
    assert_one_line_error(rc, err, "no_such_module_xyz")


def test_unknown_attribute():
    rc, out, err = run([], "echo:no_such_attribute_xyz", port=free_port())
    assert_one_line_error(rc, err, "no_such_attribute_xyz")


@bayleaf_only
@pytest.mark.parametrize("spec", ["echo", "echo:", ":app"])
def test_malformed_app_spec(spec):
    rc, out, err = run([], spec, port=free_port())
    assert_one_line_error(rc, err)


@skip_server("daphne", reason="daphne exits 0 when the port is taken")
def test_port_in_use():
    busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        t0 = time.monotonic()
        rc, out, err = run(["-b", "127.0.0.1"], "echo:app", port=port, timeout=30)
        assert_one_line_error(rc, err)
        if IS_BAYLEAF:
            assert str(port) in err or "in use" in err.lower(), err
            # gives up at once rather than retrying: generous for a loaded, sanitized start
            assert time.monotonic() - t0 < 20
    finally:
        busy.close()


def test_app_module_imported_from_cwd_first(start_server, tmp_path):
    """cwd comes first on sys.path: a module there shadows a stdlib module of the same name."""
    (tmp_path / "colorsys.py").write_text(
        "async def app(scope, receive, send):\n"
        "    if scope['type'] != 'http':\n"
        "        return\n"
        "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
        "    await send({'type': 'http.response.body', 'body': b'from cwd module'})\n")
    server = start_server("colorsys:app", cwd=tmp_path)
    status, _, body = server.get("/")
    assert status == 200 and body == b"from cwd module"


def test_dotted_module_and_attribute_path(start_server):
    server = start_server("djproj.asgi:application")
    status, _, body = server.get("/hello/")
    assert status == 200


@bayleaf_only
@pytest.mark.parametrize("loop", ["asyncio", "uvloop", "auto"])
def test_loop_option(start_server, loop):
    if loop == "uvloop":
        try:
            import uvloop  # noqa: F401
        except ImportError:
            pytest.skip("uvloop not installed")
    server = start_server("echo:app", "--loop", loop)
    server.assert_serving()


@bayleaf_only
@pytest.mark.parametrize("v", ["0", "1", "2", "3"])
def test_verbosity_levels_serve(start_server, v):
    server = start_server("echo:app", "-v", v)
    server.assert_serving()
    if v == "0":
        assert "Traceback" not in server.stderr
