"""Logging setup for the server process (stderr only)."""

import logging
import sys

DEFAULT_FORMAT = "%(asctime)-15s %(levelname)-8s %(message)s"

# verbosity -> (level of the root logger, level of bayleaf's own loggers)
_LEVELS = {
    0: (logging.WARNING, logging.WARNING),
    1: (logging.INFO, logging.INFO),
    2: (logging.INFO, logging.DEBUG),
    3: (logging.DEBUG, logging.DEBUG),
}


class _BayleafHandler(logging.StreamHandler):
    """Marker type so that calling setup() twice replaces our handler instead of adding one."""


def setup(verbosity: int = 1, log_fmt: str | None = None) -> logging.Logger:
    """Send log records to stderr; return the "bayleaf" logger.

    0: warnings and errors, 1: info (default), 2: debug for bayleaf's loggers,
    3: debug for everything (asyncio, django, ...).
    """
    verbosity = min(max(int(verbosity), 0), 3)
    root_level, own_level = _LEVELS[verbosity]

    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _BayleafHandler):
            root.removeHandler(handler)
    handler = _BayleafHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(log_fmt or DEFAULT_FORMAT))
    root.addHandler(handler)
    root.setLevel(root_level)

    logger = logging.getLogger("bayleaf")
    logger.setLevel(own_level)
    return logger


def django_configures_bayleaf() -> bool:
    """Whether Django's LOGGING names a bayleaf logger ("bayleaf" or "bayleaf.*"):
    then the C side's lines go through Python's logging too (C's relay)."""
    conf = sys.modules.get("django.conf")  # never import Django for an app that did not
    if conf is None:
        return False
    try:
        if not conf.settings.configured:
            return False
        loggers = (getattr(conf.settings, "LOGGING", None) or {}).get("loggers") or {}
    except Exception:  # broken settings are the app's business, reported elsewhere
        return False
    return any(name == "bayleaf" or name.startswith("bayleaf.") for name in loggers)


def emit_relayed(lines) -> None:
    """Hands log lines written by C (tuples from _bayleaf.log_relay_take) to
    logging, as records of their own logger, time, thread and source line."""
    for levelno, name, message, pathname, lineno, func, created, thread_name, thread in lines:
        logger = logging.getLogger(name)
        if not logger.isEnabledFor(levelno):
            continue
        record = logger.makeRecord(name, levelno, pathname, lineno, message, None, None, func)
        record.created = created
        record.msecs = int((created - int(created)) * 1000) + 0.0
        record.relativeCreated = (created - logging._startTime) * 1000
        record.threadName = thread_name
        record.thread = thread
        logger.handle(record)


def log_exception(logger: logging.Logger, message: str, exc: BaseException) -> None:
    """Log `message` and the full traceback of `exc` at ERROR level."""
    # "%s" so that a '%' inside message is never taken as a format directive.
    logger.error("%s", message, exc_info=(type(exc), exc, exc.__traceback__))
