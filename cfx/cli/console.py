"""What a command-line run prints besides its results: log lines and Python warnings, one per
line, above the progress bars instead of glued to their end.

A plain ``logging`` handler writes its line wherever the cursor is, and during a ``tqdm`` bar
the cursor sits at the bar's end, so ``WARNING ...`` landed inside the bar (the demo's resumed
augmentation run showed it). Here both go through ``tqdm.write``, which clears the bars, prints
the line and draws them again below it.
"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, TextIO

FORMAT = "%(levelname)s %(message)s"


class BarSafeHandler(logging.StreamHandler):
    """A stream handler whose lines go through ``tqdm.write``: a line logged while a progress
    bar is drawn gets a line of its own, and the bar is drawn again under it."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from cfx.progress import tqdm

            tqdm.write(self.format(record), file=self.stream)
            self.flush()
        except RecursionError:  # as logging.StreamHandler does
            raise
        except Exception:
            self.handleError(record)


def log_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: IO[str] | None = None,
    line: str | None = None,
) -> None:
    """``warnings.showwarning`` for a command-line run: the warning as a ``WARNING`` log line.
    cfx's own notices (:class:`cfx.errors.Notice`) read as their message alone; any other
    warning (a library's FutureWarning or UserWarning, say) keeps its category and where it
    was raised."""
    from cfx.errors import Notice

    text = str(message)
    if not issubclass(category, Notice):
        text = f"{category.__name__}: {text} ({filename}:{lineno})"
    logging.getLogger("py.warnings").warning(text)


@contextmanager
def console(verbose: bool, stream: IO[str] | None = None) -> Iterator[None]:
    """Log lines at WARNING (INFO with ``verbose``) and Python warnings to ``stream``
    (default: stderr), written through the progress bars, for the length of the block; then
    logging and warnings are as they were. When the root logger already has handlers (a
    program that configured logging and calls :func:`cfx.cli.main`, or pytest's capture),
    logging is theirs and nothing is changed, as ``logging.basicConfig`` would leave it."""
    root = logging.getLogger()
    if root.handlers:
        yield
        return
    handler = BarSafeHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(logging.Formatter(FORMAT))
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = log_warning
            yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


class _Collector(logging.Handler):
    """Keeps the text of each WARNING (or worse) log line, once, in order."""

    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "py.warnings":  # a Python warning, kept by `collected` itself
            return
        try:
            text = record.getMessage()
        except Exception:  # a malformed log call: said by logging, never the run's end
            self.handleError(record)
            return
        if text not in self.into:
            self.into.append(text)


@contextmanager
def collected() -> Iterator[list[str]]:
    """The warnings of the block, for a report to repeat what the terminal said: yields a
    list that gains the text of each WARNING log line and each Python warning (once each, in
    order), which are still shown as they would be. A report read later (report.md,
    summary.json) so keeps the caveats a run printed, e.g. that its images read as [0, 1]."""
    into: list[str] = []
    handler = _Collector(into)
    root = logging.getLogger()
    # a root without handlers prints warnings through logging.lastResort, which a handler of
    # ours would switch off: keep it on for the block
    fallback = [] if root.handlers or logging.lastResort is None else [logging.lastResort]
    for h in (*fallback, handler):
        root.addHandler(h)
    shown = warnings.showwarning

    def keep(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        text = str(message)
        if text not in into:
            into.append(text)
        shown(message, category, filename, lineno, file, line)

    try:
        with warnings.catch_warnings():
            warnings.showwarning = keep
            yield into
    finally:
        for h in (*fallback, handler):
            root.removeHandler(h)


def keeping_warnings(
    run: Callable[[argparse.Namespace, list[str]], int],
) -> Callable[[argparse.Namespace], int]:
    """A command's ``run(args, notes)`` as ``run(args)``: ``notes`` is :func:`collected`'s
    list, which the command writes into its outputs (``warnings`` in its JSON, a list at the
    top of its markdown; :func:`warnings_markdown`)."""

    @functools.wraps(run)
    def wrapped(args: argparse.Namespace) -> int:
        with collected() as notes:
            return run(args, notes)

    del wrapped.__wrapped__  # inspect.signature: (args), as argparse calls it
    return wrapped


def warnings_markdown(notes: list[str]) -> list[str]:
    """The lines a markdown report opens its body with when the run warned (none if not)."""
    if not notes:
        return []
    return ["**Warnings of this run:**", "", *[f"- {n}" for n in notes], ""]


__all__ = [
    "BarSafeHandler",
    "collected",
    "console",
    "keeping_warnings",
    "log_warning",
    "warnings_markdown",
]
