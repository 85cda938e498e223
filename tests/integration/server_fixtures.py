"""The fixture module every suite shares (integration, conformance, faults, process,
deploy): numbered work directories, managers whose processes are always stopped and
whose problems fail the test, per-module server caches, and the skip of a folder's
tests. A conftest imports the fixtures it offers by name; the rest are helpers.
(A uniquely named module: conftest.py is not importable when suites share a session.)"""

import contextlib
import itertools
import os
import shutil

import pytest

from harness import BAYLEAF, ServerManager, short_tmpdir


def numbered_dirs(base, prefix):
    """mk() -> a new empty directory base/<prefix><n>, one per started process."""
    counter = itertools.count()

    def mk():
        d = base / f"{prefix}{next(counter)}"
        d.mkdir()
        return d

    return mk


@contextlib.contextmanager
def closing_all(mgr):
    """Stop all that mgr started, whatever happens; the problems its close_all()
    finds (a deadly signal, a sanitizer report) fail the test."""
    try:
        yield mgr
    finally:
        problems = mgr.close_all()
    if problems:
        pytest.fail("\n\n".join(problems))


def cached_starter(start):
    """get(*args, **kw): one process per argument list, reused; one that an earlier
    test killed is started again (that test will have failed)."""
    cache = {}

    def get(*args, **kw):
        key = args + tuple(sorted(kw.items()))
        s = cache.get(key)
        if s is None or not s.alive():
            s = cache[key] = start(*args, **kw)
        return s

    return get


def mark_folder(items, folder, marker):
    """Add marker to the collected tests that live under folder."""
    for item in items:
        if str(item.fspath).startswith(str(folder)):
            item.add_marker(marker)


def skip_if_unbuilt(items, folder):
    """Skip folder's tests when there is no bayleaf binary to test."""
    if not os.access(BAYLEAF, os.X_OK):
        mark_folder(items, folder, pytest.mark.skip(reason=f"bayleaf binary not built ({BAYLEAF}); set BAYLEAF_BIN"))


@pytest.fixture
def start_server(tmp_path):
    """start_server(app_spec, *args, **kw) -> Server (ServerManager.start) of this test alone."""
    with closing_all(ServerManager(numbered_dirs(tmp_path, "server"))) as mgr:
        yield mgr.start


@pytest.fixture(scope="module")
def module_server_factory(tmp_path_factory):
    """Like start_server but the servers live for the whole test module."""
    with closing_all(ServerManager(lambda: tmp_path_factory.mktemp("server"))) as mgr:
        yield mgr.start


@pytest.fixture
def short_dir():
    """A short /tmp directory (unix socket paths must stay under ~107 bytes)."""
    d = short_tmpdir()
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)
