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


def make_venv(path, version=None, system_site_packages=False):
    cmd = [PYTHON, "-m", "venv", "--without-pip", str(path)]
    if system_site_packages:
        cmd.insert(3, "--system-site-packages")
    subprocess.run(cmd, check=True, timeout=60)
    site = path / "lib" / "python3.11" / "site-packages" / "venvmarker"
    site.mkdir(parents=True)
    (site / "__init__.py").write_text("VALUE = 'from-venv'\n")
    if version is not None:
        cfg = path / "pyvenv.cfg"
        lines = [("version = %s" % version) if l.startswith("version") else l
                 for l in cfg.read_text().splitlines()]
        cfg.write_text("\n".join(lines) + "\n")


def serve_once(binary, app_dir, env_extra, timeout=10, args=()):
    """Starts binary on a free port, returns (status, body, stderr) of GET /."""
    port = free_port()
    env = dict(os.environ, **env_extra)
    env.pop("PYTHONPATH", None)
    for k in [k for k, v in env.items() if v == ""]:
        del env[k]
    proc = subprocess.Popen([str(binary), "-p", str(port), "-v", "0", *args, "venvapp:app"], cwd=app_dir,
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
def test_venv_flag_and_system_site_packages(tmp_path, app_dir):
    """--venv PATH works like VIRTUAL_ENV; with system site-packages, Debian's
    packages (uvloop here) stay importable beside the venv's own."""
    from harness import BAYLEAF
    venv = tmp_path / "venv-sys"
    make_venv(venv, system_site_packages=True)
    (app_dir / "venvapp.py").write_text(APP.replace('"absent"', '"absent"') + """
import uvloop  # from /usr/lib/python3/dist-packages: only with system site-packages
""")
    port_env = {"VIRTUAL_ENV": ""}
    status, body, err = serve_once(BAYLEAF, app_dir, port_env, args=["--venv", str(venv)])
    assert status == 200, err
    marker, prefix, _ = body.split("|")
    assert marker == "from-venv" and prefix == str(venv)


@bayleaf_only
def test_asgi_threads_sizes_the_sync_pool(tmp_path):
    """ASGI_THREADS sizes the executor that runs sync code, as in Daphne."""
    from harness import BAYLEAF
    d = tmp_path / "app"
    d.mkdir()
    (d / "venvapp.py").write_text(THREADS_APP)
    status, body, err = serve_once(BAYLEAF, d, {"ASGI_THREADS": "3"})
    assert status == 200, err
    assert body == "3", body


THREADS_APP = '''
import asyncio
import threading
import time

async def app(scope, receive, send):
    if scope["type"] != "http":
        raise ValueError("http only")
    loop = asyncio.get_running_loop()

    def work():
        time.sleep(0.2)
        return threading.get_ident()

    idents = await asyncio.gather(*[loop.run_in_executor(None, work) for _ in range(8)])
    body = str(len(set(idents)))  # threads the default executor used
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body.encode()})
'''


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
    """meson install puts the server and its Python package there, nothing else
    (no unit-test or fuzz program, though they are built); the installed binary
    imports the installed package, not the source tree's."""
    prefix = tmp_path / "prefix"
    build = tmp_path / "build"
    subprocess.run(["meson", "setup", str(build), "--prefix", str(prefix)], cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL, timeout=300)
    subprocess.run(["meson", "install", "-C", str(build)], check=True, stdout=subprocess.DEVNULL,
                   timeout=600)
    assert (build / "tests" / "unit").is_dir()  # built, and yet not installed
    installed = sorted(str(p.relative_to(prefix)) for p in prefix.rglob("*") if p.is_file())
    package = [f for f in installed if "/bayleaf/" in "/" + f]
    assert installed == ["bin/bayleaf"] + package, installed
    assert all(f.endswith(".py") for f in package), package
    assert any(f.endswith("/bayleaf/runner.py") for f in package), package
    binary = prefix / "bin" / "bayleaf"
    status, body, err = serve_once(binary, app_dir, {})
    assert status == 200, err
    _, _, bayleaf_file = body.split("|")
    assert bayleaf_file.startswith(str(prefix)) and "/bayleaf/" in bayleaf_file, bayleaf_file
