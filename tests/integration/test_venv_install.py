"""Virtualenvs (VIRTUAL_ENV) and the installed layout (meson install)."""

import os
import signal
import subprocess
import time
import urllib.request

import pytest

from harness import PYTHON, REPO, bayleaf_only, free_port

APP = '''
import sys
import bayleaf

async def app(scope, receive, send):
    if scope["type"] != "http":
        raise ValueError("http only")
    try:
        import venvmarker
        marker = venvmarker.VALUE
    except ImportError:
        marker = "absent"
    body = "%s|%s|%s" % (marker, sys.prefix, bayleaf.__file__)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body.encode()})
'''


def make_venv(path, version=None):
    subprocess.run([PYTHON, "-m", "venv", "--without-pip", str(path)], check=True, timeout=60)
    site = path / "lib" / "python3.11" / "site-packages" / "venvmarker"
    site.mkdir(parents=True)
    (site / "__init__.py").write_text("VALUE = 'from-venv'\n")
    if version is not None:
        cfg = path / "pyvenv.cfg"
        lines = [("version = %s" % version) if l.startswith("version") else l
                 for l in cfg.read_text().splitlines()]
        cfg.write_text("\n".join(lines) + "\n")


def serve_once(binary, app_dir, env_extra, timeout=10):
    """Starts binary on a free port, returns (status, body, stderr) of GET /."""
    port = free_port()
    env = dict(os.environ, **env_extra)
    env.pop("PYTHONPATH", None)
    proc = subprocess.Popen([str(binary), "-p", str(port), "-v", "0", "venvapp:app"], cwd=app_dir,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                return None, None, proc.stderr.read().decode()
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=2) as r:
                    return r.status, r.read().decode(), ""
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        proc.stderr.close()


@pytest.fixture
def app_dir(tmp_path):
    d = tmp_path / "app"
    d.mkdir()
    (d / "venvapp.py").write_text(APP)
    return d


@bayleaf_only
def test_virtual_env_is_honoured(tmp_path, app_dir):
    from harness import BAYLEAF
    venv = tmp_path / "venv"
    make_venv(venv)
    status, body, err = serve_once(BAYLEAF, app_dir, {"VIRTUAL_ENV": str(venv)})
    assert status == 200, err
    marker, prefix, _ = body.split("|")
    assert marker == "from-venv"
    assert prefix == str(venv)


@bayleaf_only
def test_virtual_env_of_another_python_is_refused(tmp_path, app_dir):
    from harness import BAYLEAF
    venv = tmp_path / "venv39"
    make_venv(venv, version="3.9.2")
    status, body, err = serve_once(BAYLEAF, app_dir, {"VIRTUAL_ENV": str(venv)})
    assert status is None, body
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, err
    assert "3.9.2" in lines[0] and "3.11" in lines[0], err


@bayleaf_only
def test_installed_binary_uses_installed_pyapp(tmp_path, app_dir):
    prefix = tmp_path / "prefix"
    build = tmp_path / "build"
    subprocess.run(["meson", "setup", str(build), "--prefix", str(prefix)], cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL, timeout=300)
    subprocess.run(["meson", "install", "-C", str(build)], check=True, stdout=subprocess.DEVNULL,
                   timeout=600)
    binary = prefix / "bin" / "bayleaf"
    status, body, err = serve_once(binary, app_dir, {})
    assert status == 200, err
    _, _, bayleaf_file = body.split("|")
    assert bayleaf_file.startswith(str(prefix / "share" / "bayleaf" / "pyapp")), bayleaf_file
