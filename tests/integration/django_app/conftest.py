"""Fixtures of the Django integration tests (helpers are in djtools.py)."""

import shutil
import subprocess

import pytest

from djtools import PROJECT_SRC, RunServer, project_env
from harness import PYTHON, free_port


@pytest.fixture
def project(tmp_path):
    """A fresh, writable copy of project/."""
    dest = tmp_path / "project"
    shutil.copytree(PROJECT_SRC, dest, ignore=shutil.ignore_patterns("__pycache__", "*.sqlite3"))
    return dest


@pytest.fixture
def runserver(project, tmp_path):
    """runserver(*args, env=None, port=None, wait=True) -> RunServer; addrport is added."""
    started = []
    counter = iter(range(100))

    def start(*args, env=None, port=None, wait=True, addrport=True):
        port = port or free_port()
        n = next(counter)
        out_path, err_path = tmp_path / f"runserver{n}.out", tmp_path / f"runserver{n}.err"
        cmd = [PYTHON, "manage.py", "runserver", *args]
        if addrport:
            cmd.append(f"127.0.0.1:{port}")
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            proc = subprocess.Popen(cmd, cwd=str(project), env=project_env(env),
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    start_new_session=True)
        server = RunServer(proc, port, project, out_path, err_path)
        started.append(server)
        if wait:
            server.wait_serving()
        return server

    try:
        yield start
    finally:
        for server in started:
            server.kill_all()
    reports = [r for r in (server.sanitizer_report() for server in started) if r]
    if reports:
        pytest.fail("sanitizer report from bayleaf:\n" + "\n\n".join(reports))
