"""Fixtures for the fault tests: real bayleaf processes running
apps/fault_app.py (started and always stopped by the integration harness).

    /usr/bin/python3 -m pytest -q tests/faults

BAYLEAF_BIN selects the binary; BAYLEAF_CHURN_SCALE scales test_churn.py
(default 0.2; 1 is the full 100,000 requests / 50,000 WebSockets).
"""

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[0] / "integration"))
sys.path.insert(0, str(HERE.parents[0] / "conformance"))

from harness import BAYLEAF, ServerManager  # noqa: E402

APPS = HERE / "apps"
APP = "fault_app:app"
BASE_ARGS = ("-v", "1", "--access-log", "/dev/null")


def pytest_collection_modifyitems(config, items):
    if os.access(BAYLEAF, os.X_OK):
        return
    skip = pytest.mark.skip(reason=f"bayleaf binary not built ({BAYLEAF}); set BAYLEAF_BIN")
    for item in items:
        if str(item.fspath).startswith(str(HERE)):
            item.add_marker(skip)


@pytest.fixture
def app_server(tmp_path):
    """app_server(app, *args, env=None): a bayleaf running an app of apps/ for
    this test, with BASE_ARGS."""
    counter = iter(range(100))

    def mk():
        d = tmp_path / f"server{next(counter)}"
        d.mkdir()
        return d

    mgr = ServerManager(mk)

    def start(app, *args, env=None):
        return mgr.start(app, *BASE_ARGS, *args, cwd=APPS, env=env)

    try:
        yield start
    finally:
        problems = mgr.close_all()
    if problems:
        pytest.fail("\n\n".join(problems))


@pytest.fixture
def fault_server(app_server):
    """fault_server(*args, env=None): a bayleaf running fault_app for this test."""
    return lambda *args, env=None: app_server(APP, *args, env=env)
