"""`python -m bayleaf ARGS` runs the bayleaf binary installed with this package
(the same arguments), so a virtualenv's Python finds its own server."""

import os
import sys

from .devserver import BinaryNotFound, find_binary


def main():
    try:
        path = find_binary()
    except BinaryNotFound as exc:
        print("bayleaf: error: %s" % (exc,), file=sys.stderr)
        return 1
    os.execv(path, [path, *sys.argv[1:]])
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main())
