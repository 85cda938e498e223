"""The I/O thread carries a name of its own, so that top -H, perf and the
benchmarks tell it from the Python thread (the main thread, named bayleaf)."""

import os

from harness import bayleaf_only

pytestmark = bayleaf_only


def thread_names(pid):
    names = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                names.append(f.read().strip())
        except FileNotFoundError:  # a pool thread that just ended
            pass
    return names


def test_io_thread_is_named(start_server):
    server = start_server("echo:app")
    server.assert_serving()
    names = thread_names(server.pid)
    assert names.count("bayleaf-io") == 1, names
    with open(f"/proc/{server.pid}/comm") as f:
        assert f.read().strip() == "bayleaf"  # the Python thread keeps the program's name
