import logging

import pytest

from bayleaf import logs


@pytest.fixture(autouse=True)
def restore_logging():
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, logging.getLogger("bayleaf").level)
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    logging.getLogger("bayleaf").setLevel(saved[2])


@pytest.mark.parametrize(
    "verbosity, root_level, own_level",
    [
        (0, logging.WARNING, logging.WARNING),
        (1, logging.INFO, logging.INFO),
        (2, logging.INFO, logging.DEBUG),
        (3, logging.DEBUG, logging.DEBUG),
        (9, logging.DEBUG, logging.DEBUG),
    ],
)
def test_levels(verbosity, root_level, own_level):
    logger = logs.setup(verbosity)
    assert logger.name == "bayleaf"
    assert logging.getLogger().level == root_level
    assert logger.level == own_level


def test_setup_twice_keeps_one_handler():
    logs.setup(1)
    logs.setup(2, "%(message)s")
    ours = [h for h in logging.getLogger().handlers if isinstance(h, logs._BayleafHandler)]
    assert len(ours) == 1
    assert ours[0].formatter._fmt == "%(message)s"


def test_log_exception_has_traceback(capsys):
    logger = logs.setup(1, "%(levelname)s %(message)s")
    try:
        raise KeyError("k")
    except KeyError as exc:
        logs.log_exception(logger, "failed at 100%", exc)
    err = capsys.readouterr().err
    assert err.startswith("ERROR failed at 100%\nTraceback")
    assert "KeyError: 'k'" in err
