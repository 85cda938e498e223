"""Mistakes a new user makes, and what Bayleaf says about them: an app that
fails at import (the whole traceback, full paths, at every verbosity), uvicorn
habits and typos on the command line, a path that is not a virtualenv, uvloop
missing from a virtualenv, runserver without ASGI_APPLICATION."""

import os
import subprocess
import sys

import pytest

from harness import BAYLEAF, PYTHON, REPO, bayleaf_only, free_port, server_env

pytestmark = bayleaf_only


def run_bayleaf(args, cwd, env=None, timeout=60):
    """Runs bayleaf to its (early) exit: (status, stderr)."""
    cmd = [BAYLEAF, "-p", str(free_port()), *args]
    r = subprocess.run(cmd, cwd=cwd, env=server_env(env), stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stderr


def lines(text):
    return [l for l in text.splitlines() if l.strip()]


@pytest.mark.parametrize("v", ["0", "1", "3"])
def test_import_error_shows_the_whole_traceback(tmp_path, v):
    (tmp_path / "brokenapp.py").write_text("import helper\n\napp = helper.app\n")
    (tmp_path / "helper.py").write_text("def make():\n    return undefined_name\n\n\napp = make()\n")
    rc, err = run_bayleaf(["-v", v, "brokenapp:app"], tmp_path)
    assert rc == 1, err
    assert "Traceback (most recent call last):" in err, err
    helper = str(tmp_path / "helper.py")
    assert 'File "%s", line 5, in <module>' % helper in err, err
    assert 'File "%s", line 2, in make' % helper in err, err
    assert 'File "%s", line 1, in <module>' % (tmp_path / "brokenapp.py") in err, err
    assert "importlib" not in err, err  # the machinery's frames are left out
    last = lines(err)[-1]
    assert last == ("bayleaf: error: Error while importing module 'brokenapp': "
                    "NameError: name 'undefined_name' is not defined"), err


def test_syntax_error_names_the_full_path(tmp_path):
    (tmp_path / "synapp.py").write_text("async def app(scope, receive, send:\n    pass\n")
    rc, err = run_bayleaf(["-v", "0", "synapp:app"], tmp_path)
    path = str(tmp_path / "synapp.py")
    assert rc == 1, err
    assert 'File "%s", line 1' % path in err, err
    assert lines(err)[-1].startswith("bayleaf: error: Error while importing module 'synapp': "
                                     "SyntaxError: "), err
    assert lines(err)[-1].endswith("(%s, line 1)" % path), err


@pytest.mark.parametrize("args, hint", [
    (["--host", "0.0.0.0"], "-b/--bind HOST"),
    (["--host=0.0.0.0"], "-b/--bind HOST"),
    (["--reload"], "manage.py runserver"),
    (["--log-level", "debug"], "-v/--verbosity 0..3"),
    (["--uds", "/tmp/x.sock"], "-u/--unix-socket PATH"),
    (["--ws-max-size", "100"], "--websocket-max-message-size"),
    (["--timeout-keep-alive", "5"], "--keepalive-timeout"),
    (["--bnd", "0.0.0.0"], "did you mean --bind HOST?"),
    (["--pnig-timeout=3"], "did you mean --ping-timeout SECS?"),
    (["--graceful_timeout", "5"], "did you mean --graceful-timeout SECS?"),
    (["--websocket-max-mesage-size", "5"], "did you mean --websocket-max-message-size BYTES?"),
], ids=lambda a: a if isinstance(a, str) else " ".join(a))
def test_unknown_option_gets_the_bayleaf_spelling(tmp_path, args, hint):
    rc, err = run_bayleaf([*args, "echo:app"], tmp_path)
    assert rc == 2, err
    (line,) = lines(err)
    name = args[0].split("=")[0]
    assert line.startswith("bayleaf: error: unknown option: '%s' (" % name), line
    assert hint in line and line.endswith("see bayleaf --help)"), line


def test_unknown_option_far_from_any_gets_no_guess(tmp_path):
    rc, err = run_bayleaf(["--frobnicate", "echo:app"], tmp_path)
    assert rc == 2
    assert lines(err) == ["bayleaf: error: unknown option: '--frobnicate' (see bayleaf --help)"]


def test_a_value_given_to_a_flag_is_not_taken_for_a_typo(tmp_path):
    rc, err = run_bayleaf(["--proxy-headers=1", "echo:app"], tmp_path)
    assert rc == 2
    assert lines(err) == ["bayleaf: error: unknown option: '--proxy-headers=1' (see bayleaf --help)"]


def test_uvicorn_port_is_accepted(tmp_path):
    """--port is one of uvicorn's spellings Bayleaf shares: a bad value, not an unknown option."""
    rc, err = run_bayleaf(["--port", "notaport", "echo:app"], tmp_path)
    assert rc == 2 and lines(err) == ["bayleaf: error: invalid port: 'notaport' (see bayleaf --help)"]


@pytest.mark.parametrize("how", ["flag", "env"])
def test_venv_that_does_not_exist(tmp_path, how):
    nope = str(tmp_path / "nope")
    args, env = (["--venv", nope], None) if how == "flag" else ([], {"VIRTUAL_ENV": nope})
    rc, err = run_bayleaf([*args, "echo:app"], tmp_path, env)
    said = "--venv " if how == "flag" else "VIRTUAL_ENV="
    assert rc == 1 and lines(err) == ["bayleaf: error: %s%s: no such directory" % (said, nope)], err


def test_venv_that_is_not_a_virtualenv(tmp_path):
    rc, err = run_bayleaf(["--venv", str(tmp_path), "echo:app"], tmp_path)
    assert rc == 1
    assert lines(err) == ["bayleaf: error: --venv %s is not a virtualenv (no pyvenv.cfg in it)"
                          % tmp_path], err


def test_uvloop_missing_from_a_venv_says_pip_not_apt(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([PYTHON, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    (tmp_path / "app.py").write_text("async def app(scope, receive, send):\n    pass\n")
    rc, err = run_bayleaf(["--venv", str(venv), "--loop", "uvloop", "--lifespan", "off", "app:app"],
                          tmp_path)
    assert rc == 1
    assert lines(err) == ["bayleaf: error: --loop uvloop: uvloop is not installed in the "
                          "virtualenv %s (%s/bin/pip install uvloop)" % (venv, venv)], err


SETTINGS = """
SECRET_KEY = "x"
DEBUG = True
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "bayleaf",
                  "django.contrib.staticfiles", "channels"]
ROOT_URLCONF = "noasgi_urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
"""


def test_runserver_without_asgi_application_stops(tmp_path):
    """As Daphne's runserver: no ASGI_APPLICATION is a CommandError, not a
    server that answers every WebSocket with 500."""
    (tmp_path / "noasgi_settings.py").write_text(SETTINGS)
    (tmp_path / "noasgi_urls.py").write_text("urlpatterns = []\n")
    env = server_env({"PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO / "pyapp")]),
                      "DJANGO_SETTINGS_MODULE": "noasgi_settings", "BAYLEAF_BIN": BAYLEAF})
    port = str(free_port())
    r = subprocess.run([PYTHON, "-m", "django", "runserver", "--noreload", port], cwd=tmp_path,
                       env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "CommandError: You have not set ASGI_APPLICATION" in r.stderr, r.stderr
    assert "Starting Bayleaf" not in r.stdout
