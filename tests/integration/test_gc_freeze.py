"""After lifespan startup the app's modules are frozen out of the cyclic GC and
its young generation is enlarged (runner.py); BAYLEAF_GC_FREEZE=0 and
--gc-threshold 0 leave the collector as Python sets it."""

import gc

from harness import bayleaf_only

pytestmark = bayleaf_only

PYTHON_DEFAULT = gc.get_threshold()  # the same interpreter as the server's


def test_startup_objects_are_frozen(start_server):
    server = start_server("echo:app")
    frozen = server.get_json("/gc")["frozen"]
    assert frozen > 10_000, frozen  # the interpreter, asyncio, the app: tens of thousands


def test_freezing_can_be_turned_off(start_server):
    server = start_server("echo:app", env={"BAYLEAF_GC_FREEZE": "0"})
    assert server.get_json("/gc")["frozen"] == 0


def test_young_generation_is_enlarged_by_default(start_server):
    server = start_server("echo:app")
    assert server.get_json("/gc")["threshold"] == [20_000, *PYTHON_DEFAULT[1:]]


def test_gc_threshold_sets_the_young_generation(start_server):
    server = start_server("echo:app", "--gc-threshold", "5000")
    assert server.get_json("/gc")["threshold"] == [5_000, *PYTHON_DEFAULT[1:]]


def test_gc_threshold_zero_leaves_python_default(start_server):
    server = start_server("echo:app", "--gc-threshold", "0")
    assert server.get_json("/gc")["threshold"] == list(PYTHON_DEFAULT)



def test_app_that_tunes_the_gc_keeps_its_setting(start_server):
    server = start_server("gc_tuned:app", "--gc-threshold", "5000", "-v", "2")
    assert server.get_json("/gc")["threshold"] == [1234, 5, 5]
    assert "--gc-threshold 5000 not applied" in server.stderr
