"""Fixtures for the WebSocket tests (the parent conftest's fixtures are reused)."""

import os
from pathlib import Path

import pytest

from harness import IS_BAYLEAF, SERVER_KIND
from server_fixtures import mark_folder

from .ws_support import APP

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    """These tests assert bayleaf's strict RFC 6455 and ASGI 2.5 behaviour; the
    reference servers differ in many places (uvicorn 0.17: no close reason, no
    426, permessage-deflate...; Daphne 4/autobahn: other close codes for protocol
    errors, no 1009...). Against them the directory is skipped unless
    BAYLEAF_WS_REFERENCE=1 (useful to check a new test's logic by hand)."""
    if IS_BAYLEAF or os.environ.get("BAYLEAF_WS_REFERENCE") == "1":
        return
    mark_folder(items, HERE, pytest.mark.skip(reason=f"ws/ targets bayleaf (running against {SERVER_KIND}; "
                                                     "BAYLEAF_WS_REFERENCE=1 runs it anyway)"))


@pytest.fixture
def ws_server(shared_server):
    """apps/ws_app.py:app with default options, shared by the tests of one module."""
    return shared_server(APP)
