"""After lifespan startup the app's modules are frozen out of the cyclic GC
(runner.py); BAYLEAF_GC_FREEZE=0 leaves the collector as Python sets it."""

from harness import bayleaf_only

pytestmark = bayleaf_only


def test_startup_objects_are_frozen(start_server):
    server = start_server("echo:app")
    frozen = server.get_json("/gc")["frozen"]
    assert frozen > 10_000, frozen  # the interpreter, asyncio, the app: tens of thousands


def test_freezing_can_be_turned_off(start_server):
    server = start_server("echo:app", env={"BAYLEAF_GC_FREEZE": "0"})
    assert server.get_json("/gc")["frozen"] == 0
