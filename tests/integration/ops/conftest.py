"""The operations tests (--metrics, /ready, one log) target bayleaf's own options."""

from pathlib import Path

import pytest

from harness import IS_BAYLEAF, SERVER_KIND
from server_fixtures import mark_folder

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    if not IS_BAYLEAF:
        mark_folder(items, HERE, pytest.mark.skip(reason=f"bayleaf's own options (running against {SERVER_KIND})"))
