"""cfx's exceptions and the helpers that raise them.

Errors subclass builtins so callers can catch them naturally (``except ValueError``). Messages
name the argument, what was expected and what arrived.
"""

from __future__ import annotations

import math
import os
from numbers import Integral, Real
from pathlib import Path
from typing import NoReturn


class CfxError(Exception):
    """Base class for cfx-specific errors."""


class UnknownNameError(CfxError, KeyError):
    """A name (dataset, model, method) that cfx does not know."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class CheckpointError(CfxError, ValueError):
    """A checkpoint that cannot be loaded safely (pickle, missing file, wrong sha256, ...)."""


class ForeignRunError(CfxError, ValueError):
    """A run folder holds another run's results (other settings, inputs or models), which a
    resume must not mix with this run's."""


class DivergedError(CfxError, FloatingPointError):
    """Training whose loss stopped being a finite number: every later step (and the model
    written at the end) would be NaN."""


class LabelsPending(CfxError, RuntimeError):
    """Some images of a labelling task have no label yet; label them, then run again."""

    def __init__(self, directory: Path, pending: int, total: int) -> None:
        self.directory = directory
        self.pending = pending
        self.total = total
        super().__init__(
            self.message("the same `cfx augment` command, or the same `augment(...)` call")
            + f" (in Python: cfx.label.serve({str(directory)!r}) runs the page; "
            "cfx.label.record_label(task, id, label) records one answer)"
        )

    def __reduce__(self) -> tuple[type, tuple[Path, int, int]]:  # pickled with its fields
        return type(self), (self.directory, self.pending, self.total)

    def message(self, again: str) -> str:
        """What waits and how to label it, ending "then run again: ``again`` goes on from
        there" (the command line says only its command)."""
        d = self.directory
        return (
            f"{self.pending} of {self.total} images wait for labels in {d}: label them with "
            f"`cfx label serve {d}` (or `cfx label export {d} --csv FILE`, fill it in, "
            f"`cfx label import {d} --csv FILE`), then run again: {again} goes on from there"
        )


class NoRecourseError(CfxError, ValueError):
    """Not raised by cfx (explainers return a certificate instead); kept so that code which
    names it still imports."""


class Notice(UserWarning):
    """cfx's warning about input that works but looks wrong (a model ending in a softmax,
    images in [0, 1], a constraint that unlocks an immutable feature); a ``UserWarning``, so
    filters and ``pytest.warns(UserWarning)`` catch it as before. The command line prints it
    as its message alone, and any other warning with its category and origin."""


def user_stacklevel() -> int:
    """The ``stacklevel`` that points a warning given by the function calling this one at
    the first caller outside cfx and torch: the user's line, where a fixed level inside a
    module's ``forward`` pointed at torch's ``Module._call_impl`` (and per-file warning
    filters could not tell one user's file from another)."""
    import sys

    import torch

    inside = tuple(str(Path(f).parent) + os.sep for f in (__file__, torch.__file__ or ""))
    level, frame = 1, sys._getframe(1)
    while frame.f_back is not None and frame.f_code.co_filename.startswith(inside):
        level, frame = level + 1, frame.f_back
    return level


class MapQualityNotice(Notice):
    """A saliency method's notice about its own maps (Integrated Gradients' quadrature far
    from completeness, RISE's saturated probability): a randomisation check, which compares
    randomised models' maps and does not read them, holds these back by category."""


def check(condition: bool, exc: type[Exception], message: str) -> None:
    """Raise ``exc(message)`` when ``condition`` is false (user input validation, not assert)."""
    if not condition:
        raise exc(message)


def fail(exc: type[Exception], message: str) -> NoReturn:
    """Raise ``exc(message)``; for the ``else:`` branch of option dispatches."""
    raise exc(message)


def check_real(
    name: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    open_low: bool = False,
    open_high: bool = False,
) -> float:
    """``value`` as a float, or an error naming ``name`` when it is not a finite real number
    (bools and strings included; a 0-d real tensor counts as its value) or lies outside
    ``[low, high]`` (``open_*``: that end excluded)."""
    lo = "" if low is None else ("(" if open_low else "[") + f"{low:g}"
    hi = "" if high is None else f"{high:g}" + (")" if open_high else "]")
    want = f"a number in {lo or '(-inf'}, {hi or 'inf)'}"
    item = getattr(value, "item", None)  # a 0-d tensor or numpy scalar: its Python value
    if callable(item) and getattr(value, "ndim", None) == 0 and not isinstance(value, Real):
        value = item()
    if not isinstance(value, Real) or isinstance(value, bool):
        raise TypeError(f"`{name}` must be {want}, got {value!r}")
    v = float(value)
    ok = math.isfinite(v)
    if low is not None:
        ok = ok and (v > low if open_low else v >= low)
    if high is not None:
        ok = ok and (v < high if open_high else v <= high)
    if not ok:
        raise ValueError(f"`{name}` must be {want}, got {value!r}")
    return v


def check_int(name: str, value: object, *, minimum: int = 1) -> int:
    """``value`` as an int, or an error naming ``name`` when it is not an integer (bools
    excluded) or is below ``minimum``."""
    if not isinstance(value, Integral) or isinstance(value, bool):
        raise TypeError(f"`{name}` must be an int >= {minimum}, got {value!r}")
    if int(value) < minimum:
        raise ValueError(f"`{name}` must be an int >= {minimum}, got {value!r}")
    return int(value)


def check_flag(name: str, value: object) -> bool:
    """``value`` when it is a bool (numpy's too), or a ``TypeError`` naming ``name``: the
    string ``"no"`` or ``"False"`` read as true (a progress bar shown when asked not to)."""
    kind = type(value)
    if kind is not bool and not (kind.__module__ == "numpy" and kind.__name__ in ("bool", "bool_")):
        raise TypeError(f"`{name}` must be True or False, got {value!r}")
    return bool(value)


def check_integer(name: str, value: object) -> int:
    """``value`` as an int of any sign (a numpy int too; bools are not), or a ``TypeError``
    naming ``name``: for seeds that torch's ``manual_seed`` takes negative as well."""
    if not isinstance(value, Integral) or isinstance(value, bool):
        raise TypeError(f"`{name}` must be an int, got {value!r}")
    return int(value)


def check_seed(name: str, value: object, *, optional: bool = True, bits: int = 32) -> int | None:
    """``value`` when it is an int in [0, 2**bits), or None when ``optional``; a ``TypeError``
    for any other type (bools and floats such as 1.5 included), a ``ValueError`` outside the
    range, both naming ``name``. The default 32 bits are the seeds NumPy's legacy generator
    takes (DiCE seeds it); 64 are what torch's generators take. Pass ``optional=False`` where
    None means nothing (a CLI flag cannot be None)."""
    either = "None or " if optional else ""
    wanted = f"`{name}` must be {either}an int in [0, 2**{bits}), got {value!r}"
    if value is None and optional:
        return None
    if not isinstance(value, Integral) or isinstance(value, bool):
        raise TypeError(wanted)
    if not 0 <= int(value) < 2**bits:
        raise ValueError(wanted)
    return int(value)


def shown_rows(rows: list[int] | list[str], limit: int = 20) -> str:
    """Row indices (or ids) for a message: the first ``limit``, then `` ...`` if there are more."""
    return f"{rows[:limit]}{' ...' if len(rows) > limit else ''}"


def first_names(names: list[str], limit: int = 3) -> str:
    """Names for a message: ``a, b, c and 4 more``."""
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def counted(n: float, noun: str) -> str:
    """``1 path``, ``3 paths``: a count and its noun, for a message or a report."""
    return f"{int(n)} {noun}{'' if int(n) == 1 else 's'}"


def shape_or_type(value: object) -> object:
    """For an error message: a tensor's shape as a tuple, else the value's type name (so a
    numpy array passed for a tensor reads as ``ndarray``)."""
    from torch import Tensor  # on the error path only: this module stays free of torch

    return tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
