#!/usr/bin/env python3
"""The gateway's layering, stated once and checked: which layer's files may
include which layer's headers. Run by meson test (tests/layering/meson.build).

A layer is a folder of gateway/ and its headers' folder of include/bayleaf/.
Arrows point down only: a layer includes itself and the layers it lists.
A private header ("conn.h") is included from its own folder only.
Exit status 1, with one line per wrong include, when a rule is broken.
"""

import re
import sys
from pathlib import Path

# layer -> the layers it may include (itself implied)
ALLOWED = {
    "common": set(),
    "proto": {"common"},
    "bridge": {"common", "proto"},
    "io": {"common", "proto", "bridge"},
    "py": {"common", "proto", "bridge"},
    "proc": {"common", "proto", "bridge", "io", "py"},
}
# system headers owned by one layer: nobody else includes them directly
OWNED = {
    "uv.h": "io",
    "Python.h": "py",
    "llhttp.h": "proto",
    "wslay/wslay.h": "proto",
    "zlib.h": "proto",
    "openssl/evp.h": "proto",
}
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)


def layer_of(path, root):
    rel = path.relative_to(root)
    if rel.parts[0] == "gateway":
        return rel.parts[1]
    if rel.parts[:2] == ("include", "bayleaf"):
        return rel.parts[2]
    return None


def check(root):
    problems = []
    files = [p for p in (root / "gateway").rglob("*.[ch]") if "layers" not in p.parts]
    files += list((root / "include" / "bayleaf").rglob("*.h"))
    for path in sorted(files):
        layer = layer_of(path, root)
        if layer not in ALLOWED:
            problems.append(f"{path.relative_to(root)}: not in a known layer ({', '.join(ALLOWED)})")
            continue
        ok = ALLOWED[layer] | {layer}
        for m in INCLUDE.finditer(path.read_text()):
            kind, name = m.groups()
            where = f"{path.relative_to(root)}: #include {kind}{name}"
            if name.startswith("bayleaf/"):
                target = name.split("/")[1]
                if target not in ok:
                    problems.append(f"{where}: {layer} may include only {sorted(ok)}")
            elif kind == '"':
                if "/" in name or not (path.parent / name).exists():
                    problems.append(f"{where}: a private header comes from the same folder")
            elif name in OWNED and OWNED[name] != layer:
                problems.append(f"{where}: only {OWNED[name]}/ includes it")
    return problems


def main():
    root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[2])
    problems = check(root)
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
