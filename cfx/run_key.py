"""A run's key: the settings and input digests that decide its results, written next to what
it keeps on disk, so that a rerun resumes only what the same key computed and otherwise says
what changed (``changes``)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

_MISSING = object()
"""An entry that one of two keys lacks."""


def tensors_sha256(*tensors: Tensor) -> str:
    """One SHA-256 over ``tensors``' shapes, dtypes and bytes (any dtype, any device)."""
    h = hashlib.sha256()
    for t in tensors:
        h.update(str((tuple(t.shape), str(t.dtype))).encode())
        raw = t.detach().cpu().contiguous().reshape(-1).view(torch.uint8)  # any dtype
        h.update(raw.numpy().data)  # the buffer itself: no copy of a whole training set
    return h.hexdigest()


def module_sha256(module: object) -> str | None:
    """The SHA-256 of a module's parameters and buffers by name; ``None`` for an object that
    is not an ``nn.Module`` (its identity cannot be read)."""
    if not isinstance(module, nn.Module):
        return None
    h = hashlib.sha256()
    for name, value in module.state_dict().items():
        h.update(name.encode())
        h.update(tensors_sha256(value).encode())
    return h.hexdigest()


def changes(
    before: Mapping[str, Any], now: Mapping[str, Any], names: Mapping[str, str] | None = None
) -> str:
    """What differs between two keys, for a message: e.g. ``"batch_size: 2 before, 3 now;
    steps: 4 before, 5 now"``. Nested entries are named by dotted path (a leading ``key.`` is
    dropped: a caller's own settings; so is ``explainer.<class>.``, an explainer's settings,
    which a caller often repeats), or as ``names`` says (``{"inputs_sha256": "the
    images"}``); values too long to read (digests) are only named; an entry named twice
    (a caller repeating one) is said once."""
    found: list[str] = []

    def walk(a: Any, b: Any, path: tuple[str, ...]) -> None:
        if a == b:
            return
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            for k in sorted(set(a) | set(b), key=str):
                walk(a.get(k, _MISSING), b.get(k, _MISSING), (*path, str(k)))
            return
        dotted = ".".join(path)
        shown_path = path[1:] if path[:1] == ("key",) else path
        if path[:1] == ("explainer",) and len(path) > 2:  # explainer.<class>.steps: steps
            shown_path = path[2:]
        label = (names or {}).get(dotted, ".".join(shown_path))
        shown = ["unset" if v is _MISSING else json.dumps(v, default=str) for v in (a, b)]
        if max(len(v) for v in shown) > 24:
            found.append(label)
        else:
            found.append(f"{label}: {shown[0]} before, {shown[1]} now")

    walk(before, now, ())
    return "; ".join(dict.fromkeys(found))
