import pathlib
import asyncio
import os
import subprocess
import sys

import pytest

from bayleaf.errors import AppLoadError, StartupError
from bayleaf.loader import is_asgi3, load_app, wrap_asgi2

PYAPP = pathlib.Path(__file__).resolve().parents[2] / "pyapp"

ASGI3_SOURCE = """
async def app(scope, receive, send):
    await send({"type": "seen", "scope": scope})
"""


def run_app(app, scope=None):
    """Run an ASGI 3 app once with a fake receive/send; return the sent messages."""
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope or {"type": "http"}, receive, send))
    return sent


def test_simple_app(make_module, app_dir):
    name = make_module(ASGI3_SOURCE)
    app = load_app(f"{name}:app", cwd=str(app_dir))
    assert app is sys.modules[name].app
    assert sys.path[0] == str(app_dir)


def test_cwd_not_inserted_twice(make_module, app_dir):
    name = make_module(ASGI3_SOURCE)
    load_app(f"{name}:app", cwd=str(app_dir))
    load_app(f"{name}:app", cwd=str(app_dir))
    assert sys.path.count(str(app_dir)) == 1


def test_dotted_module_and_attribute(make_module, app_dir):
    name = make_module(
        """
        class Holder:
            pass

        async def app(scope, receive, send):
            pass

        outer = Holder()
        outer.inner = Holder()
        outer.inner.app = app
        """,
        package="pkg",
    )
    app = load_app(f"{name}:outer.inner.app", cwd=str(app_dir))
    assert app is sys.modules[name].app


@pytest.mark.parametrize("spec", ["nocolon", "mod:", ":app", "a:b:c"])
def test_bad_spec(spec):
    with pytest.raises(AppLoadError, match="expected 'module:attribute'"):
        load_app(spec)


def test_missing_module(app_dir):
    with pytest.raises(AppLoadError) as info:
        load_app("bl_no_such_module:app", cwd=str(app_dir))
    assert str(info.value) == (
        "Could not import module 'bl_no_such_module': No module named 'bl_no_such_module'"
    )
    assert isinstance(info.value, StartupError)


def test_missing_parent_package(app_dir):
    with pytest.raises(AppLoadError, match="Could not import module 'bl_nopkg.asgi'"):
        load_app("bl_nopkg.asgi:app", cwd=str(app_dir))


def test_module_importing_missing_dependency(make_module, app_dir):
    name = make_module("import bl_dependency_that_is_not_there\n")
    with pytest.raises(AppLoadError) as info:
        load_app(f"{name}:app", cwd=str(app_dir))
    message = str(info.value)
    assert message.startswith(f"Error while importing module '{name}': ModuleNotFoundError")
    assert "bl_dependency_that_is_not_there" in message
    assert "Could not import" not in message


def test_module_raising_while_importing(make_module, app_dir):
    name = make_module(
        """
        class ImproperlyConfigured(Exception):
            pass

        raise ImproperlyConfigured("The SECRET_KEY setting must not be empty.")
        """
    )
    with pytest.raises(AppLoadError) as info:
        load_app(f"{name}:app", cwd=str(app_dir))
    assert str(info.value) == (
        f"Error while importing module '{name}': "
        "ImproperlyConfigured: The SECRET_KEY setting must not be empty."
    )
    assert "\n" not in str(info.value)
    assert info.value.__cause__ is not None


def test_module_import_error_inside(make_module, app_dir):
    name = make_module("from os import no_such_name\n")
    with pytest.raises(AppLoadError, match="Error while importing module .*ImportError"):
        load_app(f"{name}:app", cwd=str(app_dir))


def test_syntax_error(make_module, app_dir):
    name = make_module("def broken(:\n")
    with pytest.raises(AppLoadError, match="SyntaxError"):
        load_app(f"{name}:app", cwd=str(app_dir))


def test_missing_attribute(make_module, app_dir):
    name = make_module(ASGI3_SOURCE)
    with pytest.raises(AppLoadError) as info:
        load_app(f"{name}:application", cwd=str(app_dir))
    assert str(info.value) == f"Attribute 'application' not found in module '{name}'"


def test_missing_nested_attribute(make_module, app_dir):
    name = make_module(ASGI3_SOURCE)
    with pytest.raises(AppLoadError, match=r"Attribute 'app.nested' not found"):
        load_app(f"{name}:app.nested.deeper", cwd=str(app_dir))


def test_not_callable(make_module, app_dir):
    name = make_module("app = 42\n")
    with pytest.raises(AppLoadError, match="not callable"):
        load_app(f"{name}:app", cwd=str(app_dir))


def test_factory_without_arguments_rejected(make_module, app_dir):
    name = make_module(
        """
        def get_application():
            return None
        """
    )
    with pytest.raises(AppLoadError, match="takes no arguments"):
        load_app(f"{name}:get_application", cwd=str(app_dir))


def test_asgi3_variants():
    async def func(scope, receive, send):
        pass

    class Instance:
        async def __call__(self, scope, receive, send):
            pass

    def sync_returning_coroutine(scope, receive, send):
        return func(scope, receive, send)

    def star_args(*args):
        return func(*args)

    assert is_asgi3(func)
    assert is_asgi3(Instance())
    assert is_asgi3(sync_returning_coroutine)
    assert is_asgi3(star_args)


def test_asgi2_class_is_wrapped(make_module, app_dir):
    name = make_module(
        """
        class App:
            def __init__(self, scope):
                self.scope = scope

            async def __call__(self, receive, send):
                message = await receive()
                await send({"type": "echo", "path": self.scope["path"], "got": message["type"]})
        """
    )
    app = load_app(f"{name}:App", cwd=str(app_dir))
    assert app is not sys.modules[name].App
    assert is_asgi3(app)
    assert run_app(app, {"type": "http", "path": "/x"}) == [
        {"type": "echo", "path": "/x", "got": "http.request"}
    ]


def test_asgi2_function_is_wrapped(make_module, app_dir):
    name = make_module(
        """
        def app(scope):
            async def instance(receive, send):
                await send({"type": "from-asgi2", "scope_type": scope["type"]})
            return instance
        """
    )
    app = load_app(f"{name}:app", cwd=str(app_dir))
    assert app.asgi2_app is sys.modules[name].app
    assert run_app(app) == [{"type": "from-asgi2", "scope_type": "http"}]


def test_asgi2_instance_with_sync_call():
    class Factory:
        def __call__(self, scope):
            async def instance(receive, send):
                await send({"type": "ok"})

            return instance

    assert not is_asgi3(Factory())
    assert run_app(wrap_asgi2(Factory())) == [{"type": "ok"}]


def test_consumer_class_rejected(make_module, app_dir):
    name = make_module(
        """
        class Consumer:
            @classmethod
            def as_asgi(cls):
                pass
        """
    )
    with pytest.raises(AppLoadError, match="as_asgi"):
        load_app(f"{name}:Consumer", cwd=str(app_dir))


DJANGO_APP = """
from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="test-only",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=["channels"],
)

from django.core.asgi import get_asgi_application
from django.http import HttpResponse
from django.urls import path

urlpatterns = [path("", lambda request: HttpResponse(b"hello"))]

application = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter
from channels.generic.websocket import AsyncWebsocketConsumer

router = ProtocolTypeRouter({
    "http": application,
    "websocket": URLRouter([path("ws/", AsyncWebsocketConsumer.as_asgi())]),
})
"""

DJANGO_CHECK = """
import asyncio, logging, sys
sys.path.insert(0, sys.argv[1])
from bayleaf.loader import load_app
from bayleaf.lifespan import Lifespan

name = sys.argv[2]
module = __import__(name)
django_app = load_app(name + ":application")
router = load_app(name + ":router")
# Detected as ASGI 3: returned unwrapped.
assert django_app is module.application, django_app
assert router is module.router, router

async def get(app):
    sent = []
    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}
    async def send(message):
        sent.append(message)
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "GET", "scheme": "http", "path": "/", "raw_path": b"/",
             "query_string": b"", "root_path": "", "headers": [(b"host", b"t")],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    await app(scope, receive, send)
    return sent

async def main():
    for app in (django_app, router):
        lifespan = Lifespan(app, "auto", logging.getLogger("t"))
        await lifespan.startup()  # must not raise: lifespan unsupported
        assert not lifespan.started
        sent = await get(app)
        assert sent[0]["status"] == 200, sent
        assert b"".join(m.get("body", b"") for m in sent[1:]) == b"hello", sent
        await lifespan.shutdown()
    print("OK")

asyncio.run(main())
"""


def test_django_and_channels_apps_are_asgi3(tmp_path):
    # Django settings are process-global: run in a fresh interpreter.
    (tmp_path / "bl_django_app.py").write_text(DJANGO_APP)
    result = subprocess.run(
        [sys.executable, "-c", DJANGO_CHECK, str(PYAPP), "bl_django_app"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "OK"


# -- WSGI detection (loader.is_wsgi, load_target) ------------------------------

def test_wsgi_callables_detected():
    from wsgiref.validate import validator

    from bayleaf.loader import is_wsgi

    def wsgi_fn(environ, start_response):
        return []

    class WsgiApp:
        def __call__(self, environ, start_response):
            return []

    async def asgi_fn(scope, receive, send):
        pass

    class AsgiApp:
        async def __call__(self, scope, receive, send):
            pass

    assert is_wsgi(wsgi_fn) and is_wsgi(WsgiApp()) and is_wsgi(validator(wsgi_fn))
    assert not is_wsgi(asgi_fn) and not is_wsgi(AsgiApp()) and not is_wsgi(WsgiApp)
    assert not is_wsgi(lambda scope: None)  # ASGI 2


def test_load_target_kinds(make_module, app_dir):
    from bayleaf.loader import load_target
    name = make_module("def app(environ, start_response):\n    return []\n")
    app, kind = load_target(f"{name}:app", cwd=str(app_dir))
    assert kind == "wsgi" and app is sys.modules[name].app
    assert load_target(f"{name}:app", "asgi", cwd=str(app_dir))[1] == "asgi"
    name = make_module(ASGI3_SOURCE)
    assert load_target(f"{name}:app", cwd=str(app_dir))[1] == "asgi"
    assert load_target(f"{name}:app", "wsgi", cwd=str(app_dir))[1] == "wsgi"


def test_django_wsgi_handler_detected(tmp_path):
    """Django's WSGIHandler instance, checked in a child (settings are process-wide)."""
    code = ("import django; from django.conf import settings; settings.configure(); "
            "django.setup(); from django.core.wsgi import get_wsgi_application; "
            "from bayleaf.loader import is_wsgi; assert is_wsgi(get_wsgi_application())")
    env = dict(os.environ, PYTHONPATH=str(PYAPP))
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
