"""The echo app, imported by a module that tunes the cyclic GC itself."""

import gc

gc.set_threshold(1234, 5, 5)

from echo import app  # noqa: E402,F401
