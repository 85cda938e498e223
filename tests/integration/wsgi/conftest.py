"""Fixtures for the WSGI tests: servers run from apps/ here; every test ends by
checking the server's log for what wsgiref.validate found (its AssertionError
reaches our log as the app's exception, its warnings as WSGIWarning lines)."""

from pathlib import Path

import pytest

from harness import IS_BAYLEAF
from server_fixtures import mark_folder

HERE = Path(__file__).resolve().parent
APPS = HERE / "apps"

VALIDATOR_TROUBLE = ("AssertionError", "WSGIWarning", "without being closed", "Traceback")


def pytest_collection_modifyitems(config, items):
    if not IS_BAYLEAF:
        mark_folder(items, HERE, pytest.mark.skip(reason="WSGI serving is bayleaf's"))


def assert_validator_clean(server, allow=()):
    """No PEP 3333 violation on either side, as wsgiref.validate reports them
    (allow: words a test expects, such as the Traceback of a view that raises)."""
    text = server.stderr
    for word in VALIDATOR_TROUBLE:
        if word not in allow:
            assert word not in text, f"{word} in the server's log:\n{text[-4000:]}"


@pytest.fixture
def wsgi_server(start_server):
    """wsgi_server(*args): apps/wsgi_app.py:app (validated) alone; checked when the test ends."""
    started = []

    def start(*args, app="wsgi_app:app", env=None, allow=()):
        s = start_server(app, *args, cwd=APPS, env=env)
        started.append((s, allow))
        return s

    yield start
    for s, allow in started:
        assert_validator_clean(s, allow)
