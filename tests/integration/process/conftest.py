"""Fixtures of the process tests: `procs` starts bayleaf process groups and kills
whatever is left of them (workers included) at teardown."""

import pytest

from proc_support import ProcManager


@pytest.fixture
def procs(tmp_path):
    counter = iter(range(1000))

    def mk():
        d = tmp_path / f"proc{next(counter)}"
        d.mkdir()
        return d

    mgr = ProcManager(mk)
    try:
        yield mgr
    finally:
        problems = mgr.close_all()
    if problems:
        pytest.fail("\n\n".join(problems))
