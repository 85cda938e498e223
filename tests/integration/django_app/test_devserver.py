"""The helpers behind runserver and bayleaf.testing (pyapp/bayleaf/devserver.py,
testing.py), in this process or a short Python subprocess."""

import json
import os
import socket
import subprocess
import sys

import pytest

from djtools import PYAPP, project_env
from harness import PYTHON, bayleaf_only

if str(PYAPP) not in sys.path:
    sys.path.insert(0, str(PYAPP))

from bayleaf import devserver  # noqa: E402

pytestmark = bayleaf_only


def _fake_binary(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def no_binary_env(monkeypatch, tmp_path):
    monkeypatch.delenv("BAYLEAF_BIN", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-path"))
    return monkeypatch


def test_find_binary_env_first(no_binary_env, tmp_path):
    fake = _fake_binary(tmp_path / "elsewhere" / "bayleaf")
    no_binary_env.setenv("BAYLEAF_BIN", str(fake))
    assert devserver.find_binary() == str(fake)
    no_binary_env.setenv("BAYLEAF_BIN", str(tmp_path / "missing"))
    with pytest.raises(devserver.BinaryNotFound, match="BAYLEAF_BIN="):
        devserver.find_binary()


def test_find_binary_build_tree_beside_pyapp(no_binary_env, tmp_path):
    tree = tmp_path / "src"
    (tree / "pyapp").mkdir(parents=True)
    no_binary_env.setattr(devserver, "pyapp_dir", lambda: tree / "pyapp")
    with pytest.raises(devserver.BinaryNotFound):
        devserver.find_binary()
    on_path = _fake_binary(tmp_path / "empty-path" / "bayleaf")
    assert devserver.find_binary() == str(on_path)  # PATH comes last
    built = _fake_binary(tree / "build" / "bayleaf")
    assert devserver.find_binary() == str(built)


def test_find_binary_install_prefix(no_binary_env, tmp_path):
    prefix = tmp_path / "prefix"
    pyapp = prefix / "lib" / "python3" / "dist-packages"
    pyapp.mkdir(parents=True)
    no_binary_env.setattr(devserver, "pyapp_dir", lambda: pyapp)
    installed = _fake_binary(prefix / "bin" / "bayleaf")
    _fake_binary(tmp_path / "empty-path" / "bayleaf")
    assert devserver.find_binary() == str(installed)


def test_listen_resolves_names():
    sock = devserver.listen("localhost", 0)
    try:
        host, port = sock.getsockname()
        assert host == "127.0.0.1" and port > 0
        socket.create_connection((host, port), timeout=2).close()
    finally:
        sock.close()


def test_child_env(monkeypatch, tmp_path):
    monkeypatch.setenv("RUN_MAIN", "true")
    monkeypatch.syspath_prepend(str(tmp_path))
    env = devserver.child_env("proj.settings", {"EXTRA": "1"})
    assert "RUN_MAIN" not in env
    assert env["DJANGO_SETTINGS_MODULE"] == "proj.settings"
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(tmp_path)
    stdlib = os.path.join(os.path.realpath(sys.base_prefix), "lib", "")
    assert not any(os.path.realpath(p).startswith(stdlib) for p in env["PYTHONPATH"].split(os.pathsep))
    assert env["BAYLEAF_PARENT_PID"] == str(os.getpid())
    assert env["EXTRA"] == "1"


_SETTINGS_SNAPSHOT = r"""
import json, pathlib
from django.conf import settings
settings.configure(
    DEBUG=True, ALLOWED_HOSTS=["a"], INSTALLED_APPS=[],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3",
                           "NAME": pathlib.Path("/tmp/x.sqlite3")}})
import django
django.setup()
from django.test.utils import override_settings, setup_test_environment
setup_test_environment(debug=False)  # as DiscoverRunner does
from bayleaf.testing import settings_for_child
with override_settings(CHANNEL_LAYERS={"default": {"BACKEND": "x"}}, NOT_JSON=object()):
    with override_settings(ALLOWED_HOSTS=["b"]):
        print(json.dumps(settings_for_child()))
"""


def test_settings_for_child():
    proc = subprocess.run([PYTHON, "-c", _SETTINGS_SNAPSHOT], env=project_env(),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    snap = json.loads(proc.stdout)
    assert snap["DEBUG"] is False  # as the test runner set it
    assert snap["ALLOWED_HOSTS"] == ["b"]
    assert snap["CHANNEL_LAYERS"] == {"default": {"BACKEND": "x"}}
    assert "NOT_JSON" not in snap
    assert snap["DATABASES"]["default"]["NAME"] == "/tmp/x.sqlite3"
    assert snap["DATABASES"]["default"]["ENGINE"] == "django.db.backends.sqlite3"
