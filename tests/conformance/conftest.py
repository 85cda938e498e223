"""Fixtures for the conformance suite: real bayleaf processes (the integration
harness starts and always stops them), one per module where possible.

    /usr/bin/python3 -m pytest -q tests/conformance

BAYLEAF_BIN selects the binary (default build/bayleaf), as for tests/integration.
"""

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[0] / "integration"))

from harness import BAYLEAF, ServerManager  # noqa: E402

APPS = HERE / "apps"
APP = "conf_app:app"
# Quiet servers; no keepalive pings unless a test asks (they would interleave
# with the frames a test reads); no compression offered by our client anyway.
BASE_ARGS = ("-v", "0", "--ping-interval", "300", "--ping-timeout", "300")
BIG = 32 * 1024 * 1024  # --websocket-max-message-size for the default server


def pytest_collection_modifyitems(config, items):
    if os.access(BAYLEAF, os.X_OK):
        return
    skip = pytest.mark.skip(reason=f"bayleaf binary not built ({BAYLEAF}); set BAYLEAF_BIN")
    for item in items:
        if str(item.fspath).startswith(str(HERE)):
            item.add_marker(skip)


def _manager(mk):
    mgr = ServerManager(mk)
    real_start = mgr.start

    def start(*args, app=APP, cwd=APPS, **kw):
        return real_start(app, *BASE_ARGS, *args, cwd=cwd, **kw)

    return mgr, start


@pytest.fixture(scope="module")
def module_server(tmp_path_factory):
    """module_server(*args): a server shared by the tests of a module, per argument list."""
    mgr, start = _manager(lambda: tmp_path_factory.mktemp("server"))
    cache = {}

    def get(*args):
        s = cache.get(args)
        if s is None or not s.alive():
            s = cache[args] = start(*args)
        return s

    try:
        yield get
    finally:
        problems = mgr.close_all()
    if problems:
        pytest.fail("\n\n".join(problems))


@pytest.fixture
def server(module_server):
    """The default conformance server: echo app, 32 MiB message limit."""
    return module_server("--websocket-max-message-size", str(BIG))


@pytest.fixture
def fresh_server(tmp_path):
    """fresh_server(*args, app=..., cwd=..., env=...): a server of this test alone."""
    counter = iter(range(100))

    def mk():
        d = tmp_path / f"server{next(counter)}"
        d.mkdir()
        return d

    mgr, start = _manager(mk)
    try:
        yield start
    finally:
        problems = mgr.close_all()
    if problems:
        pytest.fail("\n\n".join(problems))
