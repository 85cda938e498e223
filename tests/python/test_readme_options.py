"""README's options table lists every option `bayleaf --help` lists, and no other."""

import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BAYLEAF = os.environ.get("BAYLEAF_BIN") or str(REPO / "build" / "bayleaf")


def help_options():
    out = subprocess.run([BAYLEAF, "--help"], capture_output=True, text=True, timeout=30, check=True).stdout
    return set(re.findall(r"^\s+(?:-\w, )?(--[\w-]+)", out, re.M))


def readme_options():
    usage = (REPO / "README.md").read_text().split("\n## Usage\n", 1)[1].split("\n## ", 1)[0]
    names = set()
    for row in usage.splitlines():
        if row.startswith("| `"):
            names |= set(re.findall(r"(--[\w-]+)", row.split(" | ")[0]))
    return names


@pytest.mark.skipif(not os.access(BAYLEAF, os.X_OK), reason=f"bayleaf not built ({BAYLEAF})")
def test_readme_options_table_matches_help():
    listed, documented = help_options(), readme_options()
    assert len(listed) > 40
    assert sorted(listed - documented) == [], "in --help, missing from README's table"
    assert sorted(documented - listed) == [], "in README's table, not in --help"
