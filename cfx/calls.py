"""How cfx calls the user's models: guards, targets, logits, probabilities, chunking.

Every explainer, attribution method, labeller and audit goes through these, so a user's model
is treated the same way everywhere: left in its own mode with its own ``requires_grad`` flags
(:func:`frozen`), its output shape checked (:func:`class_logits`), targets resolved and checked
once (:func:`resolve_target`).
"""

from __future__ import annotations

import dis
import functools
import inspect
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from numbers import Integral
from types import CodeType
from typing import Literal, TypeVar

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.modules.lazy import LazyModuleMixin

from cfx.errors import Notice, shape_or_type, shown_rows, user_stacklevel
from cfx.types import Classifier, Target

_T = TypeVar("_T")


def held_modules(model: object) -> list[nn.Module]:
    """The ``nn.Module`` objects ``model`` is or holds, one level deep: ``model`` itself if
    it is one, with the modules its function attributes hold (a :class:`TwoLogits` or
    :class:`~cfx.images.UnitInput` around ``lambda im: net(im)``: the network was left in
    training mode); else those among its attributes (``vars(model)``, and ``__slots__``: a
    ``@dataclass(slots=True)`` wrapper), a function's closure cells, default arguments
    (``lambda im, net=net: net(im)``) and the globals its code reads, nested comprehensions
    included (``lambda im: clf(im)``, whether ``clf`` is a local or a notebook's global; a
    decorated function is read through ``__wrapped__``) and a ``functools.partial``'s
    function, arguments and keywords. A bound method counts as its object
    (``wrapper.predict`` finds what ``wrapper`` holds), here and among the held items
    (``partial(net.forward)``), and so do the items of a list, tuple or dict held there (an
    ensemble's ``self.models = [a, b]``). Nothing deeper is searched: a module held by an
    object the wrapper holds is not found."""
    if inspect.ismethod(model):
        model = model.__self__
    if isinstance(model, nn.Module):
        functions = [v for v in vars(model).values() if _is_function(v)]
        inner = [m for f in functions for m in _held(f)]
        return list({id(m): m for m in [model, *inner]}.values())
    return _held(model)


def _is_function(value: object) -> bool:
    """A function, ``functools.partial`` or bound method (not a module, class or object)."""
    return (
        inspect.isfunction(value) or inspect.ismethod(value) or isinstance(value, functools.partial)
    )


def _slot_values(obj: object) -> list[object]:
    """The values of ``obj``'s ``__slots__`` attributes (every class of its MRO)."""
    out = []
    for cls in type(obj).__mro__:
        slots = cls.__dict__.get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if name not in ("__dict__", "__weakref__"):
                with suppress(AttributeError):  # a slot never set
                    out.append(getattr(obj, name))
    return out


def _held(model: object) -> list[nn.Module]:
    """:func:`held_modules` of an object that is not an ``nn.Module`` (or a bound method)."""
    if inspect.ismethod(model):
        model = model.__self__
    if isinstance(model, nn.Module):
        return [model]
    if inspect.isfunction(model):
        with suppress(ValueError):  # ValueError: a __wrapped__ cycle
            model = inspect.unwrap(model)  # a decorated function: the one it wraps
    held: list[object] = [*getattr(model, "__dict__", {}).values(), *_slot_values(model)]
    if isinstance(model, functools.partial):
        held += [model.func, *model.args, *model.keywords.values()]
    if inspect.isfunction(model):
        for cell in model.__closure__ or ():
            with suppress(ValueError):  # ValueError: a cell not yet filled
                held.append(cell.cell_contents)
        # `lambda im, net=net: net(im)`, the loop idiom: its network ran in training mode
        held += [*(model.__defaults__ or ()), *(model.__kwdefaults__ or {}).values()]
        names = _global_names(model.__code__)
        held += [model.__globals__[n] for n in sorted(names) if n in model.__globals__]
    # the items of a list, tuple or dict held there (an ensemble's models), not deeper
    held += [
        item
        for h in list(held)
        if isinstance(h, (list, tuple, dict))
        for item in (h.values() if isinstance(h, dict) else h)
    ]
    held = [h.__self__ if inspect.ismethod(h) else h for h in held]
    return list({id(m): m for m in held if isinstance(m, nn.Module)}.values())


def _global_names(code: CodeType) -> set[str]:
    """The globals ``code`` reads (``LOAD_GLOBAL``, not attribute names, which share
    ``co_names``), in its nested code objects too (a comprehension's, a lambda's)."""
    names = {
        str(i.argval)
        for i in dis.get_instructions(code)
        if i.opname in ("LOAD_GLOBAL", "LOAD_NAME")
    }
    for const in code.co_consts:
        if inspect.iscode(const):
            names |= _global_names(const)
    return names


def check_initialised(model: nn.Module) -> None:
    """An error naming ``model``'s class when it has lazy layers (``nn.LazyLinear``, ...)
    whose parameters are not made yet: PyTorch's own error, from ``requires_grad_`` deep in
    :func:`frozen`, names neither the model nor the remedy."""
    lazy = [
        type(m)
        for m in model.modules()
        if isinstance(m, LazyModuleMixin) and m.has_uninitialized_params()
    ]
    if lazy:
        names = dict.fromkeys(
            f"nn.{c.__name__}" if getattr(nn, c.__name__, None) is c else c.__name__ for c in lazy
        )
        raise ValueError(
            f"`{type(model).__name__}` has uninitialised lazy layers ({', '.join(names)}): run "
            "it once on an image of the right shape before passing it to cfx"
        )


@contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[None]:
    """Put ``modules`` in eval mode; restore each submodule's own mode on exit (a user's
    model may keep, say, a BatchNorm in eval mode under a parent in training mode, which
    ``model.train(True)`` would switch back on)."""
    modes = [(sub, sub.training) for m in modules for sub in m.modules()]
    try:
        for m in modules:
            m.eval()
        yield
    finally:
        for sub, training in modes:
            sub.training = training


@contextmanager
def frozen(*models: object) -> Iterator[None]:
    """Put ``models`` in eval mode with gradients off; restore both on exit.

    Each model may be an ``nn.Module`` or a callable holding some (a wrapper object, a bound
    method, a lambda or ``functools.partial`` over a module): the modules it holds one level
    deep are frozen (:func:`held_modules`), each once. The mode is restored submodule by
    submodule (a user's model may keep, say, a BatchNorm in eval mode under a parent in
    training mode), the flags parameter by parameter. A module with uninitialised lazy layers
    is an error (:func:`check_initialised`).
    """
    modules = list({id(m): m for model in models for m in held_modules(model)}.values())
    for m in modules:
        check_initialised(m)
    flags = [[p.requires_grad for p in m.parameters()] for m in modules]
    with eval_mode(*modules):
        try:
            for m in modules:
                for p in m.parameters():
                    p.requires_grad_(False)
            yield
        finally:
            for m, fl in zip(modules, flags, strict=True):
                for p, f in zip(m.parameters(), fl, strict=True):
                    p.requires_grad_(f)


def in_chunks(fn: Callable[[Tensor], Tensor], x: Tensor, size: int = 32) -> Tensor:
    """``fn`` applied to ``x`` in chunks of ``size`` rows, concatenated (use under no_grad).

    The CNNs here run about twice as fast per image in chunks of 32 as in one batch of 320
    (the activations of a small chunk stay in cache), which the resampling refinement and the
    final decode of ``B * (T + 1)`` frames would otherwise pay.
    """
    return torch.cat([fn(x[i : i + size]) for i in range(0, x.shape[0], size)])


def not_whole(values: Tensor) -> Tensor:
    """``values``' shape, bool: the entries that are no whole number (a fraction, NaN, inf);
    integer tensors have none."""
    if not values.is_floating_point():
        return torch.zeros_like(values, dtype=torch.bool)
    return ~torch.isfinite(values) | (values != values.round())


def sequence_as_tensor(target: _T) -> _T | Tensor:
    """Per-image class indices given as a list or tuple of ints or an integer numpy array ->
    an int64 tensor; anything else is returned as it is (for :func:`resolve_target` to check
    or refuse)."""
    if isinstance(target, np.ndarray):
        ok = target.ndim > 0 and target.dtype.kind in "iu"
    elif isinstance(target, Sequence) and not isinstance(target, (str, bytes)):  # range too
        ok = all(isinstance(t, Integral) and not isinstance(t, (bool, np.bool_)) for t in target)
    else:
        ok = False
    if not ok:
        return target
    try:
        return torch.as_tensor(np.asarray(target, dtype=np.int64))
    except OverflowError:  # no class index: resolve_target refuses it by type
        return target


def resolve_target(
    target: Target, batch: int, num_classes: int | None, device: torch.device
) -> Tensor:
    """An int (numpy integers and 0-d integer tensors included) or ``(B,)`` integers (a tensor,
    list, tuple or numpy array) of class indices -> ``(B,)`` int64 on ``device``; with
    ``num_classes`` each must be in ``[0, num_classes)`` (``None``: the caller has no model
    to ask yet, e.g. before the chunks of :func:`~cfx.trajectory.explain_in_chunks`; the
    explainer checks it)."""
    if isinstance(target, bool):
        raise TypeError(
            f"`target` must be an int class index or (B,) of them (tensor, list or array), got "
            f"{target!r}"
        )
    target = sequence_as_tensor(target)  # a list, tuple or numpy array of class indices
    integral = isinstance(target, Tensor) and not (
        target.is_floating_point() or target.is_complex() or target.dtype == torch.bool
    )
    if integral and target.ndim == 0:  # type: ignore[union-attr]
        target = int(target.item())  # type: ignore[union-attr]
    if isinstance(target, Integral):
        t = torch.full((batch,), int(target), dtype=torch.int64, device=device)
    elif isinstance(target, Tensor):
        if not integral or target.ndim != 1 or target.shape[0] != batch:
            raise ValueError(
                f"`target` must be an int or an integer tensor of shape ({batch},), got "
                f"dtype {target.dtype} shape {tuple(target.shape)}"
            )
        # a copy: a frozen result kept the caller's tensor, and changed when they edited it
        t = target.to(device=device, dtype=torch.int64, copy=True)
    else:
        raise TypeError(
            f"`target` must be an int class index or (B,) of them (tensor, list or array), got "
            f"{target!r}"
        )
    top = "K - 1" if num_classes is None else num_classes - 1
    bad = (t < 0) if num_classes is None else (t < 0) | (t >= num_classes)
    if bool(bad.any()):
        raise ValueError(f"`target` must be a class index in [0, {top}], got {t[bad][0].item()}")
    return t


def inference_mode_error() -> RuntimeError:
    """The error for a gradient cfx needs under the caller's ``torch.inference_mode()``."""
    return RuntimeError(
        "cfx was called under `torch.inference_mode()`, which turns autograd off even where "
        "cfx turns gradients on; it follows the logits' gradient with respect to the images, "
        "so call it outside inference mode (`torch.no_grad()` around the call is fine)"
    )


@contextmanager
def gradients_on() -> Iterator[None]:
    """Autograd on for cfx's own optimisation, also under the caller's ``torch.no_grad()``
    (where PyTorch's "element 0 of tensors does not require grad" would come from deep inside
    it); under ``torch.inference_mode()``, which no context can undo,
    :func:`inference_mode_error`."""
    if torch.is_inference_mode_enabled():
        raise inference_mode_error()
    with torch.enable_grad():
        yield


def values_of(x: _T) -> _T:
    """A tensor's values without its autograd state: detached (cfx's backward passes must not
    run into the graph that made ``x``, nor fill a leaf's ``.grad``), and copied when made
    under ``torch.inference_mode()`` (such a tensor cannot be saved for backward outside it).
    Anything else is returned as it is, for the checks to name."""
    if not isinstance(x, Tensor):
        return x
    return outside_inference(x.detach())  # type: ignore[return-value]


def outside_inference(x: Tensor) -> Tensor:
    """``x``, or a copy of it when it was made under ``torch.inference_mode()`` and that mode
    is off now: an inference tensor cannot be saved for backward outside it, a copy can."""
    return x.clone() if x.is_inference() and not torch.is_inference_mode_enabled() else x


def class_logits(
    classifier: Classifier,
    images: Tensor,
    *,
    name: str = "classifier",
    probe: str | None = None,
) -> Tensor:
    """Classifier logits with checks; errors call the model ``name``.

    Checked: shape ``(B, K)`` with ``K >= 2`` (a single logit points to :class:`TwoLogits`);
    a floating-point dtype; no NaN or +inf (a -inf masks a class out, a row of -inf is an
    error); and, when gradients are on and ``images`` requires grad, a graph back to
    ``images``. Logits in another floating dtype than ``images`` are cast to it.

    ``probe``: ``images`` are one image checked before the real work, described by this
    phrase (``"one image of `x`"``, ``"the generator's image of the zero latent"``); errors
    then say so, rather than describe a batch of one."""
    if not callable(classifier):
        raise TypeError(
            f"`{name}` must be a model or function mapping images (B, C, H, W) to logits "
            f"(B, K), got {type(classifier).__name__}"
        )
    logits = classifier(images)
    n = images.shape[0]
    if isinstance(logits, Tensor) and not (logits.is_floating_point() or logits.is_complex()):
        # before the shape: class labels (B,) would otherwise be sent to TwoLogits
        raise TypeError(
            f"`{name}` must return floating-point logits (B, K), got dtype {logits.dtype}"
            + (" of shape (B,): class labels?" if tuple(logits.shape) == (n,) else "")
            + "; cfx needs one logit per class (the scores before softmax or argmax)"
        )
    if isinstance(logits, Tensor) and tuple(logits.shape) == (n,):
        check_two_classes(logits, name, probe)  # one score per image: names TwoLogits
    if not isinstance(logits, Tensor) or logits.ndim != 2 or logits.shape[0] != n:
        got = (
            f"; on {probe} it returned {shape_or_type(logits)}"
            if probe is not None
            else f", got {shape_or_type(logits)} for {n} image{'s' if n != 1 else ''}"
        )
        raise ValueError(f"`{name}` must map images (B, C, H, W) to logits (B, K){got}")
    check_two_classes(logits, name, probe)  # softmax over one logit is 1: nothing moves
    if not logits.is_floating_point():
        raise TypeError(f"`{name}` must return floating-point logits, got dtype {logits.dtype}")
    if torch.is_grad_enabled() and images.requires_grad and not logits.requires_grad:
        # cfx follows these logits' gradient with respect to the images
        if torch.is_inference_mode_enabled():  # the model is fine: the caller's mode is not
            raise inference_mode_error()
        raise ValueError(
            f"`{name}`'s logits do not depend on its input through autograd (a `.detach()`, "
            f"a NumPy round trip or `torch.no_grad()` inside the model?): cfx needs their "
            f"gradient with respect to the images, so the model must be differentiable"
        )
    # -inf rules a class out (masked logits); NaN, +inf or a row ruling out every class do not
    out = logits.detach()
    bad = (out.isnan() | (out == float("inf"))).any(1) | (out == float("-inf")).all(1)
    if bool(bad.any()):
        rows = torch.nonzero(bad).flatten().tolist()
        shown = f"rows {shown_rows(rows, 10)}"
        if images.is_floating_point() and not bool(torch.isfinite(images[bad]).all()):
            raise ValueError(
                f"the images given to `{name}` hold NaN or infinite values ({shown} of {n}): "
                "a latent or input that diverged?"
            )
        if probe is not None:
            raise ValueError(f"`{name}` returned NaN or infinite logits on {probe}")
        raise ValueError(
            f"`{name}` returned NaN or infinite logits for {len(rows)} of {n} image"
            f"{'s' if n != 1 else ''} ({shown})"
        )
    if images.is_floating_point() and logits.dtype != images.dtype:
        logits = logits.to(images.dtype)  # probabilities and steps then stay in x's dtype
    return logits


class TwoLogits(nn.Module):
    """A binary classifier with one output as two class logits ``(-l/2, l/2)``: softmax over
    them gives ``sigmoid(l)`` for class 1, and each class's logit is half its log-odds, so
    a map explaining class 0 is the mirror of class 1's (a constant logit ``0`` for class 0
    made every gradient map of it blank, silently). Maps of class 1 are half those of ``l``
    itself: scale-free scores (ranks, shares, localisation, Spearman) are unchanged.
    ``outputs="logit"`` (default) for a model returning
    the logit ``l`` before its sigmoid; ``outputs="probability"`` for a model ending in a
    sigmoid, whose ``p`` becomes ``l = log(p / (1 - p))`` (a probability taken for a logit
    would put class 1 at >= 0.5 for every image). An ``nn.Module``, so cfx freezes the
    wrapped model (mode, ``requires_grad``) like any other while it explains."""

    def __init__(
        self, model: nn.Module, outputs: Literal["logit", "probability"] = "logit"
    ) -> None:
        super().__init__()
        if outputs not in ("logit", "probability"):
            raise ValueError(f"`outputs` must be 'logit' or 'probability', got {outputs!r}")
        self.model = model
        self.outputs = outputs
        self._warned = False  # the [0, 1] warning, once per wrapper
        # outputs seen so far, and whether all lay in [0, 1]: one image per call (a path
        # explained step by step) never gives 16 at once
        self._seen = 0
        self._all_unit = True
        self._warned_flat = False  # the saturated-probability warning, once per wrapper

    def forward(self, x: Tensor) -> Tensor:
        out = self.model(x)
        if not isinstance(out, Tensor) or out.ndim not in (1, 2) or out.shape[1:].numel() != 1:
            raise ValueError(
                f"TwoLogits wraps a model with one output per image, (B,) or (B, 1); this one "
                f"returns {shape_or_type(out)}"
                + (": pass it to cfx directly" if isinstance(out, Tensor) and out.ndim == 2 else "")
            )
        n = x.shape[0]
        if out.shape[0] != n:  # reshaped, it would read as another model's (B, 2) mistake
            raise ValueError(
                "the model wrapped by TwoLogits must return one logit (or probability) per "
                f"image, (B,) or (B, 1), got {tuple(out.shape)} for {n} image"
                f"{'s' if n != 1 else ''}"
            )
        out = out.reshape(out.shape[0], 1)
        if not out.is_floating_point():  # torch.finfo failed on them, in its own words
            raise TypeError(
                f"the model wrapped by TwoLogits must return a floating-point {self.outputs} "
                f"per image, got dtype {out.dtype}: class labels? cfx needs the score before "
                "the threshold"
            )
        if self.outputs == "probability":
            info = torch.finfo(out.dtype)
            # p is kept from 0 and 1 exactly (log(0) = -inf): below the smallest normal number
            # and above the largest number under 1, both far beyond any real confidence
            low, high = info.tiny, 1.0 - info.eps / 2
            p = out.clamp(low, high)
            logit = torch.log(p) - torch.log1p(-p)
            flat = (out.detach() < low) | (out.detach() > high)  # (B, 1): 0 or 1 exactly
            if not self._warned_flat and bool(flat.any()):
                self._warned_flat = True
                warnings.warn(
                    f"TwoLogits: the model's probability is exactly 0 or 1 in {out.dtype} for "
                    f"{int(flat.sum())} of the {n} image{'s' if n != 1 else ''} of a call (a "
                    "float32 sigmoid rounds to 1 above a logit of ~16.6 and to 0 below ~-88): "
                    "a saturated sigmoid has no gradient there, so gradient-based methods "
                    "cannot move those images, and their logits are clipped; give cfx the "
                    "logit before the sigmoid (`outputs='logit'`) if the model can return it",
                    Notice,
                    stacklevel=user_stacklevel(),
                )
        else:
            logit = out
            # a sigmoid's outputs all lie in [0, 1]; 16 logits of one batch rarely all do,
            # nor do 64 over the wrapper's calls (a path explained one image at a time: a
            # real logit near the boundary stays in [0, 1] for a few steps, not for 64)
            if not self._warned and self._all_unit:
                unit = bool(((out >= 0) & (out <= 1)).all())
                self._all_unit = unit
                self._seen += out.shape[0]
                if unit and (out.shape[0] >= 16 or self._seen >= 64):
                    self._warned = True
                    warnings.warn(
                        f"TwoLogits: every output so far ({self._seen}) lies in [0, 1], as a "
                        "sigmoid's would; taken for logits, class 1 gets p >= 0.5 for every "
                        "image. For a model ending in a sigmoid pass "
                        "`TwoLogits(model, outputs='probability')`",
                        Notice,
                        stacklevel=user_stacklevel(),
                    )
        half = logit / 2  # (B, 1): l1 - l0 = l, the log-odds
        return torch.cat([-half, half], 1)


def check_two_classes(logits: Tensor, name: str, probe: str | None = None) -> None:
    """An error naming ``name`` for ``(B, 1)`` or ``(B,)`` outputs: softmax over one logit is
    1 for every image, so a target probability would never move. ``probe``: as in
    :func:`class_logits` (the logits are of one image of that batch)."""
    if logits.ndim == 1 or logits.shape[1] < 2:
        got = (
            f"on {probe}, `{name}` returned shape {tuple(logits.shape)}: one logit per image"
            if probe is not None
            else f"`{name}` returns one logit per image, shape {tuple(logits.shape)}"
        )
        raise ValueError(
            f"{got}; cfx needs one logit per class, (B, K) with K >= 2. For a binary model "
            f"with a single output, pass "
            f"`cfx.calls.TwoLogits(model)` (its logit, before any sigmoid) or "
            f"`cfx.calls.TwoLogits(model, outputs='probability')` (a sigmoid's output)"
        )


def looks_like_probabilities(logits: Tensor) -> bool:
    """Whether ``(B, K)`` outputs are non-negative rows that each sum to 1 (to the precision
    of their dtype): a classifier ending in a softmax, whose outputs cfx would take for
    logits and soften again."""
    # K roundings of eps/2 each, doubled; 10x flagged half-precision logits ([0.67, 0.32])
    tol = logits.shape[1] * torch.finfo(logits.dtype).eps if logits.is_floating_point() else 0
    sums = logits.float().sum(1)
    return bool((logits >= 0).all()) and bool(((sums - 1).abs() <= max(tol, 1e-6)).all())


def trained_size_mismatch(
    model: object, shape: Sequence[int], name: str, images: str, *, frames: bool = False
) -> str | None:
    """A message when ``model`` (called ``name`` in it) records in its config that it was
    trained on images of another ``(H, W)`` than the last two entries of ``shape``, the
    shape of ``images`` (what it is given, e.g. ``x.shape``), else None. ``frames``: the
    images are a generator's, whose size is fixed, so the advice is to train the model at
    that size.

    Convolutional classifiers take any size, but their answers change with the scale they
    see: brain-cnn classifies 98.6 % of 500 test slices right at its own 64x64 and 84 % of
    the same slices resized to 32x32 or to 128x128. Models without a record (zoo models
    from before it, other architectures) pass without a word; one int records a square."""
    recorded = getattr(getattr(model, "config", None), "image_size", None)
    if isinstance(recorded, Integral) and not isinstance(recorded, bool):
        recorded = (recorded, recorded)  # one int for a square (Hugging Face's convention)
    if not (
        isinstance(recorded, (tuple, list))
        and len(recorded) == 2
        and all(
            isinstance(v, Integral) and not isinstance(v, bool) and int(v) > 0 for v in recorded
        )
    ):
        return None  # no record, or none that reads as a size
    trained = (int(recorded[0]), int(recorded[1]))
    size = tuple(int(v) for v in shape[-2:])
    if trained == size:
        return None
    advice = (
        f"train it on {size[1]}x{size[0]} images, the size the generator makes"
        if frames
        else f"resize the images to {trained[1]}x{trained[0]} or train a model on this size"
    )
    return (
        f"{name} was trained on {trained[1]}x{trained[0]} images (width x height) and is "
        f"given {size[1]}x{size[0]} {images}; a classifier's answers change with the scale "
        f"it sees: {advice}"
    )


def float_weight(module: nn.Module) -> Tensor | None:
    """``module``'s first floating-point parameter or buffer (its dtype and device are the
    ones its inputs must have), or None."""
    tensors = [*module.parameters(), *module.buffers()]
    return next((t for t in tensors if t.is_floating_point()), None)


def to_model(x: Tensor, model: object) -> Tensor:
    """``x`` where ``model`` takes its inputs: on the device and in the dtype of the first
    floating-point parameter of the modules it holds (:func:`held_modules`: a function's
    network too, and :class:`TwoLogits` around a function), else of their first
    floating-point buffer (a wrapper's own float32 ``mean`` buffer, as
    :class:`~cfx.images.UnitInput` keeps, cast float64 images for a float64 network to
    float32); unchanged when there is none (a parameter-free model, or integer weights only,
    whose dtype is no input's)."""
    found = held_modules(model)
    tensors = [t for m in found for t in m.parameters()] + [t for m in found for t in m.buffers()]
    w = next((t for t in tensors if t.is_floating_point()), None)
    return x if w is None else x.to(w.device, w.dtype)


def dtype_device_mismatch(models: dict[str, object], x: Tensor, name: str = "x") -> str | None:
    """A message naming the first ``nn.Module`` of ``models`` (name -> model) whose
    floating-point weights are not in ``x``'s dtype and on its device (every model's, when
    the models differ among themselves: converting the images alone would not do), else
    None; the message
    calls the images ``name`` (the caller's argument). Used to explain a model call that
    failed: PyTorch's own error comes from deep inside the model and names neither (a model
    that casts or moves its inputs itself works regardless)."""
    found = {  # every model's first floating-point weight
        k: w
        for k, m in models.items()
        if isinstance(m, nn.Module) and (w := float_weight(m)) is not None
    }
    off = {k: w for k, w in found.items() if (w.dtype, w.device) != (x.dtype, x.device)}
    if not off:
        return None
    model_name, w = next(iter(off.items()))
    if len({(v.dtype, v.device) for v in found.values()}) > 1:  # the models differ too
        kinds = "; ".join(f"the {k}'s {v.dtype} on {v.device}" for k, v in found.items())
        return (
            f"`{name}` is {x.dtype} on {x.device} and the models' weights differ among "
            f"themselves ({kinds}): convert the models to one dtype and device (e.g. "
            f"`model.to({x.dtype})` for each) so they match the images"
        )
    return (
        f"`{name}` is {x.dtype} on {x.device} but the {model_name}'s weights are {w.dtype} "
        f"on {w.device}: convert the images (e.g. `{name}.to({w.dtype}).to('{w.device}')`) "
        f"or the models (e.g. `model.to({x.dtype})`) so they match"
    )


def call_named(
    fn: Callable[[], Tensor],
    models: dict[str, object],
    x: Tensor,
    failed: str,
    *,
    name: str = "x",
) -> Tensor:
    """``fn()``, a call of ``models`` on ``x`` (the caller's argument ``name``). PyTorch's
    errors there come from deep inside a model and name neither: a ``RuntimeError`` is
    re-raised as a ``TypeError`` naming ``name`` and the model whose dtype or device differs
    from ``x``'s (:func:`dtype_device_mismatch`), else as a ``ValueError`` reading
    ``failed: <PyTorch's first line>``."""
    try:
        return fn()
    except (torch.OutOfMemoryError, NotImplementedError):
        raise  # RuntimeErrors a caller catches by type (a retry on a smaller batch): kept
    except RuntimeError as err:
        mismatch = dtype_device_mismatch(models, x, name)
        if mismatch is not None:
            raise TypeError(mismatch) from err
        # (B, H, W, C) with few channels last, read as C = H channels: say so
        last = x.ndim == 4 and x.shape[-1] in (1, 3, 4) and x.shape[1] not in (1, 3, 4)
        hint = f"; channels last? `{name}`.permute(0, 3, 1, 2) puts them first" if last else ""
        raise ValueError(f"{failed}: {str(err).splitlines()[0]}{hint}") from err


def target_margin(logits: Tensor, target: Tensor) -> Tensor:
    """``logit[target] - logsumexp(other logits)`` = ``log(p / (1 - p))``, ``(B,)``."""
    own = logits.gather(1, target[:, None])[:, 0]
    others = logits.scatter(1, target[:, None], float("-inf"))
    return own - torch.logsumexp(others, dim=1)


def target_prob(logits: Tensor, target: Tensor) -> Tensor:
    """Softmax probability of the target class, ``(B,)``."""
    return torch.softmax(logits, dim=1).gather(1, target[:, None])[:, 0]
