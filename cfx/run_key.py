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
    """The SHA-256 of a module's parameters and buffers by name. For an object that is not
    an ``nn.Module`` (a generator wrapper, a function around a network), the digest of the
    modules it holds (:func:`cfx.calls.held_modules`; its identity was None, and a resumed
    run went on with another such object); ``None`` when it holds none. A module whose
    function attributes hold networks (``TwoLogits(lambda im: net(im))``) digests those too:
    two such wrappers around different networks had one digest."""
    from cfx.calls import held_modules

    if not isinstance(module, nn.Module):
        held = [module_sha256(m) for m in held_modules(module)]
        return json_sha256(held) if held else None
    h = hashlib.sha256()
    for name, value in module.state_dict().items():
        h.update(name.encode())
        h.update(tensors_sha256(value).encode())
    inner = held_modules(module)[1:]  # what its functions hold (none for a plain module)
    if not inner:
        return h.hexdigest()
    return json_sha256([h.hexdigest(), *(module_sha256(m) for m in inner)])


def json_sha256(value: object) -> str:
    """Hex SHA-256 of ``value`` as JSON with sorted keys: one digest for a key however its
    entries were ordered."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def same_but(earlier: Mapping[str, Any], key: Mapping[str, Any], names: set[str]) -> bool:
    """Whether two run keys agree on every entry but ``names`` (an entry one lacks counts as
    None there): the settings a run may go on with changed."""
    return all(earlier.get(k) == key.get(k) for k in {*earlier, *key} - names)


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

    def walk(a: Any, b: Any, path: tuple[str, ...], fresh: bool = False) -> None:
        if a == b:
            return
        # ``fresh``: inside settings given where there were none (or taken away), said one
        # by one with the empty ones left out ("constraints.immutable: unset before,
        # ["purpose"] now", not the whole of them by name)
        if fresh and all(_empty(v) for v in (a, b) if v is not _MISSING):
            return
        # (a mapping missing on one side is walked into only inside such settings: another
        # explainer's whole settings are named as one entry)
        if isinstance(b, Mapping) and (a is None or (fresh and a is _MISSING)):
            a, fresh = {}, True
        elif isinstance(a, Mapping) and (b is None or (fresh and b is _MISSING)):
            b, fresh = {}, True
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            for k in sorted(set(a) | set(b), key=str):
                walk(a.get(k, _MISSING), b.get(k, _MISSING), (*path, str(k)), fresh)
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
    if not found:  # e.g. empty settings given where there were none: name the entries
        found = [
            (names or {}).get(str(k), str(k))
            for k in sorted(set(before) | set(now), key=str)
            if before.get(k, _MISSING) != now.get(k, _MISSING)
        ]
    return "; ".join(dict.fromkeys(found))


def _empty(value: Any) -> bool:
    """None, or an empty mapping or list: nothing said by a setting newly given or left off."""
    return value is None or (isinstance(value, Mapping | list) and not value)
