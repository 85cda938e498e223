"""pytest fixtures and hooks for the bayleaf integration tests (helpers live in harness.py)."""

import os

import pytest

from harness import BAYLEAF, HERE, IS_BAYLEAF, SERVER_KIND, ServerManager


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


@pytest.fixture
def start_server(tmp_path):
    counter = iter(range(1000))

    def mk():
        d = tmp_path / f"server{next(counter)}"
        d.mkdir()
        return d

    mgr = ServerManager(mk)
    try:
        yield mgr.start
    finally:
        problems = mgr.close_all()
    if problems:
        pytest.fail("\n\n".join(problems))


@pytest.fixture(scope="module")
def module_server_factory(tmp_path_factory):
    """Like start_server but the servers live for the whole test module."""
    mgr = ServerManager(lambda: tmp_path_factory.mktemp("server"))
    try:
        yield mgr.start
    finally:
        problems = mgr.close_all()
    if problems:
        pytest.fail("\n\n".join(problems))


@pytest.fixture(scope="module")
def _shared_servers(module_server_factory):
    return {}


@pytest.fixture
def shared_server(_shared_servers, module_server_factory):
    """shared_server(app_spec, *args): a server shared by the tests of one module.
    If an earlier test killed it, a new one is started (that test will have failed)."""

    def get(app_spec, *args):
        key = (app_spec,) + tuple(args)
        s = _shared_servers.get(key)
        if s is None or not s.alive():
            s = _shared_servers[key] = module_server_factory(app_spec, *args)
        return s

    return get


@pytest.fixture
def echo_server(shared_server):
    """apps/echo.py:app, shared by the tests of a module (see that file for the routes)."""
    return shared_server("echo:app")


@pytest.fixture
def short_dir():
    """A short /tmp directory (unix socket paths must stay under ~107 bytes)."""
    import shutil

    from harness import short_tmpdir
    d = short_tmpdir()
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)
