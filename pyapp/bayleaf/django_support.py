"""Django helpers shared by the runserver command, the testing helpers and the
ASGI entry point (bayleaf.django_asgi); importing this module has no side effect."""

import base64
import importlib
import json
import os
import pickle
import signal

from .devserver import ENV_APP_FACTORY, ENV_PARENT_PID, ENV_READY_FD, ENV_SETTINGS, ENV_STATIC

PR_SET_PDEATHSIG = 1


def die_with_parent(environ=os.environ):
    """SIGTERM us when the process named by BAYLEAF_PARENT_PID goes away.

    The parent-death signal belongs to the main thread, which is the one that
    imports the application in bayleaf.  A parent that died before we got here
    is caught by comparing getppid()."""
    wanted = environ.get(ENV_PARENT_PID, "").strip()
    if not wanted:
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the parent's atexit hook remains
        pass
    if str(os.getppid()) != wanted:
        raise RuntimeError(f"the process that started bayleaf (pid {wanted}) has exited")


def apply_settings(environ=os.environ):
    """Apply BAYLEAF_DJANGO_SETTINGS to django.conf.settings (before django.setup())."""
    raw = environ.get(ENV_SETTINGS)
    if not raw:
        return {}
    overrides = json.loads(raw)
    if not isinstance(overrides, dict):
        raise ValueError(f"{ENV_SETTINGS} must be a JSON object")
    from django.conf import settings

    for name, value in overrides.items():
        setattr(settings, name, value)
    return overrides


def import_application(dotted):
    """The object named by a dotted path such as 'mysite.asgi.application'."""
    from django.core.exceptions import ImproperlyConfigured

    module_name, _, attr = dotted.rpartition(".")
    if not module_name or not attr:
        raise ImproperlyConfigured(f"ASGI_APPLICATION {dotted!r} is not a dotted path to an object")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ImproperlyConfigured(
            f"ASGI_APPLICATION: module {module_name!r} has no attribute {attr!r}") from None


def default_application():
    """settings.ASGI_APPLICATION, or Django's ASGI handler when it is not set."""
    from django.conf import settings

    dotted = getattr(settings, "ASGI_APPLICATION", None)
    if not dotted:
        from django.core.handlers.asgi import ASGIHandler

        return ASGIHandler()
    return import_application(dotted)


def build_application(environ=os.environ):
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", environ.get("DJANGO_SETTINGS_MODULE", ""))
    apply_settings(environ)
    django.setup(set_prefix=False)
    factory = environ.get(ENV_APP_FACTORY)
    if factory:
        return pickle.loads(base64.b64decode(factory))()
    app = default_application()
    if environ.get(ENV_STATIC) == "1":
        from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

        app = ASGIStaticFilesHandler(app)
    return app


def signal_ready(environ=os.environ):
    fd = environ.get(ENV_READY_FD)
    if not fd:
        return
    try:
        os.write(int(fd), b"1")
        os.close(int(fd))
    except (OSError, ValueError):
        pass
