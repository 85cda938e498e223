"""pyapp/meson.build names every file of the bayleaf package (meson has no
glob): a module added to pyapp/bayleaf/ without a line there would be missing
from every install."""

import re

from installs import REPO


def test_meson_installs_every_package_file():
    listed = re.findall(r"'(bayleaf/[^']+)'", (REPO / "pyapp" / "meson.build").read_text())
    tree = sorted(str(p.relative_to(REPO / "pyapp")) for p in (REPO / "pyapp" / "bayleaf").rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts)
    assert sorted(listed) == tree
