"""What a label of a labelling task is: a class index ``0..K-1`` of the task's class names,
or :data:`UNSURE` for an image a person could not call; read from an index, a class name or
``unsure`` as people and spreadsheets write them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from torch import Tensor

UNSURE = -1
"""The label of an image a person could not call (page: "can't tell"; a sheet or labels.csv:
``unsure``): answered, so no longer pending, but no class; ``cfx augment`` leaves such frames
out of its fine-tuning."""
UNSURE_NAME = "unsure"


def check_class_names(class_names: object) -> tuple[str, ...]:
    """``class_names`` as a task holds them: at least two distinct (ignoring case), non-empty
    names without surrounding spaces, none a plain number or ``unsure``."""
    if isinstance(class_names, str) or not isinstance(class_names, Sequence):
        raise TypeError(
            f"`class_names` must be a sequence of strings, got {type(class_names).__name__}"
        )
    names = tuple(class_names)
    if len(names) < 2:
        raise ValueError(f"`class_names` must name at least 2 classes, got {list(names)}")
    for name in names:
        if not isinstance(name, str) or not name.strip() or name != name.strip():
            raise ValueError(
                f"`class_names` must be non-empty strings without surrounding spaces, got {name!r}"
            )
        if name.isdigit():
            raise ValueError(
                f"`class_names` must not be plain numbers (they read as class indices), "
                f"got {name!r}"
            )
        if name.lower() == UNSURE_NAME:
            raise ValueError(
                f"`class_names` must not hold {UNSURE_NAME!r}: it is the label of an image a "
                "person could not call"
            )
    if len({name.lower() for name in names}) != len(names):
        raise ValueError(f"`class_names` must differ ignoring case, got {list(names)}")
    return names


def label_name(label: int, names: Sequence[str]) -> str:
    """A label in words: its class name, or ``unsure``."""
    return UNSURE_NAME if label == UNSURE else names[label]


def parse_label(text: str, names: tuple[str, ...]) -> int | None:
    """A class index from ``"1"``, ``"1.0"`` or ``"1,0"`` (as a spreadsheet may save it) or
    ``"Tumour"``, or :data:`UNSURE` from ``"unsure"`` (any case); None when it is none of
    these."""
    if text.lower() == UNSURE_NAME:
        return UNSURE
    whole = text[:-2] if text.endswith((".0", ",0")) else text  # 1,0 in comma-decimal locales
    if whole.isascii() and whole.isdigit():
        index = int(whole)
        return index if index < len(names) else None
    lowered = [name.lower() for name in names]
    return lowered.index(text.lower()) if text.lower() in lowered else None


def as_index(value: object) -> int | None:
    """``value`` as a class index when it is a whole number's type: a Python or numpy int, or
    a 0-d integer tensor (``pred[i]``); None otherwise (a bool, a float, anything else)."""
    if isinstance(value, Tensor) and value.ndim == 0 and not value.is_floating_point():
        value = value.item()
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        return None
    return int(value)
