"""The one INFO line at start-up: version, Python and virtualenv, event loop,
pid, workers, listeners, open-files limit."""

import re
import resource
import sys

import pytest

from harness import bayleaf_only, short_tmpdir

pytestmark = bayleaf_only

LINE = re.compile(r"Bayleaf (?P<version>\S+), Python (?P<python>\S+) \((?P<exe>\S+), "
                  r"(?P<venv>[^)]*)\), event loop (?P<loop>\w+), pid (?P<pid>\d+), "
                  r"(?P<workers>single process|worker of \d+), listening on (?P<listen>.*), "
                  r"open-files limit (?P<nofile>\S+)$", re.M)


def startup_lines(server):
    server.wait_for_text("open-files limit")
    return [m.groupdict() for m in LINE.finditer(server.stderr)]


def expected_nofile():
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # bayleaf raises soft to hard
    if hard == resource.RLIM_INFINITY:
        return None  # then capped at fs.nr_open
    return str(hard)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_one_line_says_what_runs(start_server, loop):
    if loop == "uvloop":
        pytest.importorskip("uvloop")
    sock = short_tmpdir() + "/s.sock"
    server = start_server("echo:app", "--loop", loop, "-u", sock, tcp=True)
    (line,) = startup_lines(server)
    assert line["version"] == "0.1.0"
    assert line["python"] == "%d.%d.%d" % sys.version_info[:3]
    assert line["venv"] == "no virtualenv"
    assert line["loop"] == loop
    assert int(line["pid"]) == server.pid
    assert line["workers"] == "single process"
    assert line["listen"] == "%s, 127.0.0.1:%d" % (sock, server.port) or \
        line["listen"] == "127.0.0.1:%d, %s" % (server.port, sock), line["listen"]
    if expected_nofile() is not None:
        assert line["nofile"] == expected_nofile()


def test_each_worker_says_it_is_one(start_server):
    server = start_server("echo:app", "--workers", "2")
    server.wait_for_text(r"2 worker\(s\) ready")
    lines = startup_lines(server)
    assert len(lines) == 2, server.stderr
    assert {l["workers"] for l in lines} == {"worker of 2"}
    assert len({l["pid"] for l in lines}) == 2 and str(server.pid) not in {l["pid"] for l in lines}
    assert {l["listen"] for l in lines} == {"127.0.0.1:%d" % server.port}
