"""Holding back tagged notices: a caller that gives a notice once for a whole input (rows
numbered in it) silences the per-call copy its workers would log, by the record's tag (the
``extra={"cfx_...": True}`` it was logged with). :func:`is_held` lets a worker skip the work
that only such a notice needs. A hold covers the thread that set it: another thread's
explainer, running at the same time, still gives its own notices."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager


class _DropTagged(logging.Filter):
    def __init__(self, tags: frozenset[str]) -> None:
        super().__init__()
        self.tags = tags
        self.thread = threading.get_ident()  # the thread whose records are held

    def filter(self, record: logging.LogRecord) -> bool:
        # filters run in the logging thread (record.thread is None with logThreads off)
        if threading.get_ident() != self.thread:
            return True
        return not any(getattr(record, tag, False) for tag in self.tags)


def is_held(logger: logging.Logger, tag: str) -> bool:
    """True within a :func:`held` block that drops ``tag`` from ``logger``: a record with that
    tag logged there now would be dropped, so the work of composing it can be skipped."""
    here = threading.get_ident()
    return any(
        isinstance(f, _DropTagged) and tag in f.tags and f.thread == here for f in logger.filters
    )


@contextmanager
def held(loggers: Iterable[logging.Logger], *tags: str) -> Iterator[None]:
    """Within this block ``loggers`` drop the records tagged with any of ``tags`` that this
    thread logs; every other record passes, and the filter is removed on exit (errors
    included)."""
    hold = _DropTagged(frozenset(tags))
    chosen = tuple(loggers)
    for logger in chosen:
        logger.addFilter(hold)
    try:
        yield
    finally:
        for logger in chosen:
            logger.removeFilter(hold)
