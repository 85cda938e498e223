"""pip install --no-build-isolation of this tree into a virtualenv of each
CPython on the machine: the bayleaf command, the bayleaf package and
`python -m bayleaf` work from the virtualenv alone (no PYTHONPATH, no
VIRTUAL_ENV), and the server serves WebSockets on that Python.

One meson build per Python (a module-scoped fixture): about a minute each.
"""

import json
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from installs import (REPO, SYSTEM_PYTHON, Served, clean_env, link_chat_deps, make_venv, pip,
                      pip_env, pythons, run, site_packages, whoami, ws_exchange)

APPS = Path(__file__).resolve().parent / "apps"
CHAT = REPO / "examples" / "chat"


@pytest.fixture(scope="module", params=pythons())
def installed(request):
    """(python, venv, scratch): bayleaf pip-installed into a fresh virtualenv."""
    kind, python = request.param
    scratch = Path(tempfile.mkdtemp(prefix="bl-install-"))
    try:
        # Debian's venv sees Debian's packages (meson-python, Django) as a
        # project's usually does; another Python's cannot (see installs.py).
        venv = make_venv(python, scratch / "venv", system_site_packages=kind == "system")
        r = pip(venv, ["install", "--no-build-isolation", str(REPO)], pip_env(python, scratch))
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        yield python, venv, scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def base_version(python):
    r = run([python, "-c", "import sys, os; print(sys.version.split()[0]); "
             "print(os.path.realpath(sys._base_executable))"])
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def test_version_names_the_embedded_python(installed):
    python, venv, scratch = installed
    version, exe = base_version(python)
    r = run([venv / "bin" / "bayleaf", "--version"], cwd=scratch)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("bayleaf 0.1.0\n"), r.stdout
    line = next(l for l in r.stdout.splitlines() if l.startswith("Python"))
    assert re.search(r"\b%s\b" % re.escape(version), line), r.stdout
    assert exe in line, r.stdout
    for lib in ("libuv", "wslay", "llhttp", "zlib", "OpenSSL"):
        assert re.search(r"^%s \d" % lib, r.stdout, re.M), r.stdout


def test_package_imports_without_pythonpath(installed):
    python, venv, scratch = installed
    r = run([venv / "bin" / "python", "-c",
             "import bayleaf, bayleaf.testing, bayleaf.loader; print(bayleaf.__file__)"],
            cwd=scratch)
    assert r.returncode == 0, r.stderr
    assert Path(r.stdout.strip()).parent == site_packages(venv) / "bayleaf", r.stdout


def test_python_m_bayleaf_runs_the_installed_binary(installed):
    python, venv, scratch = installed
    direct = run([venv / "bin" / "bayleaf", "--version"], cwd=scratch)
    r = run([venv / "bin" / "python", "-m", "bayleaf", "--version"], cwd=scratch)
    assert r.returncode == 0, r.stderr
    assert r.stdout == direct.stdout and "Python" in r.stdout
    bad = run([venv / "bin" / "python", "-m", "bayleaf", "--no-such-option"], cwd=scratch)
    assert bad.returncode == 2 and "--no-such-option" in bad.stderr, bad.stderr


def test_serves_websocket_from_the_venv(installed):
    """The binary run by path (as systemd does: no VIRTUAL_ENV, no PYTHONPATH)
    runs in its own virtualenv and imports bayleaf from it."""
    python, venv, scratch = installed
    version, _ = base_version(python)
    server = Served([venv / "bin" / "bayleaf", "-v", "1", "wsecho:app"], cwd=APPS,
                    env=clean_env(), log_path=scratch / "wsecho.log")
    try:
        me = whoami(server.port)
        assert ws_exchange(server.port, "/", ["hello", "ünïcode"]) == ["hello", "ünïcode"]
    finally:
        assert server.stop() == 0, server.stderr()
    assert me["version"] == version
    assert Path(me["prefix"]) == venv
    # the start-up line names this Python and this virtualenv
    assert "Python %s (%s/bin/python, virtualenv %s)" % (version, venv, venv) in server.stderr()
    assert Path(me["bayleaf"]).parent == site_packages(venv) / "bayleaf"


def test_serves_the_chat_example(installed):
    """manage.py migrate with "bayleaf" in INSTALLED_APPS from the venv, then
    a chat message over the example's WebSocket comes back to its sender."""
    python, venv, scratch = installed
    if python != SYSTEM_PYTHON:
        link_chat_deps(venv, scratch)
    probe = run([venv / "bin" / "python", "-c", "import django.http, channels.routing"])
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        pytest.skip("Debian's Django %s does not import on this Python: %s"
                    % ("3.2", last))
    env = clean_env(CHAT_DB_PATH=str(scratch / "chat.sqlite3"))
    r = run([venv / "bin" / "python", "manage.py", "migrate", "--noinput"], cwd=CHAT, env=env,
            timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    r = run([venv / "bin" / "python", "-c",
             "import os, django; os.environ['DJANGO_SETTINGS_MODULE'] = 'chat.settings'; "
             "django.setup(); from django.conf import settings; "
             "import bayleaf; print('bayleaf' in settings.INSTALLED_APPS, bayleaf.__file__)"],
            cwd=CHAT, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("True " + str(site_packages(venv))), r.stdout
    server = Served([venv / "bin" / "bayleaf", "chat.asgi:application"], cwd=CHAT, env=env,
                    log_path=scratch / "chat.log")
    try:
        replies = ws_exchange(server.port, "/ws/chat/lobby/", [json.dumps({"message": "hi"})])
    finally:
        assert server.stop() == 0, server.stderr()
    assert [json.loads(m) for m in replies] == [{"message": "hi", "user": ""}]
