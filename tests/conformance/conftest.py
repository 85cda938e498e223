"""Fixtures for the conformance suite: real bayleaf processes (the integration
harness starts and always stops them), one per module where possible.

    /usr/bin/python3 -m pytest -q tests/conformance

BAYLEAF_BIN selects the binary (default build/bayleaf), as for tests/integration.
"""

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[0] / "integration"))

from server_fixtures import (cached_starter, module_server_factory, skip_if_unbuilt,  # noqa: E402,F401
                             start_server)

APPS = HERE / "apps"
APP = "conf_app:app"
# Quiet servers; no keepalive pings unless a test asks (they would interleave
# with the frames a test reads); no compression offered by our client anyway.
BASE_ARGS = ("-v", "0", "--ping-interval", "300", "--ping-timeout", "300")
BIG = 32 * 1024 * 1024  # --websocket-max-message-size for the default server


def pytest_collection_modifyitems(config, items):
    skip_if_unbuilt(items, HERE)


def _with_base_args(start):
    def start_conf(*args, app=APP, cwd=APPS, **kw):
        return start(app, *BASE_ARGS, *args, cwd=cwd, **kw)

    return start_conf


@pytest.fixture(scope="module")
def module_server(module_server_factory):
    """module_server(*args): a server shared by the tests of a module, per argument list."""
    return cached_starter(_with_base_args(module_server_factory))


@pytest.fixture
def server(module_server):
    """The default conformance server: echo app, 32 MiB message limit."""
    return module_server("--websocket-max-message-size", str(BIG))


@pytest.fixture
def fresh_server(start_server):
    """fresh_server(*args, app=..., cwd=..., env=...): a server of this test alone."""
    return _with_base_args(start_server)
