"""Make the bayleaf package from pyapp/ importable and provide app-module fixtures."""

import importlib
import itertools
import pathlib
import sys
import textwrap

import pytest

PYAPP = pathlib.Path(__file__).resolve().parents[2] / "pyapp"
if str(PYAPP) not in sys.path:
    sys.path.insert(0, str(PYAPP))

_counter = itertools.count()


@pytest.fixture
def app_dir(tmp_path):
    """A directory for throw-away app modules; sys.path and sys.modules are restored after."""
    saved_path = list(sys.path)
    saved_modules = set(sys.modules)
    yield tmp_path
    sys.path[:] = saved_path
    for name in set(sys.modules) - saved_modules:
        del sys.modules[name]


@pytest.fixture
def make_module(app_dir):
    """make_module(source, package=None) -> unique module name written into app_dir."""

    def make(source, package=None):
        name = f"bl_testapp_{next(_counter)}"
        directory = app_dir
        if package:
            directory = app_dir / package
            directory.mkdir(exist_ok=True)
            (directory / "__init__.py").touch()
        (directory / f"{name}.py").write_text(textwrap.dedent(source))
        importlib.invalidate_caches()
        return f"{package}.{name}" if package else name

    return make
