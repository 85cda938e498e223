"""Live-server tests on Bayleaf.

``BayleafLiveServerTestCase`` is Channels' ChannelsLiveServerTestCase with its
server process replaced by ``BayleafProcess``: the bayleaf binary, started for
each test on a port of its own, serving the project's ASGI_APPLICATION with the
test databases::

    from bayleaf.testing import BayleafLiveServerTestCase

    class ChatTests(BayleafLiveServerTestCase):
        def test_page(self):
            urlopen(self.live_server_url + "/")      # ws: self.live_server_ws_url

BayleafProcess can also be plugged into any ChannelsLiveServerTestCase
(``ProtocolServerProcess = BayleafProcess``).  Unlike Daphne's process it is
not a fork of the test process: the settings it must share (the databases, the
live server's ALLOWED_HOSTS, DEBUG, and the JSON-serialisable settings of
override_settings/modify_settings) are sent to it; the application factory
Channels gives it is pickled.  As with Daphne, the databases must not be SQLite
in-memory ones (give SQLite a TEST NAME file).
"""

import base64
import json
import logging
import os
import pickle
import select
import signal
import subprocess
import threading
import time
from pathlib import PurePath

from . import devserver

logger = logging.getLogger("bayleaf.testing")


class _Value:
    """Stands for multiprocessing.Value: Channels reads ``process.port.value``."""

    def __init__(self, value=0):
        self.value = value


def _json_default(value):
    if isinstance(value, PurePath):  # BASE_DIR / "db.sqlite3" and the like
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _jsonable(value):
    return json.loads(json.dumps(value, default=_json_default))


def settings_for_child():
    """The settings a server process must share with this test process, as JSON values."""
    from django.conf import UserSettingsHolder, settings
    from django.db import connections

    out = {}
    holders = []
    wrapped = settings._wrapped
    while isinstance(wrapped, UserSettingsHolder):
        holders.append(wrapped)
        wrapped = wrapped.default_settings
    for holder in reversed(holders):  # innermost override last
        for name, value in vars(holder).items():
            if not name.isupper():
                continue
            try:
                out[name] = _jsonable(value)
            except (TypeError, ValueError):
                logger.debug("Setting %s is not sent to the live server (not JSON)", name)
                out.pop(name, None)
    out["DEBUG"] = bool(settings.DEBUG)
    out["ALLOWED_HOSTS"] = list(settings.ALLOWED_HOSTS)
    out["DATABASES"] = _jsonable({alias: dict(connections[alias].settings_dict) for alias in connections})
    return out


class BayleafProcess:
    """The bayleaf binary as a live server, with the interface ChannelsLiveServerTestCase
    expects of DaphneProcess: ``BayleafProcess(host, get_application)``, ``start()``,
    ``ready`` (an Event), ``port.value``, ``terminate()``, ``join()``.

    start() returns once the application is loaded (it raises RuntimeError if the
    server fails to start within startup_timeout seconds).  The server's stderr
    is passed on to ours.
    """

    startup_timeout = 30.0
    verbosity = 0  # bayleaf -v: 0 logs warnings and errors only (no access log)
    extra_args = ()  # more bayleaf options, e.g. ("--websocket_timeout", "5")

    def __init__(self, host, get_application=None, kwargs=None, setup=None, teardown=None):
        self.host = host
        self.get_application = get_application
        self.kwargs = dict(kwargs or {})
        if setup is not None or teardown is not None:
            logger.warning("BayleafProcess: setup/teardown callables are not run "
                           "(the server is not a fork of this process)")
        self.port = _Value(0)
        self.ready = threading.Event()
        self.child = None
        self._stderr_tail = bytearray()
        self._relay = None

    # -- multiprocessing.Process look-alike --------------------------------------

    @property
    def pid(self):
        return self.child.pid if self.child else None

    @property
    def exitcode(self):
        return self.child.poll() if self.child else None

    def is_alive(self):
        return self.child is not None and self.child.poll() is None

    def start(self):
        from django.conf import settings

        binary = devserver.find_binary()
        listener = devserver.listen(self.host, 0)
        self.port.value = listener.getsockname()[1]
        ready_r, ready_w = os.pipe()
        env = devserver.child_env(settings.SETTINGS_MODULE, {
            devserver.ENV_SETTINGS: json.dumps(settings_for_child()),
            devserver.ENV_READY_FD: str(ready_w),
            **self._application_env(),
        })
        cmd = [binary, "--fd", str(listener.fileno()), "-v", str(self.verbosity),
               *self._kwargs_args(), *self.extra_args, devserver.APP_SPEC]
        self.child = devserver.ChildServer(cmd, env, cwd=os.getcwd(),
                                           pass_fds=(listener.fileno(), ready_w),
                                           stderr=subprocess.PIPE)
        try:
            self.child.start()
        except BaseException:
            os.close(ready_r)
            raise
        finally:
            listener.close()
            os.close(ready_w)
        self._relay = threading.Thread(target=self._relay_stderr, args=(self.child.proc.stderr,),
                                       name="bayleaf-stderr", daemon=True)
        self._relay.start()
        try:
            self._wait_ready(ready_r)
        finally:
            os.close(ready_r)
        self.ready.set()

    def _application_env(self):
        """The application factory Channels gives us (make_application with the static
        wrapper), pickled; if it cannot be, the default application with static files."""
        if self.get_application is None:
            return {devserver.ENV_STATIC: "0"}
        try:
            data = pickle.dumps(self.get_application)
        except Exception as exc:  # lambdas, local functions...
            logger.warning("BayleafProcess: cannot send the application factory to the server "
                           "(%s); serving ASGI_APPLICATION with static files", exc)
            return {devserver.ENV_STATIC: "1"}
        return {devserver.ENV_APP_FACTORY: base64.b64encode(data).decode("ascii")}

    def _kwargs_args(self):
        """Daphne server options that Channels or a subclass may pass in kwargs."""
        args = []
        if self.kwargs.get("http_timeout"):
            args += ["--http-timeout", str(self.kwargs["http_timeout"])]
        if self.kwargs.get("proxy_forwarded_address_header"):
            args += ["--proxy-headers"]
        return args

    def _relay_stderr(self, stream):
        for chunk in iter(lambda: stream.read1(65536), b""):
            self._stderr_tail += chunk
            del self._stderr_tail[:-8192]
            try:
                os.write(2, chunk)
            except OSError:
                pass
        stream.close()

    def _wait_ready(self, fd):
        deadline = time.monotonic() + self.startup_timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._fail(f"not ready after {self.startup_timeout:g}s")
            readable, _, _ = select.select([fd], [], [], min(remaining, 0.5))
            if readable:
                if os.read(fd, 1) == b"1":
                    return
                # the pipe closed: bayleaf exited (or closed it) before loading the app
                self.child.wait(5)
                self._fail("it stopped before the application was loaded")

    def _fail(self, why):
        rc = self.child.stop(force_after=0.5, kill_after=2)
        if self._relay is not None:
            self._relay.join(2)
        tail = self._stderr_tail.decode("utf-8", "replace").strip()
        raise RuntimeError(f"Bayleaf did not start ({why}; {devserver.describe_status(rc)})"
                           + (f":\n{tail}" if tail else ""))

    def terminate(self):
        """Ask the server to stop (SIGTERM); join() waits and insists if needed."""
        if self.child is not None:
            self.child.stop_requested = True
            self.child.signal(signal.SIGTERM)

    def kill(self):
        if self.child is not None:
            self.child.signal(signal.SIGKILL)

    def join(self, timeout=None):
        """Wait for the server to exit. After terminate(), it gets a second SIGTERM
        (which closes every connection) after a second and SIGKILL after five;
        otherwise this waits up to `timeout` (None: for ever)."""
        if self.child is None:
            return
        if self.child.stop_requested:
            if self.child.wait(min(devserver.FORCE_AFTER, timeout or devserver.FORCE_AFTER)) is None:
                self.child.stop(force_after=0, kill_after=devserver.KILL_AFTER)
        else:
            self.child.wait(timeout)
        if self._relay is not None and self.child.poll() is not None:
            self._relay.join(2)

    def close(self):
        if self.is_alive():
            raise ValueError("the bayleaf live server is still running")


try:
    from channels.testing import ChannelsLiveServerTestCase
except ImportError:  # pragma: no cover - channels (and daphne) are not installed
    ChannelsLiveServerTestCase = None

if ChannelsLiveServerTestCase is not None:

    class BayleafLiveServerTestCase(ChannelsLiveServerTestCase):
        """ChannelsLiveServerTestCase on Bayleaf: a live server for each test,
        self.live_server_url / self.live_server_ws_url, the test databases."""

        ProtocolServerProcess = BayleafProcess

        def _pre_setup(self):
            try:
                super()._pre_setup()
            except BaseException:
                # Channels leaves its ALLOWED_HOSTS change enabled when the server fails.
                modified = getattr(self, "_live_server_modified_settings", None)
                if modified is not None and getattr(self, "_server_process", None) is not None:
                    if not self._server_process.ready.is_set():
                        modified.disable()
                raise
