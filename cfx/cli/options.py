"""Which options a user gave: the commands refuse options that would do nothing with the others
given (built-in slice settings with a file of images, batch settings for one applicant, ...)."""

from __future__ import annotations

import argparse
import re
from collections.abc import Container, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def given_flags(args: argparse.Namespace, *dests: str) -> list[str]:
    """The flags (``--pool-n``) of those ``dests`` (``pool_n``) the user gave, in that order.
    Such options default to None (a switch to False), so a given 0 still counts; a dest the
    command does not have counts as not given."""
    values = ((d, getattr(args, d, None)) for d in dests)
    return [f"--{d.replace('_', '-')}" for d, v in values if v is not None and v is not False]


@contextmanager
def by_flag(args: argparse.Namespace) -> Iterator[None]:
    """Errors raised inside (a config's own checks) name the command's flags: a setting
    written `` `batch_size` `` becomes `` `--batch-size` `` where the command has that
    option; others are left as they are."""
    try:
        yield
    except (ValueError, TypeError) as err:
        known = vars(args)

        def flag(match: re.Match[str]) -> str:
            name = match.group(1)
            return f"`--{name.replace('_', '-')}`" if name in known else match.group(0)

        text = re.sub(r"`([a-z][a-z0-9_]*)`", flag, str(err))
        if text == str(err):
            raise
        raise type(err)(text) from None


def class_names_flag(text: str, k: int = 2) -> tuple[str, ...]:
    """``--class-names``: ``k`` names, comma-separated, class 0 first (spaces around a name
    dropped)."""
    names = tuple(t.strip() for t in text.split(","))
    if len(names) != k or not all(names):
        raise ValueError(
            f"`--class-names` must be {k} names separated by commas, class 0 first, got {text!r}"
        )
    if len({n.lower() for n in names}) != k:
        raise ValueError(f"`--class-names` must name {k} different classes, got {text!r}")
    return names


YES_NO = {"yes": 1, "no": 0, "y": 1, "n": 0, "true": 1, "false": 0}
"""Words a table of a 0/1 attribute per image (which carry the marker, a group) may hold
besides 1 and 0."""

_NOT_SETTINGS = ("no_progress", "verbose", "command", "train_command")
"""Parsed options that say how a command ran, not what made its results."""


def card_settings(args: argparse.Namespace, leave_out: Container[str] = ()) -> dict[str, Any]:
    """The options that made a run's model, for its card (``cfx train``, ``cfx augment``): by
    name in order, paths as typed (absolute ones would publish the user's folders with a card
    shared on a hub); unset ones, the command's own function, progress and logging switches,
    and ``leave_out`` (options filled in but not used) are left out."""
    return {
        k: str(v) if isinstance(v, Path) else v
        for k, v in sorted(vars(args).items())
        if k not in _NOT_SETTINGS and k not in leave_out and v is not None and not callable(v)
    }
