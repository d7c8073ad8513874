"""Short reprs for results and for the classes that do work: never a tensor in full.

The default dataclass repr of a result printed every tensor, model and table it held (a
``RecourseResult`` ran to thousands of characters); ``short_repr`` shows an array as its shape
and dtype, a model as its class, a long sequence or mapping as its length, and a long string
cut short. ``settings_repr`` prints an explainer, saliency method or ``Recourse`` by the
arguments it was given. Both read attributes only, so modules free of torch can use them.
"""

from __future__ import annotations

import inspect
from dataclasses import fields, is_dataclass
from typing import Any

_LONG = 80  # characters a field's repr may take before it is summarised


def short_repr(obj: Any) -> str:
    """``Name(field=..., ...)`` over the dataclass ``obj``'s repr fields, each summarised."""
    shown = [f"{f.name}={_short(getattr(obj, f.name))}" for f in fields(obj) if f.repr]
    return f"{type(obj).__name__}({', '.join(shown)})"


def _scalar(value: object) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


def _short(value: Any) -> str:
    if hasattr(value, "columns") and hasattr(value, "shape"):  # a pandas frame
        return f"<{type(value).__name__} {value.shape[0]} x {value.shape[1]}>"
    if hasattr(value, "shape") and hasattr(value, "dtype") and not _scalar(value):
        shape = tuple(value.shape)
        if not shape:  # a 0-d tensor or numpy scalar: its value
            return _short(value.item())
        dtype = str(value.dtype).removeprefix("torch.")
        return f"<{' x '.join(map(str, shape))} {dtype}>"
    if hasattr(value, "named_parameters"):  # an nn.Module
        return f"<{type(value).__name__}>"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, str):
        return repr(value if len(value) <= _LONG else value[: _LONG - 3] + "...")
    if isinstance(value, list | tuple):
        if len(value) <= 4 and all(_scalar(v) for v in value):
            return repr(value)
        kind = type(value[0]).__name__ if value else "items"
        return f"<{len(value)} x {kind}>"
    if isinstance(value, dict):
        text = repr(value)
        return text if len(text) <= _LONG else f"<dict of {len(value)}>"
    if is_dataclass(value) and not isinstance(value, type):
        text = short_repr(value)
        return text if len(text) <= _LONG else f"<{type(value).__name__}>"
    text = repr(value)
    return text if len(text) <= _LONG else f"<{type(value).__name__}>"


def settings_repr(obj: Any) -> str:
    """``Name(arg=..., ...)`` over the constructor arguments ``obj`` was given.

    For the classes that do work (explainers, saliency methods, attacks, ``Recourse``): the
    arguments left at their defaults are left out, as scikit-learn prints an estimator, and the
    rest are summarised like a result's fields (a model as its class, a tensor as its shape).
    Each argument is read from the attribute of its own name; one not kept so is left out.
    """
    shown = []
    for name, param in inspect.signature(type(obj)).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD) or not hasattr(obj, name):
            continue
        value = getattr(obj, name)
        if param.default is not param.empty and _same(value, param.default):
            continue
        text = repr(value) if isinstance(value, float) else _short(value)  # as it was given
        shown.append(f"{name}={text}")
    return f"{type(obj).__name__}({', '.join(shown)})"


def _same(value: object, default: object) -> bool:
    if value is default:
        return True
    if not (_scalar(value) or isinstance(value, tuple | list)):
        return False  # a model or tensor is never the default (defaults are None or plain)
    try:
        return bool(type(value) is type(default) and value == default)
    except (TypeError, ValueError):
        return False
