"""Import the ASGI application named on the command line (``module:attr``)."""

import asyncio
import importlib
import inspect
import os
import sys

from .errors import AppLoadError

_SPEC_FORM = "expected 'module:attribute', e.g. 'mysite.asgi:application'"


def load_app(spec: str, cwd: str | None = None):
    """Return the ASGI 3 callable named by `spec`, wrapping ASGI 2 apps.

    Raises AppLoadError with a one-line message on any failure.
    """
    return _as_asgi(spec, _load_object(spec, cwd))


def load_target(spec: str, interface: str = "auto", cwd: str | None = None):
    """(app, kind): the application named by `spec` and "asgi" or "wsgi".

    interface "auto" takes a callable of (environ, start_response) for WSGI
    (Django's WSGIHandler, Flask, a plain function), anything else for ASGI.
    """
    obj = _load_object(spec, cwd)
    if interface == "wsgi" or (interface == "auto" and is_wsgi(obj)):
        if not callable(obj) or inspect.isclass(obj):
            raise AppLoadError(f"'{spec}' is not a WSGI application (it is a "
                               f"{type(obj).__name__}, not a callable instance or function)")
        return obj, "wsgi"
    return _as_asgi(spec, obj), "asgi"


def is_wsgi(app) -> bool:
    """Whether `app` looks like a WSGI callable: app(environ, start_response)."""
    if inspect.isclass(app) or not callable(app):
        return False
    if getattr(app, "_asgi_single_callable", False) or getattr(app, "_asgi_double_callable", False):
        return False
    for cls in type(app).__mro__:  # without importing Django for an app that did not
        if cls.__module__ == "django.core.handlers.wsgi" and cls.__name__ == "WSGIHandler":
            return True
    if getattr(app, "__module__", None) == "wsgiref.validate":
        return True  # validator(app): lint_app(*args, **kw) takes any arguments
    if _is_coroutine_function(app) or _is_coroutine_function(getattr(type(app), "__call__", None)):
        return False
    return _positional_arity(app) == 2  # ASGI takes 3 (or 1: ASGI 2)


def _load_object(spec: str, cwd: str | None):
    module_name, sep, attr_path = spec.partition(":")
    if not sep or not module_name or not attr_path or ":" in attr_path:
        raise AppLoadError(f"Invalid application '{spec}': {_SPEC_FORM}")

    _put_first_on_path(os.getcwd() if cwd is None else cwd)
    module = _import(module_name)
    return _resolve(module, module_name, attr_path)


def _as_asgi(spec: str, app):
    if inspect.isclass(app) and hasattr(app, "as_asgi"):
        # A Channels consumer class used directly: it needs .as_asgi() (or a router).
        raise AppLoadError(
            f"'{spec}' is a consumer class, not an ASGI application; "
            "route to it with ProtocolTypeRouter/URLRouter and Consumer.as_asgi()"
        )
    if not callable(app):
        raise AppLoadError(f"'{spec}' is not callable (it is a {type(app).__name__})")
    if not inspect.isclass(app) and _positional_arity(app) == 0:
        # Typically a factory such as django.core.asgi.get_asgi_application.
        raise AppLoadError(
            f"'{spec}' takes no arguments, so it is not an ASGI application "
            "(is it a factory whose result should be used instead?)"
        )
    return app if is_asgi3(app) else wrap_asgi2(app)


def _put_first_on_path(directory: str) -> None:
    # Like `python -m`, the user's project directory must win over everything else.
    directory = os.path.abspath(directory)
    if not sys.path or os.path.abspath(sys.path[0] or os.curdir) != directory:
        sys.path.insert(0, directory)


def _import(module_name: str):
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if _is_missing(module_name, exc.name):
            raise AppLoadError(f"Could not import module '{module_name}': {exc}") from exc
        raise _import_failed(module_name, exc) from exc
    except Exception as exc:  # SyntaxError, ImproperlyConfigured, ImportError, ...
        raise _import_failed(module_name, exc) from exc


def _is_missing(module_name: str, missing: str | None) -> bool:
    """True when the module not found is `module_name` itself or one of its parent packages
    (as opposed to something the module tried to import)."""
    if not missing:
        return False
    return module_name == missing or module_name.startswith(missing + ".")


def _import_failed(module_name: str, exc: BaseException) -> AppLoadError:
    text = str(exc)
    if isinstance(exc, SyntaxError) and exc.filename:
        text = f"{exc.msg} ({exc.filename}, line {exc.lineno})"  # str() has the bare name
    text = " ".join(text.split()) or "(no message)"  # keep it on one line
    error = AppLoadError(
        f"Error while importing module '{module_name}': {type(exc).__name__}: {text}"
    )
    # The app's own code failed: where, with full paths, at every verbosity.
    error.details = app_traceback(exc)
    return error


def app_traceback(exc: BaseException) -> str:
    """exc's traceback without the import machinery's and the loader's frames."""
    import traceback

    def ours(frame):
        return frame.filename in (__file__, importlib.__file__) or \
            frame.filename.startswith("<frozen importlib")

    te = traceback.TracebackException.from_exception(exc)
    te.stack = traceback.StackSummary.from_list([f for f in te.stack if not ours(f)])
    return "".join(te.format())


def _resolve(module, module_name: str, attr_path: str):
    obj = module
    done = []
    for part in attr_path.split("."):
        done.append(part)
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AppLoadError(
                f"Attribute '{'.'.join(done)}' not found in module '{module_name}'"
            ) from None
        except Exception as exc:  # a property that raised something else
            raise AppLoadError(
                f"Error while reading '{'.'.join(done)}' in module '{module_name}': "
                f"{type(exc).__name__}: {exc}"
            ) from exc
    return obj


def is_asgi3(app) -> bool:
    """Tell ASGI 3 (single callable) from ASGI 2 (double callable) applications."""
    # Explicit hints, as set by asgiref and by wrap_asgi2().
    if getattr(app, "_asgi_single_callable", False):
        return True
    if getattr(app, "_asgi_double_callable", False):
        return False
    # A class is instantiated with the scope: the ASGI 2 style.
    if inspect.isclass(app):
        return False
    if _is_coroutine_function(app):
        return True
    if not inspect.isfunction(app) and not inspect.ismethod(app):
        # An instance, e.g. Django's ASGIHandler or Channels' ProtocolTypeRouter.
        if _is_coroutine_function(getattr(type(app), "__call__", None)):
            return True
    # A plain callable: decide from how many positional arguments it takes.
    arity = _positional_arity(app)
    if arity == 1:
        return False  # app(scope) -> instance
    return True  # 3 (scope, receive, send), *args, or unknown: assume the modern form


def _is_coroutine_function(fn) -> bool:
    if fn is None:
        return False
    if inspect.iscoroutinefunction(fn):
        return True
    # Functions marked by asgiref's markcoroutinefunction on Python < 3.12.
    marker = getattr(asyncio.coroutines, "_is_coroutine", None)
    return marker is not None and getattr(fn, "_is_coroutine", None) is marker


def _positional_arity(fn):
    """Number of positional parameters (bound self excluded), 3 for *args, None if unknown."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    count = 0
    for param in params:
        if param.kind is param.VAR_POSITIONAL:
            return max(count, 3)
        if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            count += 1
    return count


def wrap_asgi2(app2):
    """Adapt an ASGI 2 application (``app2(scope)(receive, send)``) to ASGI 3."""

    async def asgi3(scope, receive, send):
        instance = app2(scope)
        await instance(receive, send)

    asgi3._asgi_single_callable = True
    asgi3.asgi2_app = app2  # for debugging / tests
    return asgi3
