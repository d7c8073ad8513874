"""What an explainer is, for a chunk folder's key: its class, settings and models' weights
(:func:`explainer_key`), and the explainer a wrapper holds (:func:`inner_explainer`)."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from cfx.calls import held_modules
from cfx.run_key import module_sha256, tensors_sha256

_NOT_THE_RESULT = ("show_progress",)
"""Explainer attributes that do not change its result (left out of :func:`explainer_key`)."""


_MODEL_SLOTS = ("generator", "classifier", "oracle")
"""An explainer's models: never taken for an explainer it wraps, whatever methods they have."""


def _attributes(obj: object) -> dict[str, Any]:
    """``obj``'s instance attributes: its ``__dict__`` and the ``__slots__`` of its classes."""
    found = dict(getattr(obj, "__dict__", {}))
    for cls in type(obj).__mro__:
        slots = cls.__dict__.get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if name not in ("__dict__", "__weakref__") and hasattr(obj, name):
                found.setdefault(name, getattr(obj, name))
    return found


def _is_explainer(value: object) -> bool:
    """Has a callable ``explain`` and is no ``nn.Module``; an attribute lookup that raises (a
    dict whose ``__getattr__`` is ``__getitem__``) means no."""
    if isinstance(value, nn.Module):
        return False
    try:
        return callable(getattr(value, "explain", None))
    except Exception:  # any error of a user's __getattr__ means "no explain"
        return False


def inner_explainer(explainer: object) -> object | None:
    """The one explainer a wrapper holds (an attribute with a callable ``explain`` that is not
    an ``nn.Module`` nor one of the explainer's models, :data:`_MODEL_SLOTS`: a wrapper that
    logs its calls, say), or None."""
    inner = {
        id(v): v
        for k, v in _attributes(explainer).items()
        if v is not explainer and k not in _MODEL_SLOTS and _is_explainer(v)
    }
    return next(iter(inner.values())) if len(inner) == 1 else None


def explainer_setting(explainer: object, name: str) -> object:
    """The explainer's setting ``name`` (``margin``, ``give_up``), or, when it has none, that
    of the explainer it wraps (:func:`inner_explainer`); None if neither has one."""
    value = getattr(explainer, name, None)
    if value is not None:
        return value
    inner = inner_explainer(explainer)
    return None if inner is None else getattr(inner, name, None)


def _is_setting(value: object) -> bool:
    """A module attribute that is a setting (``TwoLogits.outputs``, a layer's sizes): a
    number, string or None, or a tuple of them; a tuple holding anything else (a function,
    whose repr names its address) would key every process apart."""
    if isinstance(value, tuple):
        return all(_is_setting(v) for v in value)
    return value is None or isinstance(value, (bool, int, float, str))


def module_digest(module: nn.Module) -> str:
    """A SHA-256 of what decides a module's outputs: its weights and buffers by name
    (:func:`~cfx.run_key.module_sha256`) and each submodule's class and settings (public
    attributes that are numbers, strings, None or tuples: ``TwoLogits(outputs=...)``, say;
    its train/eval mode is not one, the explainers run models in eval mode)."""
    return _with_settings(hashlib.sha256(str(module_sha256(module)).encode()), module)


def module_settings(module: object) -> str | None:
    """A SHA-256 of each submodule's class and settings, as :func:`module_digest` reads them,
    without the weights (None for a model that is no ``nn.Module``): for a key that records
    the weights' digest on its own, :func:`~cfx.run_key.module_sha256` (an augmentation
    run's: ``TwoLogits(net)`` and ``TwoLogits(net, outputs="probability")`` have one)."""
    if not isinstance(module, nn.Module):
        return None
    return _with_settings(hashlib.sha256(), module)


def _with_settings(h: Any, module: nn.Module) -> str:
    """``h`` (a SHA-256 under way) fed, per submodule, its name, class and settings (public
    attributes that are settings, :func:`_is_setting`; not its train/eval mode); its hex."""
    for name, sub in module.named_modules():
        own = {
            k: v
            for k, v in sorted(vars(sub).items())
            if not k.startswith("_") and k != "training" and _is_setting(v)
        }
        h.update(json.dumps([name, type(sub).__qualname__, own]).encode())
    return h.hexdigest()


def explainer_key(explainer: object, _seen: frozenset[int] = frozenset()) -> dict[str, Any]:
    """JSON of what decides an explainer's result: its class, its settings (public attributes
    that are numbers, strings, None, dataclasses, or sequences and mappings of them; tensors
    and numpy arrays by a SHA-256 of their values) and a SHA-256 of each ``nn.Module`` it
    holds (generator, classifier, oracle; those a wrapper, lambda or partial holds one level
    deep, :func:`~cfx.calls.held_modules`; :func:`module_digest`); other objects by their
    type. A
    wrapper holding one explainer (:func:`inner_explainer`) is keyed by the explainer it
    wraps: its own attributes (a log of its calls, say) are taken not to change the result.
    One holding several (a fallback chain, say) is keyed with each of them keyed in full."""
    seen = _seen | {id(explainer)}
    inner = inner_explainer(explainer)
    if inner is not None and id(inner) not in seen:
        return explainer_key(inner, seen)

    def plain(value: Any) -> Any:
        if isinstance(value, np.generic):  # a numpy scalar: np.int64(5), np.float32(0.9)
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            return repr(value)  # JSON has no NaN that compares equal to itself
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, Mapping):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":  # numbers
            value = torch.from_numpy(np.ascontiguousarray(value))
        if isinstance(value, Tensor):
            return f"<{type(value).__name__} sha256 {tensors_sha256(value)}>"
        if is_dataclass(value) and not isinstance(value, type):
            return {f.name: plain(getattr(value, f.name)) for f in fields(value)}
        if _is_explainer(value) and id(value) not in seen:
            return explainer_key(value, seen)  # an explainer among several a wrapper holds
        # a module, or one a wrapper holds: a generator adapter with decode/encode, a lambda
        digests = [module_digest(m) for m in held_modules(value)]
        if len(digests) == 1 and isinstance(value, nn.Module):
            return digests[0]
        return [f"<{type(value).__name__}>", *digests] if digests else f"<{type(value).__name__}>"

    settings = {
        k: plain(v)
        for k, v in sorted(_attributes(explainer).items())
        if not k.startswith("_") and k not in _NOT_THE_RESULT
    }
    # by class name: another method is named as such, not by every setting it differs in
    return {type(explainer).__name__: settings}
