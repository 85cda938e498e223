"""``manage.py runserver`` on Bayleaf (with "bayleaf" in INSTALLED_APPS).

This process does what Django's runserver does (checks, banner, autoreloader)
but serves nothing itself: it binds the address, then runs the bayleaf binary
on that socket with bayleaf.django_asgi:application, which loads
settings.ASGI_APPLICATION (behind the static files handler under DEBUG).  On a
code change the autoreloader restarts this process, which stops its bayleaf
child first; the child also dies with it if it is killed.  --noasgi runs
Django's own WSGI development server instead.
"""

import os
import signal
import sys
import threading
from datetime import datetime

from django.apps import apps
from django.conf import settings
from django.contrib.staticfiles.management.commands.runserver import Command as StaticRunserver
from django.core.management import CommandError
from django.core.management.commands.runserver import Command as CoreRunserver
from django.utils import autoreload

import bayleaf
from bayleaf import devserver
from bayleaf.django_support import import_application

# How long bayleaf may take to finish in-flight requests when runserver stops:
# a development server should stop (and restart) quickly.
GRACEFUL_TIMEOUT = 2


class Command(StaticRunserver):
    help = ("Starts the Bayleaf ASGI server for development (HTTP and WebSocket), "
            "restarting it on code changes; also serves static files under DEBUG.")

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--noasgi", action="store_false", dest="use_asgi",
            help="Run Django's WSGI development server instead of Bayleaf.")
        parser.add_argument(
            "--http_timeout", type=int, default=None,
            help="Answer 503 to requests whose response has not started after this many "
                 "seconds (default: no timeout).")
        parser.add_argument(
            "--websocket_handshake_timeout", type=int, default=5,
            help="Seconds the application gets to accept a WebSocket (default: 5).")

    # -- the parts Django's runserver calls -------------------------------------

    def handle(self, *args, **options):
        if options["use_asgi"] and not getattr(settings, "ASGI_APPLICATION", None):
            # As Daphne does: without it, Django's ASGIHandler would answer every
            # WebSocket with 500.
            raise CommandError(
                "You have not set ASGI_APPLICATION, which is needed to run the server "
                "with Bayleaf: point it at your project's ASGI application, e.g. "
                "ASGI_APPLICATION = \"mysite.asgi.application\" (or run --noasgi for "
                "Django's WSGI development server)")
        if options["use_asgi"]:
            try:
                self.bayleaf_binary = devserver.find_binary()
            except devserver.BinaryNotFound as exc:
                raise CommandError(str(exc))
        super().handle(*args, **options)

    def run(self, **options):
        if not options["use_asgi"]:
            return super().run(**options)
        if not options["use_reloader"]:
            return self.inner_run(None, **options)
        if os.environ.get(autoreload.DJANGO_AUTORELOAD_ENV) == "true":
            # The restarted process: the reloader watches files in this thread
            # while inner_run serves in another.
            try:
                autoreload.run_with_reloader(self.inner_run, **options)
            except KeyboardInterrupt:
                pass
            finally:
                # Stopping: a second Ctrl-C must not interrupt the child's shutdown.
                signal.signal(signal.SIGINT, signal.SIG_IGN)
        else:
            rc = devserver.run_reloader_parent()
            sys.exit(128 - rc if rc < 0 else rc)

    def get_handler(self, *args, **options):
        """The WSGI handler of --noasgi (static files only when staticfiles is installed)."""
        if apps.is_installed("django.contrib.staticfiles"):
            return super().get_handler(*args, **options)
        return CoreRunserver.get_handler(self, *args, **options)

    def inner_run(self, *args, **options):
        if not options["use_asgi"]:
            return super().inner_run(*args, **options)
        autoreload.raise_last_exception()
        self.stdout.write("Performing system checks...\n\n")
        self.check(display_num_errors=True)
        self.check_migrations()
        # Import the application here too: errors show with their traceback, and
        # the autoreloader watches its modules (consumers, routing, ...).
        self.load_application()

        try:
            listener = devserver.listen(self.addr, int(self.port), ipv6=self.use_ipv6)
        except OSError as exc:
            self.stderr.write("Error: cannot listen on %s:%s: %s"
                              % (self.addr, self.port, _listen_error(exc)))
            os._exit(1)  # as Django's runserver: this may be a thread
        port = listener.getsockname()[1]
        self.print_banner(port)

        child = devserver.ChildServer(
            self.bayleaf_command(listener.fileno(), options),
            env=devserver.child_env(settings.SETTINGS_MODULE, {
                devserver.ENV_STATIC: "1" if self.serve_static(options) else "0",
            }),
            cwd=os.getcwd(),
            pass_fds=(listener.fileno(),),
        )
        try:
            child.start()
        finally:
            listener.close()
        in_main_thread = threading.current_thread() is threading.main_thread()
        rc = child.serve_forever(handle_signals=in_main_thread)
        self.after_exit(child, rc, reloading=not in_main_thread, options=options)

    # -- ours ---------------------------------------------------------------------

    def load_application(self):
        dotted = getattr(settings, "ASGI_APPLICATION", None)
        if dotted:
            import_application(dotted)

    def serve_static(self, options):
        if not apps.is_installed("django.contrib.staticfiles"):
            return False
        return options.get("use_static_handler", True) and (
            settings.DEBUG or options.get("insecure_serving", False))

    def bayleaf_command(self, fd, options):
        cmd = [self.bayleaf_binary, "--fd", str(fd),
               "-v", str(options.get("verbosity", 1)),
               "--graceful-timeout", str(GRACEFUL_TIMEOUT)]
        if options.get("http_timeout"):
            cmd += ["--http-timeout", str(options["http_timeout"])]
        if options.get("websocket_handshake_timeout") is not None:
            cmd += ["--websocket_connect_timeout", str(options["websocket_handshake_timeout"])]
        root_path = getattr(settings, "FORCE_SCRIPT_NAME", None) or ""
        if root_path:
            cmd += ["--root-path", root_path]
        return cmd + [devserver.APP_SPEC]

    def print_banner(self, port):
        addr = "[%s]" % self.addr if self._raw_ipv6 else self.addr
        quit_command = "CTRL-BREAK" if sys.platform == "win32" else "CONTROL-C"
        self.stdout.write(datetime.now().strftime("%B %d, %Y - %X"))
        self.stdout.write(
            f"Django version {self.get_version()}, using settings {settings.SETTINGS_MODULE!r}\n"
            f"Starting Bayleaf {bayleaf.__version__} ASGI development server at "
            f"{self.protocol}://{addr}:{port}/\n"
            f"Quit the server with {quit_command}.")
        self.stdout.flush()

    def after_exit(self, child, rc, reloading, options):
        """bayleaf exited: we stopped it, it was stopped, or it failed."""
        if child.stop_requested or devserver.exiting():
            if not reloading:
                shutdown_message = options.get("shutdown_message", "")
                if shutdown_message:
                    self.stdout.write(shutdown_message)
                sys.exit(0)
            return
        if rc == 0 or rc < 0:
            # Stopped from outside (a signal sent to bayleaf itself): so do we.
            self.stderr.write("Bayleaf stopped (%s)." % devserver.describe_status(rc))
            if reloading:
                os.kill(os.getpid(), signal.SIGTERM)  # the reloader's handler exits
                return
            sys.exit(0 if rc == 0 else 128 - rc)
        self.stderr.write("Bayleaf exited with %s." % devserver.describe_status(rc))
        if reloading:
            self.stderr.write("Watching for file changes: save a file to restart.")
            return
        sys.exit(rc)


def _listen_error(exc):
    import errno

    reasons = {
        errno.EACCES: "permission denied for that port",
        errno.EADDRINUSE: "the port is already in use",
        errno.EADDRNOTAVAIL: "that address is not one of this machine's",
    }
    return reasons.get(getattr(exc, "errno", None), exc)
