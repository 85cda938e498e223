"""The layering check itself: it passes on the tree, and it catches each kind
of wrong include in a made-up one."""

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import check_includes  # noqa: E402


def make_tree(tmp_path, files):
    for name, text in files.items():
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    (tmp_path / "include" / "bayleaf").mkdir(parents=True, exist_ok=True)
    return tmp_path


def test_the_tree_keeps_its_layers():
    assert check_includes.check(HERE.parents[1]) == []


@pytest.mark.parametrize("path,text,why", [
    ("gateway/py/x.c", "#include <uv.h>\n", "only io/"),
    ("gateway/proto/x.c", "#include <Python.h>\n", "only py/"),
    ("gateway/io/x.c", '#include "bayleaf/py/embed.h"\n', "io may include only"),
    ("gateway/py/x.c", '#include "bayleaf/io/server.h"\n', "py may include only"),
    ("gateway/proto/x.c", '#include "bayleaf/bridge/bridge.h"\n', "proto may include only"),
    ("include/bayleaf/common/x.h", '#include "bayleaf/proto/ws.h"\n', "common may include only"),
    ("gateway/io/x.c", '#include "../py/py_bridge.h"\n', "same folder"),
    ("gateway/io/x.c", '#include "missing.h"\n', "same folder"),
    ("gateway/newlayer/x.c", "\n", "not in a known layer"),
])
def test_a_wrong_include_is_named(tmp_path, path, text, why):
    root = make_tree(tmp_path, {path: text})
    problems = check_includes.check(root)
    assert len(problems) == 1 and why in problems[0], problems


def test_downward_includes_pass(tmp_path):
    root = make_tree(tmp_path, {
        "gateway/io/x.c": '#include <uv.h>\n#include "bayleaf/proto/ws.h"\n#include "x.h"\n',
        "gateway/io/x.h": "",
        "gateway/proc/main.c": '#include "bayleaf/py/embed.h"\n#include "bayleaf/io/server.h"\n',
        "gateway/py/y.c": "#include <Python.h>\n",
    })
    assert check_includes.check(root) == []
