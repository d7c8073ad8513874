"""cfx's exceptions and the one helper that raises them.

Errors subclass builtins so callers can catch them naturally (``except ValueError``). Messages
name the argument, what was expected and what arrived.
"""

from __future__ import annotations

from typing import NoReturn


class CfxError(Exception):
    """Base class for cfx-specific errors."""


class UnknownNameError(CfxError, KeyError):
    """A name (dataset, model, method) that cfx does not know."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class CheckpointError(CfxError, ValueError):
    """A checkpoint that cannot be loaded safely (pickle, missing file, wrong sha256, ...)."""


class NoRecourseError(CfxError, ValueError):
    """Raised only by helpers that need a recourse to exist; explainers return a certificate."""


def check(condition: bool, exc: type[Exception], message: str) -> None:
    """Raise ``exc(message)`` when ``condition`` is false (user input validation, not assert)."""
    if not condition:
        raise exc(message)


def fail(exc: type[Exception], message: str) -> NoReturn:
    """Raise ``exc(message)``; for the ``else:`` branch of option dispatches."""
    raise exc(message)
