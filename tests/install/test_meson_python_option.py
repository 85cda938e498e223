"""meson setup -Dpython=PATH embeds that Python (it once linked Debian's 3.11
whatever it named)."""

import shutil
import tempfile
from pathlib import Path

import pytest

from installs import MINORS, REPO, clean_env, pyenv_python, run


def other_python():
    for minor in reversed(MINORS):
        exe = pyenv_python(minor)
        if exe and minor != "3.11":
            return exe
    return None


def test_dpython_selects_the_embedded_python():
    python = other_python()
    if python is None:
        pytest.skip("no pyenv CPython other than 3.11 on this machine")
    scratch = Path(tempfile.mkdtemp(prefix="bl-dpython-"))
    try:
        backend = scratch / "backend"  # Debian's Meson 1.0 needs distutils for 3.12+
        assert run(["bash", REPO / ".ci" / "offline-backend", backend, python]).returncode == 0
        env = clean_env(PYTHONPATH=str(backend))
        r = run(["meson", "setup", scratch / "build", "-Dpython=" + python, "-Dbuild_tests=false"],
                cwd=REPO, env=env, timeout=300)
        assert r.returncode == 0, r.stdout[-3000:]
        r = run(["meson", "compile", "-C", scratch / "build"], env=env, timeout=900)
        assert r.returncode == 0, r.stdout[-3000:]
        version = run([python, "-c", "import sys; print(sys.version.split()[0])"]).stdout.strip()
        r = run([scratch / "build" / "bayleaf", "--version"], cwd=scratch)
        python_line = r.stdout.splitlines()[1]
        assert python_line.startswith("Python %s (built with %s), " % (version, version)), r.stdout
        assert str(Path(python).parent.parent) in python_line, r.stdout
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
