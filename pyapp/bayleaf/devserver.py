"""Running the bayleaf binary as a child of a Python process (Django integration).

Used by ``manage.py runserver`` (bayleaf.management.commands.runserver) and by
bayleaf.testing.  These run in an ordinary ``python`` process, never inside the
bayleaf binary: they bind the listening socket themselves, start
``bayleaf --fd N ... bayleaf.django_asgi:application`` and keep it tied to their
own life:

* the child sets its parent-death signal to SIGTERM (bayleaf.django_asgi reads
  BAYLEAF_PARENT_PID), so it goes away even if this process is SIGKILLed;
* an atexit hook stops every child still running when this process exits
  (autoreload restarts exit through sys.exit(3));
* the child runs in its own session: terminal signals reach this process only,
  which forwards them once (a second SIGINT/SIGTERM makes bayleaf close every
  connection at once).
"""

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

APP_SPEC = "bayleaf.django_asgi:application"

# Environment of the child (read by bayleaf.django_asgi).
ENV_PARENT_PID = "BAYLEAF_PARENT_PID"
ENV_SETTINGS = "BAYLEAF_DJANGO_SETTINGS"
ENV_STATIC = "BAYLEAF_DJANGO_STATIC"
ENV_APP_FACTORY = "BAYLEAF_DJANGO_APP_FACTORY"
ENV_READY_FD = "BAYLEAF_READY_FD"

# Stopping a child: SIGTERM (graceful), after FORCE_AFTER another one (bayleaf
# then closes every connection), after KILL_AFTER SIGKILL.
FORCE_AFTER = 1.0
KILL_AFTER = 5.0


class BinaryNotFound(RuntimeError):
    pass


def pyapp_dir() -> Path:
    """The directory holding this bayleaf package: pyapp/ in a source tree, else
    the site-packages (or dist-packages) it was installed into."""
    return Path(__file__).resolve().parent.parent


def _executable(path) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def _prefix_binary(packages: Path):
    """PREFIX/bin/bayleaf for a package under PREFIX/lib*/python*/{site,dist}-packages
    (a plain `meson install --prefix PREFIX`), else None."""
    if packages.name not in ("site-packages", "dist-packages"):
        return None
    for parent in packages.parents:
        if parent.name.startswith("lib"):
            return parent.parent / "bin" / "bayleaf"
    return None


def installed_binaries():
    """Where pip puts the binary for this Python (beside it, its scripts dir), then
    the bin/ of the prefix this package was installed under."""
    import sysconfig
    found = [Path(sys.executable).parent / "bayleaf", Path(sysconfig.get_path("scripts")) / "bayleaf"]
    prefixed = _prefix_binary(pyapp_dir())
    return found + ([prefixed] if prefixed else [])


def find_binary() -> str:
    """The bayleaf binary: $BAYLEAF_BIN, the build tree beside pyapp/, the one
    installed with this package (beside this Python: a virtualenv's bin/), then PATH."""
    env = os.environ.get("BAYLEAF_BIN", "").strip()
    if env:
        if not _executable(env):
            raise BinaryNotFound(f"BAYLEAF_BIN={env} is not an executable file")
        return os.path.abspath(env)
    here = pyapp_dir()
    candidates = [here.parent / "build" / "bayleaf", *installed_binaries()]
    for candidate in candidates:
        if _executable(candidate):
            return str(candidate)
    found = shutil.which("bayleaf")
    if found:
        return found
    raise BinaryNotFound(
        "cannot find the bayleaf binary: set BAYLEAF_BIN, build it (meson compile -C build) "
        "or put it on PATH; looked in " + ", ".join(str(c) for c in candidates) + " and PATH"
    )


# --------------------------------------------------------------------------
# the child's environment
# --------------------------------------------------------------------------

def _is_interpreter_dir(path: str) -> bool:
    """True for the standard library and site directories, which the child has anyway."""
    prefixes = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    real = os.path.realpath(path)
    for prefix in prefixes:
        if real == prefix or real.startswith(os.path.join(prefix, "lib", "")):
            return True
    name = os.path.basename(real)
    return name in ("site-packages", "dist-packages")


def import_roots() -> list:
    """Directories on this process's sys.path that the child needs too: the
    project (manage.py's directory, --pythonpath, PYTHONPATH), not the stdlib."""
    roots = []
    for entry in sys.path:
        path = os.path.abspath(entry or os.getcwd())
        if not os.path.isdir(path) or _is_interpreter_dir(path) or path in roots:
            continue
        roots.append(path)
    return roots


def child_env(settings_module=None, extra=None) -> dict:
    env = dict(os.environ)
    # RUN_MAIN=true marks Django's autoreloaded child, which bayleaf is not.
    env.pop("RUN_MAIN", None)
    if settings_module:
        env["DJANGO_SETTINGS_MODULE"] = settings_module
    roots = import_roots()
    if roots:
        env["PYTHONPATH"] = os.pathsep.join(roots)
    if sys.prefix != sys.base_prefix and not env.get("VIRTUAL_ENV"):
        env["VIRTUAL_ENV"] = sys.prefix  # a virtualenv's python run without activation
    env[ENV_PARENT_PID] = str(os.getpid())
    env.setdefault("PYTHONUNBUFFERED", "1")
    if extra:
        env.update(extra)
    return env


# --------------------------------------------------------------------------
# listening socket
# --------------------------------------------------------------------------

def listen(host: str, port: int, ipv6: bool = False, backlog: int = 1024) -> socket.socket:
    """A listening TCP socket on host:port (host may be a name); raises OSError."""
    family = socket.AF_INET6 if ipv6 else socket.AF_INET
    infos = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
    last = None
    for fam, kind, proto, _, addr in infos:
        sock = socket.socket(fam, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if fam == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(addr)
            sock.listen(backlog)
            return sock
        except OSError as exc:
            sock.close()
            last = exc
    raise last or OSError(f"cannot listen on {host}:{port}")


# --------------------------------------------------------------------------
# the child process
# --------------------------------------------------------------------------

_children = set()
_children_lock = threading.Lock()
_exiting = threading.Event()


def exiting() -> bool:
    """True once this process has started its exit (the atexit hook runs)."""
    return _exiting.is_set()


@atexit.register
def _stop_children_at_exit():
    _exiting.set()
    with _children_lock:
        children = list(_children)
    if not children:
        return
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            try:
                signal.signal(sig, signal.SIG_IGN)  # nothing may interrupt the cleanup
            except (ValueError, OSError):
                pass
    for child in children:
        child.stop()


class ChildServer:
    """The bayleaf binary serving a listening socket we made."""

    def __init__(self, cmd, env, cwd=None, pass_fds=(), stdout=None, stderr=None):
        self.cmd = list(cmd)
        self.env = env
        self.cwd = cwd
        self.pass_fds = tuple(pass_fds)
        self.stdout = stdout
        self.stderr = stderr
        self.proc = None
        self.stop_requested = False
        self._lock = threading.Lock()

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def start(self):
        self.proc = subprocess.Popen(
            self.cmd, cwd=self.cwd, env=self.env, pass_fds=self.pass_fds,
            stdin=subprocess.DEVNULL, stdout=self.stdout, stderr=self.stderr,
            start_new_session=True)
        with _children_lock:
            _children.add(self)
        return self

    def poll(self):
        rc = self.proc.poll()
        if rc is not None:
            self._forget()
        return rc

    def _forget(self):
        with _children_lock:
            _children.discard(self)

    def signal(self, sig):
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
            except ProcessLookupError:
                pass

    def wait(self, timeout=None):
        """The exit status, or None if still running after `timeout` seconds."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self._forget()
        return rc

    def stop(self, force_after=FORCE_AFTER, kill_after=KILL_AFTER):
        """SIGTERM; SIGTERM again after force_after s; SIGKILL after kill_after s.
        Returns the exit status."""
        with self._lock:
            self.stop_requested = True
            if self.proc is None:
                return None
            start = time.monotonic()
            self.signal(signal.SIGTERM)
            rc = self.wait(force_after)
            if rc is None:
                self.signal(signal.SIGTERM)
                rc = self.wait(max(kill_after - (time.monotonic() - start), 0.1))
            if rc is None:
                self.proc.kill()
                rc = self.wait(10)
            return rc

    def serve_forever(self, handle_signals=False, poll=0.25):
        """Wait for the child to exit and return its status.

        handle_signals (main thread only): SIGINT, SIGTERM and SIGHUP received by
        this process are passed on (SIGHUP as SIGTERM); the child is killed if it
        has not exited KILL_AFTER seconds after the first one.
        """
        received = []
        saved = {}
        if handle_signals:
            def on_signal(signum, frame):
                received.append(signum)

            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                saved[sig] = signal.signal(sig, on_signal)
        kill_at = None
        try:
            while True:
                rc = self.wait(poll)
                if rc is not None:
                    return rc
                while received:
                    sig = received.pop(0)
                    self.stop_requested = True
                    self.signal(signal.SIGINT if sig == signal.SIGINT else signal.SIGTERM)
                    if kill_at is None:
                        kill_at = time.monotonic() + KILL_AFTER
                if kill_at is not None and time.monotonic() >= kill_at:
                    self.proc.kill()
                    kill_at = float("inf")
        finally:
            for sig, handler in saved.items():
                signal.signal(sig, handler)


def describe_status(rc) -> str:
    if rc is None:
        return "still running"
    if rc < 0:
        try:
            return "killed by " + signal.Signals(-rc).name
        except ValueError:
            return f"killed by signal {-rc}"
    return f"exit status {rc}"


# --------------------------------------------------------------------------
# the autoreloader's outer process
# --------------------------------------------------------------------------

def run_reloader_parent(stop_grace=10.0, poll=0.2):
    """What Django's autoreloader does in the outer process (run this program again
    with RUN_MAIN=true until it exits with a status other than 3), except that
    stopping waits for the inner process to shut its server down instead of
    SIGKILLing it: SIGINT (a terminal's Ctrl-C reaches both processes) gives it a
    second before it gets SIGTERM; SIGTERM/SIGHUP are passed on as SIGTERM; it is
    killed after stop_grace seconds. Returns the exit status."""
    from django.utils import autoreload

    env = {**os.environ, autoreload.DJANGO_AUTORELOAD_ENV: "true"}
    received = []

    def on_signal(signum, frame):
        received.append(signum)

    saved = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        while True:
            child = subprocess.Popen(autoreload.get_child_arguments(), env=env, close_fds=False)
            term_at = kill_at = None
            term_sent = False
            while True:
                try:
                    rc = child.wait(timeout=poll)
                    break
                except subprocess.TimeoutExpired:
                    pass
                now = time.monotonic()
                while received:
                    sig = received.pop(0)
                    if sig == signal.SIGINT and term_at is None:
                        term_at = now + 1.0
                    elif sig != signal.SIGINT:
                        term_at = now
                    kill_at = kill_at or now + stop_grace
                if term_at is not None and not term_sent and now >= term_at:
                    child.send_signal(signal.SIGTERM)
                    term_sent = True
                if kill_at is not None and now >= kill_at:
                    child.kill()
                    kill_at = float("inf")
            if kill_at is not None:  # we were told to stop
                return 0 if rc in (0, 3, -signal.SIGTERM, -signal.SIGINT) else rc
            if rc != 3:
                return rc
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
