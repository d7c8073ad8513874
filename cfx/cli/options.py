"""Which options a user gave: the commands refuse options that would do nothing with the others
given (built-in slice settings with a file of images, batch settings for one applicant, ...)."""

from __future__ import annotations

import argparse


def given_flags(args: argparse.Namespace, *dests: str) -> list[str]:
    """The flags (``--pool-n``) of those ``dests`` (``pool_n``) the user gave, in that order.
    Such options default to None (a switch to False), so a given 0 still counts; a dest the
    command does not have counts as not given."""
    values = ((d, getattr(args, d, None)) for d in dests)
    return [f"--{d.replace('_', '-')}" for d, v in values if v is not None and v is not False]
