"""Fixtures of the process tests: `procs` starts bayleaf process groups and kills
whatever is left of them (workers included) at teardown."""

import pytest

from proc_support import ProcManager
from server_fixtures import closing_all, numbered_dirs


@pytest.fixture
def procs(tmp_path):
    with closing_all(ProcManager(numbered_dirs(tmp_path, "proc"))) as mgr:
        yield mgr


@pytest.fixture
def sdir(short_dir):
    """The process tests' name for short_dir (a short /tmp directory for unix sockets)."""
    return short_dir
