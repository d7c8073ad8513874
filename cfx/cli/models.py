"""The ``--classifier`` / ``--generator`` / ``--oracle`` options shared by the subcommands."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cfx.errors import CfxError, UnknownNameError

if TYPE_CHECKING:
    from cfx.zoo import ModelSource

log = logging.getLogger(__name__)


def checked_source(
    flag: str, name: str, want: str, *, allow_none: bool = False, has_generator: bool = True
) -> ModelSource:
    """What ``name`` points to, if it is a zoo model, model folder or hub id of role ``want``
    ("generator", "classifier"), else an error that names ``flag`` and says where the model
    belongs.

    Reads a folder's (or a hub model's) ``config.json``, not its weights. ``allow_none``: the
    option also takes ``none`` (mentioned in the errors); ``has_generator``: the command has
    a ``--generator`` option to point a generator to.
    """
    from cfx.zoo import HUB_PREFIX, ZOO, model_source

    fits = sorted(n for n, e in ZOO.items() if e.role == want)
    extra = " or 'none'" if allow_none else ""
    bare = "/" not in name and not name.startswith((".", "~", HUB_PREFIX))
    if name not in ZOO and bare and not Path(name).exists():
        raise UnknownNameError(
            f"`{flag}`: unknown zoo {want} {name!r}; expected one of {fits}{extra}, a model "
            "folder (save_pretrained; `cfx train ... --out DIR` writes DIR/model) or a hub id "
            "'owner/name'"
        )
    try:
        source = model_source(name)
    except (CfxError, OSError) as err:
        raise type(err)(f"`{flag}`: {err}") from err
    got = source.role
    if got != want:
        hint = " (pass it as --generator)" if got == "generator" and has_generator else ""
        if got == "classifier" and want == "generator":  # swapped: the other was not named
            hint = " (pass it as --classifier)"
        raise ValueError(
            f"`{flag}`: {name!r} is a {got}{hint}; expected a {want}: one of {fits}{extra}, "
            "or a folder or hub id holding one"
        )
    return source


def load_model(flag: str, source: ModelSource) -> Any:
    """``source`` (from :func:`checked_source`) loaded by its role, with an error from loading
    it (weights whose sha256 is not the card's, a damaged file) naming ``flag``, as the
    errors of :func:`checked_source` do: it named only the weights file."""
    from cfx.zoo import load_classifier, load_generator

    loader = load_generator if source.role == "generator" else load_classifier
    try:
        return loader(source)
    except CfxError as err:
        raise type(err)(f"`{flag}`: {err}") from err


def size_notice(
    model: object, shape: Sequence[int], flag: str, images: str, *, frames: bool = False
) -> None:
    """Warn when ``model`` (given as ``flag``) records in its config that it was trained on
    images of another ``(H, W)`` than the last two entries of ``shape``, the shape of
    ``images``: :func:`cfx.calls.trained_size_mismatch`."""
    from cfx.calls import trained_size_mismatch  # torch: not at import (`cfx --help` is fast)

    message = trained_size_mismatch(model, shape, f"`{flag}`", images, frames=frames)
    if message is not None:
        log.warning("%s", message)
        # said here by its flag: the saliency methods' own notice (naming `model`) is not
        # repeated (the filter lives in the command's catch_warnings, cfx.cli.console)
        import re
        import warnings

        from cfx.saliency._common import PROBE_NOTICES

        notice = re.escape(PROBE_NOTICES[2])
        warnings.filterwarnings("ignore", message=notice, category=UserWarning)
