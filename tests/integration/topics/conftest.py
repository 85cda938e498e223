"""Fixtures of the topics tests (the parent conftest's fixtures are reused)."""

import pytest

APP = "topics_app:app"


@pytest.fixture
def topics_server(shared_server):
    """apps/topics_app.py:app with default options, shared by the tests of one module."""
    return shared_server(APP)
