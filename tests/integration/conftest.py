"""pytest fixtures and hooks for the bayleaf integration tests (helpers live in harness.py,
the fixtures shared with the other suites in server_fixtures.py)."""

import os

import pytest

from harness import BAYLEAF, HERE, IS_BAYLEAF, SERVER_KIND
from server_fixtures import cached_starter, module_server_factory, short_dir, start_server  # noqa: F401


# --------------------------------------------------------------------------
# markers
# --------------------------------------------------------------------------

def pytest_configure(config):
    config.addinivalue_line("markers", "bayleaf_only: behaviour specific to bayleaf (skipped on reference servers)")
    config.addinivalue_line("markers", "skip_server(*kinds, reason=...): skip on the given reference servers")


def pytest_collection_modifyitems(config, items):
    missing = IS_BAYLEAF and not os.access(BAYLEAF, os.X_OK)
    for item in items:
        if not str(item.fspath).startswith(str(HERE)):
            continue
        if missing:
            item.add_marker(pytest.mark.skip(
                reason=f"bayleaf binary not built ({BAYLEAF}); set BAYLEAF_BIN or BAYLEAF_TEST_SERVER=uvicorn"))
            continue
        if not IS_BAYLEAF and item.get_closest_marker("bayleaf_only"):
            item.add_marker(pytest.mark.skip(reason=f"bayleaf-specific (running against {SERVER_KIND})"))
        for m in item.iter_markers("skip_server"):
            if SERVER_KIND in m.args:
                item.add_marker(pytest.mark.skip(
                    reason=m.kwargs.get("reason", f"not applicable to {SERVER_KIND}")))


@pytest.fixture(scope="module")
def _shared_servers(module_server_factory):
    return cached_starter(module_server_factory)


@pytest.fixture
def shared_server(_shared_servers):
    """shared_server(app_spec, *args): a server shared by the tests of one module.
    If an earlier test killed it, a new one is started (that test will have failed)."""
    return _shared_servers


@pytest.fixture
def echo_server(shared_server):
    """apps/echo.py:app, shared by the tests of a module (see that file for the routes)."""
    return shared_server("echo:app")
