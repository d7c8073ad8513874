"""Short reprs for result dataclasses: shapes, counts and numbers, never a tensor in full.

The default dataclass repr of a result printed every tensor, model and table it held (a
``RecourseResult`` ran to thousands of characters); ``short_repr`` shows an array as its shape
and dtype, a model as its class, a long sequence or mapping as its length, and a long string
cut short. It reads attributes only, so modules free of torch can use it.
"""

from __future__ import annotations

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
