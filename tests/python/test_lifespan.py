import asyncio
import logging

import pytest

from bayleaf.errors import LifespanFailure
from bayleaf.lifespan import Lifespan

LOGGER = logging.getLogger("bayleaf.test")


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 10))


def lifespan_app(on_startup=None, on_shutdown=None, events=None):
    """A well-behaved lifespan app; the hooks return the reply message."""
    events = [] if events is None else events

    async def app(scope, receive, send):
        assert scope["type"] == "lifespan"
        assert scope["asgi"] == {"version": "3.0", "spec_version": "2.0"}
        message = await receive()
        assert message["type"] == "lifespan.startup"
        events.append("startup")
        await send(on_startup(scope) if on_startup else {"type": "lifespan.startup.complete"})
        message = await receive()
        assert message["type"] == "lifespan.shutdown"
        events.append("shutdown")
        await send(on_shutdown() if on_shutdown else {"type": "lifespan.shutdown.complete"})
        events.append("returned")

    return app


def test_startup_complete_and_state_shared():
    events = []

    def on_startup(scope):
        scope["state"]["db"] = "connected"
        return {"type": "lifespan.startup.complete"}

    async def main():
        lifespan = Lifespan(lifespan_app(on_startup, events=events), "auto", LOGGER)
        await lifespan.startup()
        assert lifespan.started
        assert lifespan.state == {"db": "connected"}
        await lifespan.shutdown()
        assert lifespan._task.done()

    run(main())
    assert events == ["startup", "shutdown", "returned"]


@pytest.mark.parametrize("mode", ["auto", "on"])
def test_startup_failed_message(mode):
    def on_startup(scope):
        return {"type": "lifespan.startup.failed", "message": "database is down"}

    async def main():
        lifespan = Lifespan(lifespan_app(on_startup), mode, LOGGER)
        with pytest.raises(LifespanFailure) as info:
            await lifespan.startup()
        assert str(info.value) == "Lifespan startup failed: database is down"
        assert not lifespan.started

    run(main())


async def raising_app(scope, receive, send):
    # What Channels' ProtocolTypeRouter does for a scope type it has no route for.
    raise ValueError("No application configured for scope type 'lifespan'")


def test_app_raising_in_auto_mode_is_ignored(caplog):
    async def main():
        lifespan = Lifespan(raising_app, "auto", LOGGER)
        await lifespan.startup()
        assert not lifespan.started
        await lifespan.shutdown()  # nothing to do

    with caplog.at_level(logging.DEBUG, logger="bayleaf"):
        run(main())
    assert "lifespan not supported" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_app_raising_in_on_mode_fails():
    async def main():
        lifespan = Lifespan(raising_app, "on", LOGGER)
        with pytest.raises(LifespanFailure) as info:
            await lifespan.startup()
        assert "ValueError: No application configured for scope type 'lifespan'" in str(
            info.value
        )

    run(main())


async def returning_app(scope, receive, send):
    return None


def test_app_returning_immediately_in_auto_mode(caplog):
    async def main():
        lifespan = Lifespan(returning_app, "auto", LOGGER)
        await lifespan.startup()
        assert not lifespan.started
        await lifespan.shutdown()

    with caplog.at_level(logging.DEBUG, logger="bayleaf"):
        run(main())
    assert "lifespan not supported" in caplog.text


def test_app_returning_immediately_in_on_mode():
    async def main():
        with pytest.raises(LifespanFailure, match="returned without replying"):
            await Lifespan(returning_app, "on", LOGGER).startup()

    run(main())


def test_off_mode_never_calls_the_app():
    async def app(scope, receive, send):
        raise AssertionError("must not be called")

    async def main():
        lifespan = Lifespan(app, "off", LOGGER)
        await lifespan.startup()
        await lifespan.shutdown()
        assert not lifespan.started

    run(main())


def test_shutdown_failed_is_logged(caplog):
    events = []

    def on_shutdown():
        return {"type": "lifespan.shutdown.failed", "message": "could not flush"}

    async def main():
        lifespan = Lifespan(lifespan_app(on_shutdown=on_shutdown, events=events), "on", LOGGER)
        await lifespan.startup()
        await lifespan.shutdown()  # must not raise

    run(main())
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == ["Lifespan shutdown failed: could not flush"]
    assert events[-1] == "returned"


def test_shutdown_timeout_cancels_app(caplog):
    cancelled = []

    async def app(scope, receive, send):
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        try:
            await asyncio.sleep(60)  # never replies to shutdown
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def main():
        lifespan = Lifespan(app, "auto", LOGGER)
        lifespan.shutdown_timeout = 0.05
        await lifespan.startup()
        await lifespan.shutdown()
        assert lifespan._task.cancelled()

    run(main())
    assert cancelled == [True]
    assert "did not complete within 0.05 seconds" in caplog.text


def test_app_still_receiving_after_shutdown_is_not_waited_for():
    async def app(scope, receive, send):
        while True:  # a loop that never returns, a common (if sloppy) style
            message = await receive()
            await send({"type": message["type"] + ".complete"})

    async def main():
        lifespan = Lifespan(app, "on", LOGGER)
        lifespan.exit_grace = 60  # would hit run()'s 10 s bound if it were waited for
        await lifespan.startup()
        await lifespan.shutdown()
        assert lifespan._task.cancelled()

    run(main())


def test_busy_app_gets_exit_grace():
    finished = []

    async def app(scope, receive, send):
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.complete"})
        await asyncio.sleep(0.05)  # some cleanup after replying
        finished.append(True)

    async def main():
        lifespan = Lifespan(app, "on", LOGGER)
        lifespan.exit_grace = 8  # generous for a loaded machine; under run()'s 10 s bound
        await lifespan.startup()
        await lifespan.shutdown()

    run(main())
    assert finished == [True]


def test_exception_during_shutdown_is_logged(caplog):
    async def app(scope, receive, send):
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        raise RuntimeError("boom at shutdown")

    async def main():
        lifespan = Lifespan(app, "auto", LOGGER)
        await lifespan.startup()
        await lifespan.shutdown()

    run(main())
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.exc_info[1].args == ("boom at shutdown",)


def test_unexpected_messages_are_logged(caplog):
    async def app(scope, receive, send):
        await receive()
        await send({"type": "lifespan.shutdown.complete"})  # wrong: startup phase
        await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.startup.complete"})  # wrong: already replied
        await receive()
        await send({"type": "http.response.start"})  # wrong: not a lifespan message
        await send({"type": "lifespan.shutdown.complete"})

    async def main():
        lifespan = Lifespan(app, "on", LOGGER)
        await lifespan.startup()
        assert lifespan.started
        await lifespan.shutdown()

    run(main())
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 3
    assert "'lifespan.shutdown.complete'" in errors[0]
    assert "'lifespan.startup.complete'" in errors[1]
    assert "'http.response.start'" in errors[2]


def test_cancelled_startup_cancels_app():
    async def app(scope, receive, send):
        await receive()
        await asyncio.sleep(60)  # never replies

    async def main():
        lifespan = Lifespan(app, "on", LOGGER)
        task = asyncio.ensure_future(lifespan.startup())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert lifespan._task.cancelled()

    run(main())


def test_bad_mode():
    with pytest.raises(ValueError):
        Lifespan(returning_app, "sometimes", LOGGER)
