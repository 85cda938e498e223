"""Fixtures for the fault tests: real bayleaf processes running
apps/fault_app.py (started and always stopped by the integration harness).

    /usr/bin/python3 -m pytest -q tests/faults

BAYLEAF_BIN selects the binary; BAYLEAF_CHURN_SCALE scales test_churn.py
(default 0.2; 1 is the full 100,000 requests / 50,000 WebSockets).
"""

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[0] / "integration"))
sys.path.insert(0, str(HERE.parents[0] / "conformance"))

from server_fixtures import skip_if_unbuilt, start_server  # noqa: E402,F401

APPS = HERE / "apps"
APP = "fault_app:app"
BASE_ARGS = ("-v", "1", "--access-log", "/dev/null")


def pytest_collection_modifyitems(config, items):
    skip_if_unbuilt(items, HERE)


@pytest.fixture
def app_server(start_server):
    """app_server(app, *args, env=None): a bayleaf running an app of apps/ for
    this test, with BASE_ARGS."""
    return lambda app, *args, env=None: start_server(app, *BASE_ARGS, *args, cwd=APPS, env=env)


@pytest.fixture
def fault_server(app_server):
    """fault_server(*args, env=None): a bayleaf running fault_app for this test."""
    return lambda *args, env=None: app_server(APP, *args, env=env)
