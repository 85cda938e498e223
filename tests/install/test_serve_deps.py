"""examples/serve installs what building and serving the chat demo needs,
not CI's browser, compilers and load generators."""

import subprocess

from installs import REPO


def packages(*args):
    r = subprocess.run(["bash", str(REPO / ".ci" / "install-deps"), "--list", *args],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return set(r.stdout.split())


def test_serve_set_is_build_and_django_only():
    serve, everything = packages("--serve"), packages()
    assert serve < everything
    assert {"meson", "ninja-build", "libuv1-dev", "python3-dev", "node-llhttp",
            "python3-django", "python3-django-channels"} <= serve
    for ci_only in ("chromium", "clang", "llvm", "wrk", "nginx-light", "redis-server",
                    "python3-pytest", "uvicorn", "daphne"):
        assert ci_only in everything and ci_only not in serve, ci_only


def test_examples_serve_asks_for_the_serve_set():
    script = (REPO / "examples" / "serve").read_text()
    calls = [l.strip() for l in script.splitlines() if "install-deps" in l and not l.startswith("#")]
    assert calls == ["bash .ci/install-deps --serve"]
