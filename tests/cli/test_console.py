"""cfx.cli.console: a command-line run's log lines and warnings take lines of their own above
the progress bars."""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from cfx.cli.console import collected, console
from cfx.errors import Notice
from cfx.progress import tqdm


def _run_with_bar(stream: io.StringIO) -> None:
    for i in tqdm(range(3), desc="work", file=stream):
        if i == 1:
            logging.getLogger("cfx.somewhere").warning("careful")
            warnings.warn("a cfx notice", Notice, stacklevel=1)
            warnings.warn("a library's notice", UserWarning, stacklevel=1)
            warnings.warn("a library's news", FutureWarning, stacklevel=1)
            logging.getLogger("cfx.somewhere").info("detail")


@contextmanager
def bare_root() -> Iterator[logging.Logger]:
    """The root logger as a fresh ``cfx`` process has it, without handlers, for the block
    (pytest's capture handlers are added around the test body, so a fixture cannot remove
    them; they are put back after the block)."""
    root = logging.getLogger()
    handlers, level = root.handlers, root.level
    root.handlers = []
    try:
        yield root
    finally:
        root.handlers, root.level = handlers, level


def test_log_lines_and_warnings_start_their_own_line_during_a_bar():
    """Each WARNING line is alone after the bar's carriage return: with a plain handler the
    bar's text came first ('work:  33%|...|WARNING careful')."""
    stream = io.StringIO()
    with bare_root(), console(verbose=False, stream=stream):
        _run_with_bar(stream)
    out = stream.getvalue()
    lines = [line.split("\r")[-1] for line in out.split("\n") if "WARNING" in line]
    assert lines[0] == "WARNING careful"
    assert lines[1] == "WARNING a cfx notice"
    assert lines[2].startswith("WARNING UserWarning: a library's notice (")  # not cfx's
    assert lines[3].startswith("WARNING FutureWarning: a library's news (")
    assert "test_console.py:" in lines[3]
    assert len(lines) == 4
    assert "detail" not in out  # INFO only with --verbose
    assert "3/3" in out  # the bar was drawn again and finished


def test_verbose_shows_info():
    stream = io.StringIO()
    with bare_root(), console(verbose=True, stream=stream):
        _run_with_bar(stream)
    assert "INFO detail" in stream.getvalue()


def test_logging_and_warnings_are_restored_afterwards():
    show = warnings.showwarning
    with bare_root() as root:
        root.setLevel(logging.ERROR)
        with console(verbose=True, stream=io.StringIO()):
            assert root.level == logging.INFO
            assert warnings.showwarning is not show
        assert root.handlers == []
        assert root.level == logging.ERROR
    assert warnings.showwarning is show


def test_a_program_that_configured_logging_keeps_it(monkeypatch: pytest.MonkeyPatch):
    """cfx.cli.main called from a program with its own handlers changes nothing, as
    logging.basicConfig would not."""
    root = logging.getLogger()
    theirs = logging.StreamHandler(io.StringIO())
    monkeypatch.setattr(root, "handlers", [theirs])
    show = warnings.showwarning
    with console(verbose=True, stream=io.StringIO()):
        assert root.handlers == [theirs]
        assert warnings.showwarning is show


def test_collected_keeps_what_a_run_warned_once_each_and_still_shows_it():
    stream = io.StringIO()
    with (
        bare_root(),
        console(verbose=False, stream=stream),
        collected() as notes,
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("always")
        _run_with_bar(stream)
        logging.getLogger("cfx.somewhere").warning("careful")  # said again: kept once
    assert notes == ["careful", "a cfx notice", "a library's notice", "a library's news"]
    shown = stream.getvalue()
    assert "WARNING careful" in shown and "WARNING a cfx notice" in shown  # as before
    assert "detail" not in shown and "detail" not in notes  # INFO is not a warning
    root = logging.getLogger()
    assert not any(type(h).__name__ == "_Collector" for h in root.handlers)  # taken off


def test_collected_alone_still_shows_warnings_and_survives_a_bad_log_call(capsys):
    """With no handler on the root logger, Python prints warnings through logging.lastResort;
    a collecting handler switched that off. A malformed log call is logging's to report, not
    an error that ends the run."""
    with bare_root(), collected() as notes:
        logging.getLogger("cfx.somewhere").warning("careful")
        logging.getLogger("cfx.somewhere").warning("%d items", "x")  # malformed: no raise
    assert notes == ["careful"]
    err = capsys.readouterr().err
    assert "careful" in err and "--- Logging error ---" in err


def test_a_command_keeping_warnings_is_called_with_its_args_only():
    import inspect

    from cfx.cli.saliency_compare import run_compare

    assert list(inspect.signature(run_compare).parameters) == ["args"]
