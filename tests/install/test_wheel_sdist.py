"""An sdist (meson-python's, from the committed tree), a wheel built from that
sdist alone (no git, no build tree), and the wheel installed into a fresh
virtualenv that has no build tools: it serves."""

import shutil
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import pytest

from installs import (REPO, SYSTEM_PYTHON, Served, clean_env, make_venv, pip, run, whoami)

APPS = Path(__file__).resolve().parent / "apps"
TAG = "cp%d%d-cp%d%d-linux_" % (sys.version_info[:2] * 2)


@pytest.fixture(scope="module")
def scratch():
    d = Path(tempfile.mkdtemp(prefix="bl-wheel-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def sdist(scratch):
    out = scratch / "sdist"
    out.mkdir()
    r = run([SYSTEM_PYTHON, "-c", "import sys, mesonpy; print(mesonpy.build_sdist(sys.argv[1]))",
             out], cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return out / r.stdout.split()[-1]


@pytest.fixture(scope="module")
def wheel(scratch, sdist):
    src = scratch / "src"
    with tarfile.open(sdist) as tar:
        tar.extractall(src)
    (root,) = src.iterdir()
    builder = make_venv(SYSTEM_PYTHON, scratch / "builder", system_site_packages=True)
    out = scratch / "wheels"
    r = pip(builder, ["wheel", "--no-build-isolation", "--no-deps", "-w", str(out), str(root)],
            clean_env(), cwd=scratch)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (whl,) = out.glob("bayleaf-*.whl")
    return whl


def test_sdist_has_the_sources(sdist):
    assert sdist.name == "bayleaf-0.1.0.tar.gz"
    with tarfile.open(sdist) as tar:
        names = set(tar.getnames())
    for f in ("pyproject.toml", "meson.build", "PKG-INFO", "gateway/proc/main.c",
              "pyapp/bayleaf/runner.py", "pyapp/meson.build"):
        assert "bayleaf-0.1.0/" + f in names, f


def test_wheel_is_tagged_for_this_python_and_holds_binary_and_package(wheel):
    assert TAG in wheel.name, wheel.name  # the binary embeds this very CPython
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    assert "bayleaf-0.1.0.data/scripts/bayleaf" in names, sorted(names)
    assert "bayleaf/runner.py" in names and "bayleaf/__main__.py" in names, sorted(names)
    assert not [n for n in names if "test" in n.split("/")[0] or "fuzz" in n], sorted(names)


def test_wheel_installs_and_serves(scratch, wheel):
    venv = make_venv(SYSTEM_PYTHON, scratch / "target", system_site_packages=False)
    r = pip(venv, ["install", str(wheel)], clean_env(), cwd=scratch)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    r = run([venv / "bin" / "bayleaf", "--version"], cwd=scratch)
    assert r.returncode == 0 and "Python %d.%d" % sys.version_info[:2] in r.stdout, r.stdout + r.stderr
    server = Served([venv / "bin" / "bayleaf", "wsecho:app"], cwd=APPS, env=clean_env(),
                    log_path=scratch / "wheel.log")
    try:
        me = whoami(server.port)
    finally:
        assert server.stop() == 0, server.stderr()
    assert Path(me["prefix"]) == venv
    assert me["bayleaf"].startswith(str(venv) + "/"), me
