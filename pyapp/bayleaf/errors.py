"""Errors that stop the server before it serves anything.

The runner prints ``str(exc)`` of a StartupError as a single line on stderr and
exits with status 1, without a traceback, so messages must be self-contained.
The original exception, when there is one, is kept as ``__cause__`` so that a
verbose run can still show its traceback.
"""


class StartupError(Exception):
    """Base class: a one-line, user-facing reason why the server cannot start."""

    # Text printed before the one-line reason (an import error's traceback).
    details = ""


class AppLoadError(StartupError):
    """The ``module:attr`` application could not be imported or is not an ASGI app."""


class LifespanFailure(StartupError):
    """The application reported or caused a lifespan startup failure."""


class VenvError(StartupError):
    """The virtual environment given to the server is unusable."""
