"""What a command-line run prints besides its results: log lines and Python warnings, one per
line, above the progress bars instead of glued to their end.

A plain ``logging`` handler writes its line wherever the cursor is, and during a ``tqdm`` bar
the cursor sits at the bar's end, so ``WARNING ...`` landed inside the bar (the demo's resumed
augmentation run showed it). Here both go through ``tqdm.write``, which clears the bars, prints
the line and draws them again below it.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

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


__all__ = ["BarSafeHandler", "console", "log_warning"]
