"""The ASGI lifespan protocol (spec 2.0): startup and shutdown events for the app.

The app runs in one task for the whole process; its receive() reads from a queue
and its send() resolves the future of the phase we are waiting on.
"""

import asyncio
import logging

from .errors import LifespanFailure
from .logs import log_exception

# Phases, and the message types the app may send in each.
_IDLE, _STARTING, _RUNNING, _STOPPING, _DONE = "idle", "starting", "running", "stopping", "done"
_VALID_SENDS = {
    _STARTING: ("lifespan.startup.complete", "lifespan.startup.failed"),
    _STOPPING: ("lifespan.shutdown.complete", "lifespan.shutdown.failed"),
}
_EXITED = "exited"  # outcome when the app task ended before replying


class Lifespan:
    shutdown_timeout = 30.0  # seconds to wait for lifespan.shutdown.complete
    exit_grace = 1.0  # seconds the app task gets to return after its last reply

    def __init__(self, app, mode: str = "auto", logger: logging.Logger | None = None):
        if mode not in ("auto", "on", "off"):
            raise ValueError(f"lifespan mode must be auto, on or off, not {mode!r}")
        self.app = app
        self.mode = mode
        self.logger = logger or logging.getLogger("bayleaf.lifespan")
        self.state = {}  # copied by the runner into each HTTP/WebSocket scope
        self.started = False  # True once lifespan.startup.complete was received
        self._phase = _IDLE
        self._queue = None
        self._reply = None  # future: (outcome, message text or exception)
        self._task = None
        self._blocked = None  # event: the app waits in receive() on an empty queue

    @property
    def task(self):
        """The app's lifespan task (None before startup or in "off" mode)."""
        return self._task

    async def startup(self) -> None:
        """Run lifespan startup; raise LifespanFailure if the app reports failure."""
        if self.mode == "off":
            return
        loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self._blocked = asyncio.Event()
        self._reply = loop.create_future()
        self._phase = _STARTING
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }
        self._task = loop.create_task(self._run(scope), name="bayleaf-lifespan")
        self._queue.put_nowait({"type": "lifespan.startup"})
        try:
            outcome, detail = await self._reply
        except asyncio.CancelledError:
            await self._stop_task(grace=0)
            raise

        if outcome == "lifespan.startup.complete":
            self._phase = _RUNNING
            self.started = True
            self.logger.debug("Lifespan startup complete")
            return
        self._phase = _DONE
        if outcome == "lifespan.startup.failed":
            await self._stop_task(self.exit_grace)
            raise LifespanFailure(_with_detail("Lifespan startup failed", detail))

        # The app ended without replying: it does not implement lifespan.
        if self.mode == "on":
            if detail is None:
                reason = "the application returned without replying to lifespan.startup"
            else:
                reason = f"{type(detail).__name__}: {detail}"
            raise LifespanFailure(_with_detail("Lifespan startup failed", reason))
        if detail is None:
            self.logger.info("ASGI lifespan not supported by the application (it returned)")
        else:
            self.logger.info(
                "ASGI lifespan not supported by the application (%s: %s)",
                type(detail).__name__, detail,
            )

    async def shutdown(self) -> None:
        """Run lifespan shutdown if startup completed; never raises on app failure."""
        grace = self.exit_grace
        try:
            if not self.started or self._task is None or self._task.done():
                return
            self._reply = asyncio.get_running_loop().create_future()
            self._phase = _STOPPING
            self._queue.put_nowait({"type": "lifespan.shutdown"})
            try:
                outcome, detail = await asyncio.wait_for(
                    asyncio.shield(self._reply), self.shutdown_timeout
                )
            except asyncio.TimeoutError:
                self.logger.error(
                    "Lifespan shutdown did not complete within %s seconds", self.shutdown_timeout
                )
                grace = 0  # it already had shutdown_timeout
                return
            if outcome == "lifespan.shutdown.complete":
                self.logger.debug("Lifespan shutdown complete")
            elif outcome == "lifespan.shutdown.failed":
                self.logger.error("%s", _with_detail("Lifespan shutdown failed", detail))
            elif detail is None:
                self.logger.warning(
                    "The application returned without replying to lifespan.shutdown"
                )
            # else: the exception was already logged by _run().
        finally:
            self._phase = _DONE
            await self._stop_task(grace)

    async def _run(self, scope) -> None:
        error = None
        try:
            await self.app(scope, self._receive, self._send)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = exc
            if self._phase == _STARTING and not self._reply.done():
                # Usually "lifespan not supported"; startup() decides how to report it.
                self.logger.debug("Lifespan application raised during startup", exc_info=exc)
            else:
                log_exception(self.logger, "Exception in the ASGI lifespan application", exc)
        finally:
            if self._reply is not None and not self._reply.done():
                self._reply.set_result((_EXITED, error))

    async def _receive(self):
        if self._queue.empty():
            self._blocked.set()
        try:
            return await self._queue.get()
        finally:
            self._blocked.clear()

    async def _send(self, message) -> None:
        msg_type = message.get("type") if isinstance(message, dict) else None
        if msg_type not in _VALID_SENDS.get(self._phase, ()) or self._reply.done():
            self.logger.error(
                "Unexpected ASGI lifespan message %r (server phase: %s)",
                msg_type if msg_type is not None else message, self._phase,
            )
            return
        self._reply.set_result((msg_type, message.get("message", "")))

    async def _stop_task(self, grace: float) -> None:
        """Let the app task finish on its own for `grace` seconds, then cancel it."""
        task = self._task
        if task is None or task.done():
            return
        # No more events will be sent: an app already waiting in receive()
        # would wait forever, so only a busy app gets the grace period.
        if grace > 0 and not self._blocked.is_set():
            blocked = asyncio.ensure_future(self._blocked.wait())
            try:
                await asyncio.wait(
                    {task, blocked}, timeout=grace, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                blocked.cancel()
        if not task.done():
            task.cancel()
            # asyncio.wait never raises the task's own CancelledError, so a
            # cancellation of *this* coroutine still propagates.
            await asyncio.wait({task}, timeout=max(grace, 1.0))
            if not task.done():
                self.logger.warning("The lifespan application ignored cancellation")


def _with_detail(prefix: str, detail) -> str:
    text = " ".join(str(detail or "").split())
    return f"{prefix}: {text}" if text else prefix
