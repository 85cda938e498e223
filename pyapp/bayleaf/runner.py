"""The Python thread's main: load the app, run lifespan, serve until drained.

Called by the C binary (gateway/py/py_embed.c) after it has bound the listeners.
The I/O thread is started only once lifespan startup has completed.
"""

import asyncio
import faulthandler
import gc
import os
import sys
import weakref

import _bayleaf

from . import errors, lifespan, loader, logs, watchdog, wsgi


def _make_loop(kind):
    if kind in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if kind == "uvloop":
                raise errors.StartupError("--loop uvloop: uvloop is not installed " +
                                          _install_hint("uvloop", "python3-uvloop"))
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def _install_hint(package, debian_package):
    """How to install package for the Python running here: pip in a virtualenv
    (apt-get cannot reach one), apt-get for Debian's own Python."""
    if sys.prefix != sys.base_prefix:
        return "in the virtualenv %s (%s/bin/pip install %s)" % (sys.prefix, sys.prefix, package)
    if sys.base_prefix == "/usr":
        return "(apt-get install %s)" % (debian_package,)
    return "for %s (%s -m pip install %s)" % (sys.executable, sys.executable, package)


def _spawner(loop, app, log, own):
    """Returns spawn(scope, exchange), called from C for every new scope; each
    task it starts is added to `own` (a WeakSet: the app's tasks)."""
    create_task = loop.create_task
    remember = own.add

    async def run(scope, exchange, receive, send):
        try:
            await app(scope, receive, send)
        except BaseException as exc:  # the server outlives every app error
            # SystemExit and KeyboardInterrupt included (as uvicorn does): a
            # sys.exit() in a view ends that request (500, or 1011), not the
            # server. Signals never raise here: they belong to the I/O thread.
            if isinstance(exc, _bayleaf.ClientDisconnected):
                # The client left mid-response: its business, not an app bug.
                log.info("Client gone during %s %s: %s", scope.get("method", ""),
                         scope.get("path", ""), exc)
            elif not isinstance(exc, asyncio.CancelledError):
                logs.log_exception(log, "Exception inside application: %r" % (exc,), exc)
            exchange.finish(True)
        else:
            exchange.finish(False)

    def spawn(scope, exchange, receive, send):
        task = create_task(run(scope, exchange, receive, send))  # kept by the exchange (close timeout)
        remember(task)
        return task

    return spawn


def _close_timeout_handler(log, timeout):
    """Cancels an app still running --application-close-timeout after its client left."""

    def on_close_timeout(task):
        if not task.done():
            log.warning("Application did not exit %gs after the client disconnected: "
                        "cancelling it", timeout)
            task.cancel()

    return on_close_timeout


# As the interpreter set it, before the app was imported: an app that tunes the
# collector itself keeps its own setting.
_PYTHON_GC_THRESHOLD = gc.get_threshold()


def _settle_gc(threshold, log):
    """Startup is over: set the cyclic garbage collector up for serving."""
    if os.environ.get("BAYLEAF_GC_FREEZE", "1") != "0":
        # The app and its imports are loaded for good: keep them out of the cyclic
        # collector's way, so its full passes scan what requests create, not all
        # of Django (about 7% more Django requests/s, half the p99).
        gc.collect()
        gc.freeze()
    if threshold > 0 and gc.get_threshold() != _PYTHON_GC_THRESHOLD:
        log.info("The app set the GC thresholds to %s: --gc-threshold %d not applied",
                 gc.get_threshold(), threshold)
    elif threshold > 0:
        # A group_send to N consumers makes a few tasks, futures and coroutines
        # per member that live until the broadcast is delivered. With Python's
        # young generation of 700 they are scanned there many times per
        # broadcast, and promoted for the older passes to scan again: a fifth of
        # the Python thread for 1,000 subscribers, collecting nothing. A larger
        # one lets them die by reference counting first; cyclic garbage waits
        # for at most that many new containers (a few MB).
        _, older, oldest = gc.get_threshold()
        gc.set_threshold(threshold, older, oldest)


def _relay_c_lines(loop):
    """With Django's LOGGING configuring bayleaf's loggers, C's lines (the I/O
    thread's, signals) go through it too; returns the stop function."""
    if not logs.django_configures_bayleaf():
        return lambda: None
    fd = _bayleaf.log_relay_start()
    loop.add_reader(fd, lambda: logs.emit_relayed(_bayleaf.log_relay_take()))

    def stop():
        loop.remove_reader(fd)
        logs.emit_relayed(_bayleaf.log_relay_take())
        _bayleaf.log_relay_stop()

    return stop


async def _serve(app, options, log, wsgi_app=None):
    loop = asyncio.get_running_loop()
    stop_relay = _relay_c_lines(loop)
    try:
        await _serve_app(app, options, log, loop, wsgi_app)
    finally:
        stop_relay()


async def _serve_app(app, options, log, loop, wsgi_app):
    life = lifespan.Lifespan(app, options["lifespan"], log)
    await life.startup()
    drained = loop.create_future()

    def on_drained():
        if not drained.done():
            drained.set_result(None)

    close_timeout = float(options.get("application_close_timeout", 10))
    own = weakref.WeakSet()
    _bayleaf.setup(loop=loop, spawn=_spawner(loop, app, log, own), on_drained=on_drained,
                   state=life.state if life.started else None,
                   root_path=options["root_path"], app_close_timeout=close_timeout,
                   on_close_timeout=_close_timeout_handler(log, close_timeout))
    pool = None
    if wsgi_app is not None:
        pool = wsgi.Pool(wsgi_app, int(options.get("wsgi_threads", 1)), options, log)
        if app is not wsgi.refuse_websocket and sys.getswitchinterval() == 0.005:
            # Consumers share the GIL with the views: a view gives it up after
            # the switch interval, 5 ms by default. At 0.5 ms the Channels echo
            # p99 under the view load fell from 40-180 ms to 10 ms, views/s kept.
            sys.setswitchinterval(0.0005)
        pool.start()
    _settle_gc(int(options.get("gc_threshold", 0)), log)
    fd = _bayleaf.fileno()
    loop.add_reader(fd, _bayleaf.drain)
    _bayleaf.start_io()
    dog = watchdog.Watchdog(loop, float(options.get("loop_watchdog", 5)), log,
                            beat=_bayleaf.loop_beat if options.get("metrics") else None)
    dog.start()
    try:
        await drained
    finally:
        dog.stop()
        await _cancel_leftover_tasks(log, options.get("application_close_timeout", 10),
                                     own, keep=life.task)
        await life.shutdown()
        loop.remove_reader(fd)
        if pool is not None:
            pool.stop(float(options.get("application_close_timeout", 10)))
        _bayleaf.stop_io()


async def _cancel_leftover_tasks(log, timeout, own, keep=None):
    """Apps still running once every connection is gone get cancelled. Only the
    tasks started for connections (`own`) are the app's to report; others (a
    channel layer's reader, the app's background work) are cancelled quietly."""
    skip = {asyncio.current_task(), keep}
    tasks = [t for t in asyncio.all_tasks() if t not in skip and not t.done()]
    if not tasks:
        return
    apps = [t for t in tasks if t in own]
    if apps:
        await asyncio.wait(apps, timeout=min(timeout, 1.0))
    pending = [t for t in tasks if not t.done()]
    for task in pending:
        task.cancel()
    stuck = [t for t in pending if t in own]
    if stuck:
        log.warning("Cancelled %d application task(s) still running at shutdown", len(stuck))
        await asyncio.wait(stuck, timeout=timeout)
    others = [t for t in pending if t not in own]
    if others:
        # Not the app's to wait for: a moment to unwind, then lifespan shutdown.
        log.debug("Cancelled %d background task(s) at shutdown", len(others))
        await asyncio.wait(others, timeout=min(timeout, 1.0))


def _size_thread_pool(loop):
    """ASGI_THREADS sizes the pool that runs sync code (as in Daphne)."""
    threads = os.environ.get("ASGI_THREADS")
    if threads:
        from concurrent.futures import ThreadPoolExecutor
        loop.set_default_executor(ThreadPoolExecutor(max_workers=int(threads)))


_IN_MEMORY_LAYER = "channels.layers.InMemoryChannelLayer"


def _warn_in_memory_layer(log, workers):
    """With several workers, Channels' in-memory layer splits groups per process."""
    if workers <= 1:
        return
    conf = sys.modules.get("django.conf")  # never import Django for an app that did not
    if conf is None:
        return
    try:
        if not conf.settings.configured:
            return
        layers = getattr(conf.settings, "CHANNEL_LAYERS", None) or {}
        backend = (layers.get("default") or {}).get("BACKEND")
    except Exception:  # broken settings are the app's business, reported elsewhere
        return
    if backend == _IN_MEMORY_LAYER:
        log.warning("CHANNEL_LAYERS uses InMemoryChannelLayer with --workers %d: groups and "
                    "channel messages do not cross worker processes; use channels_redis "
                    "(channels_redis.core.RedisChannelLayer) or run one worker", workers)


def _log_startup(log, options, loop):
    """One line that says what runs: for a bug report, or a deploy gone wrong."""
    import resource
    from . import __version__
    if sys.prefix != sys.base_prefix:
        where = "virtualenv %s" % sys.prefix
    else:
        where = "no virtualenv"
    kind = type(loop).__module__.split(".")[0]
    loop_name = "uvloop" if kind == "uvloop" else "asyncio"
    workers = int(options.get("workers", 0))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = "unlimited" if soft == resource.RLIM_INFINITY else str(soft)
    log.info("Bayleaf %s, Python %s (%s, %s), event loop %s, pid %d, %s, listening on %s, "
             "open-files limit %s", __version__, sys.version.split()[0], sys.executable, where,
             loop_name, os.getpid(),
             ("worker of %d" % workers) if workers > 0 else "single process",
             options.get("listeners") or "(none)", limit)


def _register_stack_dump(signum):
    """When stopping runs past its deadline, the I/O thread asks for every
    thread's stack with this signal (gateway/io/server.c): faulthandler writes it
    without the GIL, then chains to the C handler that waits for it."""
    if signum:
        try:
            faulthandler.register(signum, file=sys.stderr, all_threads=True, chain=True)
        except (AttributeError, OSError, RuntimeError, ValueError):  # no usable stderr
            pass


def _report(exc):
    """A startup error: its details (a traceback), then one line."""
    if exc.details:
        sys.stderr.write(exc.details)
    print("bayleaf: error: %s" % (exc,), file=sys.stderr)


def _load_apps(options, log):
    """(asgi_app, wsgi_app): the positional app, detected as WSGI or ASGI
    (--interface), and --wsgi's. HTTP goes to the WSGI one when there is one."""
    app, kind = loader.load_target(options["app"], options.get("interface", "auto"))
    wsgi_app = app if kind == "wsgi" else None
    spec = options["app"] if kind == "wsgi" else None
    if options.get("wsgi"):
        if wsgi_app is not None:
            raise errors.StartupError("--wsgi %s: %s is a WSGI application already; name the "
                                      "ASGI one (WebSocket) as the positional application"
                                      % (options["wsgi"], options["app"]))
        spec = options["wsgi"]
        wsgi_app, _ = loader.load_target(spec, "wsgi")
    if kind == "wsgi":
        app = wsgi.refuse_websocket
        options["lifespan"] = "off"  # no ASGI app to tell
        log.info("%s is a WSGI application: serving HTTP with %d WSGI thread(s); WebSocket "
                 "handshakes are refused", spec, int(options.get("wsgi_threads", 1)))
    elif wsgi_app is not None:
        log.info("Serving HTTP with the WSGI application %s (%d thread(s)), WebSocket with %s",
                 spec, int(options.get("wsgi_threads", 1)), options["app"])
    return app, wsgi_app


def main(options):
    """Returns the process exit status."""
    log = logs.setup(options["verbosity"], options.get("log_fmt"))
    _register_stack_dump(options.get("stack_signal", 0))
    try:
        app, wsgi_app = _load_apps(options, log)
        loop = _make_loop(options["loop"])
    except errors.StartupError as exc:
        _report(exc)
        return 1
    _log_startup(log, options, loop)
    _warn_in_memory_layer(log, int(options.get("workers", 0)))
    asyncio.set_event_loop(loop)
    _size_thread_pool(loop)
    try:
        loop.run_until_complete(_serve(app, options, log, wsgi_app))
    except errors.StartupError as exc:
        _report(exc)
        return 1
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()
    return 0
