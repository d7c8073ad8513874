"""Pieces shared by the saliency methods: argument checks, targets, baselines, batched scoring.

Every method maps images ``(B, C, H, W)`` in [-1, 1] and a target class to a relevance map
``(B, 1, H, W)`` (higher = more evidence for the target). Models are used through
:func:`cfx.calls.frozen`: eval mode and no parameter gradients while a method
runs, both restored afterwards.
"""

from __future__ import annotations

import copy
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from numbers import Integral, Real
from typing import Literal, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from cfx.calls import (
    class_logits,
    frozen,
    gradients_on,
    held_modules,
    outside_inference,
    resolve_target,
    sequence_as_tensor,
)
from cfx.errors import Notice, check_int, check_real, fail
from cfx.images import IMAGE_RANGE, check_images
from cfx.types import Classifier, Target

Output = Literal["logit", "probability"]
Reduction = Literal["sum", "mean", "max"]

__all__ = ["Output", "Reduction", "SaliencyMethod", "frozen"]


@runtime_checkable
class SaliencyMethod(Protocol):
    """Anything with ``attribute(x, target) -> (B, 1, H, W)`` for images in [-1, 1]."""

    def attribute(self, x: Tensor, target: Target | None) -> Tensor: ...


# --- argument checks ------------------------------------------------------------------------


def positive_int(name: str, value: object, minimum: int = 1) -> int:
    return check_int(name, value, minimum=minimum)


def positive_float(name: str, value: object, *, allow_zero: bool = False) -> float:
    return check_real(name, value, low=0.0, open_low=not allow_zero)


def unit_interval(name: str, value: object, *, open_low: bool = True) -> float:
    return check_real(name, value, low=0.0, high=1.0, open_low=open_low)


def pair(name: str, value: object) -> tuple[int, int]:
    """An int or a pair of ints, each >= 1 -> ``(rows, cols)``."""
    if isinstance(value, Integral) and not isinstance(value, bool):  # numpy ints too
        value = (value, value)
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2:
        raise TypeError(f"`{name}` must be a positive int or a pair of them, got {value!r}")
    if not all(isinstance(v, Integral) and not isinstance(v, bool) for v in value):
        raise TypeError(f"`{name}` must be a positive int or a pair of them, got {value!r}")
    if not all(int(v) >= 1 for v in value):
        raise ValueError(f"`{name}` must be a positive int or a pair of them, got {value!r}")
    return int(value[0]), int(value[1])  # a list [4, 4] too


def check_generator(generator: object) -> torch.Generator | None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"`generator` must be a torch.Generator or None, got {generator!r}")
    return generator


def own_generator(generator: object) -> torch.Generator:
    """``generator`` checked, or for None a fresh CPU generator at torch's default seed: a
    call without one draws the same numbers each time and leaves torch's global generator as
    it was (it drew from it: a caller's seeded ``torch.rand`` after the call changed, and a
    shortcut audit with SmoothGrad differed run to run)."""
    given = check_generator(generator)
    return torch.Generator() if given is None else given


def draw_device(generator: torch.Generator | None) -> torch.device:
    """Where to draw from ``generator``: its own device (a CUDA generator draws on the GPU
    only), the CPU without one. The draws are then moved to where they are used, so a CPU
    generator gives the same numbers whatever the images' device."""
    return torch.device("cpu") if generator is None else generator.device


def takes_generator(method: object) -> bool:
    """Whether ``method.attribute`` accepts a ``generator`` (i.e. the method is stochastic)."""
    import inspect

    try:
        return "generator" in inspect.signature(method.attribute).parameters  # type: ignore[attr-defined]
    except (AttributeError, TypeError, ValueError):
        return False


def check_built_on(method: object, given: nn.Module, other: nn.Module, role: str) -> None:
    """An error when ``make_method(given)`` built a method on ``other`` (``role`` names it) or
    on a wrapper of it: a factory that ignores its argument (``lambda m: Gradient(model)``)
    explains the same model twice, and its maps match however the models differ."""
    held = getattr(method, "model", None)
    if given is other or not isinstance(held, nn.Module):
        return
    if any(sub is other for sub in held.modules()):
        raise ValueError(
            f"`make_method` must build the method on the model it is given, got a method on "
            f"{role}: write `lambda m: Method(m, ...)`, not `lambda m: Method(model, ...)`; "
            "otherwise both maps come from one model and match whatever the check tests"
        )


def check_editable(model: object, needs: str) -> None:
    """An error for a TorchScript module where cfx must copy and change the model (``needs``
    says why): a scripted module's deep copy cannot be frozen, and its layers cannot be
    swapped or hooked, which failed with PyTorch's 'leaf variables' or 'not supported on
    ScriptModules' errors."""
    inside = [sub for m in held_modules(model) for sub in m.modules()]  # TwoLogits(scripted)
    if any(isinstance(m, torch.jit.ScriptModule) for m in inside):
        fail(
            TypeError,
            f"{needs}, which a TorchScript module does not allow: pass the nn.Module it was "
            "scripted from (load its state_dict into the model class); the other saliency "
            "methods take the scripted module as it is",
        )


def replayed_maps(
    method: SaliencyMethod,
    x: Tensor,
    target: Tensor,
    generator: torch.Generator,
    state: Tensor,
    kwargs: dict[str, object],
    *,
    noisy: bool = False,
) -> Tensor:
    """``method``'s maps of ``x`` for ``target``, detached. A stochastic method (one whose
    ``attribute`` takes a ``generator``, or any when ``noisy``) gets ``generator`` reset to
    ``state`` first, so two calls draw the same noise and only the models differ (the
    randomisation checks); ``kwargs`` go to ``attribute`` and win over ``generator``."""
    if noisy or takes_generator(method):
        generator.set_state(state)
        return method.attribute(x, target, **{"generator": generator, **kwargs}).detach()
    return method.attribute(x, target, **kwargs).detach()


def check_input(x: object, model: Classifier | None = None) -> Tensor:
    """Validate an image batch (finite float ``(B, C, H, W)`` in [-1, 1]); returns ``x`` itself
    (with its autograd graph, if any). With ``model``, also try it on one image first, so that
    a dtype, device or channel mismatch, a single-logit model or a final softmax is named here
    rather than deep inside a method (:func:`probe_model`). Images made under
    ``torch.inference_mode()`` are copied, since an inference tensor cannot be differentiated
    outside it."""
    check_images(x.detach() if isinstance(x, Tensor) else x, "x")
    if isinstance(x, Tensor):
        x = outside_inference(x)  # keeps x's graph, unlike values_of
    if model is not None:
        probe_model(model, x)  # type: ignore[arg-type]
    return x  # type: ignore[return-value]


PROBE_NOTICES = (
    "the model's outputs look like probabilities",
    "no pixel of `x` is below 0",
    "`model` was trained on",
)
"""How :func:`probe_model`'s three warnings begin; a caller that has already told the user
(the shortcut audit, whose paths did) filters them by these."""


@contextmanager
def notices_given() -> Iterator[None]:
    """Silence the model probe's notices (:data:`PROBE_NOTICES`) inside: for a caller that
    has given them once already (an attack or ``compare_methods`` probes the model on its
    input, then calls methods and scores that would repeat them)."""
    with warnings.catch_warnings():
        for notice in PROBE_NOTICES:
            warnings.filterwarnings("ignore", message=re.escape(notice), category=UserWarning)
        yield


def probe_model(model: Classifier, x: Tensor) -> None:
    """One forward pass of ``model`` on ``x[:1]`` (frozen, no gradients): a PyTorch error there
    is re-raised naming ``x`` and the model (dtype, device, channels); a single logit points to
    :class:`~cfx.calls.TwoLogits`. Warns when the outputs look like probabilities (a final
    softmax, which cfx would soften again), when no pixel is below 0 ([0, 1] images) or when
    the model records that it was trained at another image size (its maps would explain the
    model at a scale it does not know)."""
    import warnings

    from cfx.calls import call_named, looks_like_probabilities, trained_size_mismatch

    one = x[:1].detach()
    with frozen(model), torch.no_grad():
        logits = call_named(
            lambda: class_logits(model, one, name="model", probe="one image of `x`"),
            {"model": model},
            one,
            f"`model` failed on `x` shaped {tuple(one.shape[1:])} per image (C, H, W)",
        )
    if looks_like_probabilities(logits):
        warnings.warn(
            PROBE_NOTICES[0] + " (non-negative, summing to 1): "
            "saliency methods take them for logits; drop the final softmax",
            Notice,
            stacklevel=4,
        )
    if float(x.detach().min()) >= 0.0:
        warnings.warn(
            PROBE_NOTICES[1] + ": cfx images are in [-1, 1], dark = -1; if these are "
            "[0, 1] images, map them with 2x - 1 (cfx.images.from_unit), and if the model was "
            "trained on [0, 1] images, pass it as cfx.images.UnitInput(model)",
            Notice,
            stacklevel=4,
        )
    size = trained_size_mismatch(model, x.shape, "`model`", "images in `x`")
    if size is not None:  # trajectory's explainers said so; the saliency methods did not
        warnings.warn(size, Notice, stacklevel=4)


def make_baseline(baseline: float | Tensor, x: Tensor) -> Tensor:
    """The reference image(s) that stand for "feature removed", broadcast to ``x``'s shape.

    A float is a constant image (cfx range [-1, 1]; -1 is black); a tensor must broadcast to
    ``(B, C, H, W)``.
    """
    if isinstance(baseline, bool):
        raise TypeError(f"`baseline` must be a float or a tensor, got {baseline!r}")
    if isinstance(baseline, Real):  # numpy numbers too: np.float32(-1) was refused
        out = torch.full_like(x, float(baseline))
    elif isinstance(baseline, Tensor):
        try:
            out = baseline.to(x).expand_as(x)
        except RuntimeError:
            raise ValueError(
                f"`baseline` must broadcast to the images' shape {tuple(x.shape)}, got "
                f"{tuple(baseline.shape)}"
            ) from None
    else:
        raise TypeError(f"`baseline` must be a float or a tensor, got {type(baseline).__name__}")
    lo, hi = float(out.min()), float(out.max())  # an image the model never saw otherwise
    if not (IMAGE_RANGE[0] - 1e-3 <= lo and hi <= IMAGE_RANGE[1] + 1e-3):
        raise ValueError(
            f"`baseline` must be in the cfx image range [-1, 1] (-1 = black), got values "
            f"{lo:.3g}..{hi:.3g}"
        )
    return out


def targets_from(target: Target | None, logits: Tensor) -> Tensor:
    """Class indices ``(B,)``: ``target`` checked against ``logits`` ``(B, K)``; None = argmax."""
    if target is None:
        return logits.detach().argmax(1)
    return resolve_target(target, logits.shape[0], logits.shape[1], logits.device)


def target_slice(target: Target | None, start: int, stop: int, total: int) -> Target | None:
    """Rows ``start:stop`` of a ``(total,)`` target tensor (ints and None pass through; a 0-d
    integer tensor, e.g. ``y[i]``, is the int it holds; a list or array is a tensor)."""
    target = sequence_as_tensor(target)
    integral = isinstance(target, Tensor) and not (
        target.is_floating_point() or target.is_complex() or target.dtype == torch.bool
    )
    if integral and target.ndim == 0:  # type: ignore[union-attr]
        return int(target.item())  # type: ignore[union-attr]
    if isinstance(target, Tensor):
        if target.is_floating_point() or target.ndim != 1 or target.shape[0] != total:
            raise ValueError(
                f"`target` must be an int or an integer tensor of shape ({total},), got "
                f"dtype {target.dtype} shape {tuple(target.shape)}"
            )
        return target[start:stop]
    return target


def reduce_channels(a: Tensor, how: Reduction) -> Tensor:
    """``(B, C, H, W)`` -> ``(B, 1, H, W)`` by a sum, mean or max over channels."""
    if how == "sum":
        return a.sum(1, keepdim=True)
    elif how == "mean":
        return a.mean(1, keepdim=True)
    elif how == "max":
        return a.amax(1, keepdim=True)
    else:
        fail(ValueError, f"`reduce` must be 'sum', 'mean' or 'max', got {how!r}")


def select(logits: Tensor, target: Tensor, output: Output) -> Tensor:
    """The target's logit or softmax probability, ``(N,)``."""
    if output == "logit":
        return logits.gather(1, target[:, None])[:, 0]
    elif output == "probability":
        return torch.softmax(logits, 1).gather(1, target[:, None])[:, 0]
    else:
        fail(ValueError, f"`output` must be 'logit' or 'probability', got {output!r}")


# --- a faster copy of the model ---------------------------------------------------------------


class _ChannelsLast:
    """Calls a channels-last copy of a model on channels-last inputs."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def __call__(self, x: Tensor) -> Tensor:
        return self.model(x.contiguous(memory_format=torch.channels_last))


def fast_model(model: Classifier, example: Tensor) -> Classifier:
    """A channels-last deep copy of ``model`` when it reproduces the model's logits on
    ``example`` (one image is enough), else ``model`` itself.

    Convolutions in channels-last layout run about twice as fast on CPUs (oneDNN) and on
    tensor-core GPUs; the user's model is never converted, only a private copy, made inside
    the caller's :func:`frozen` block (eval mode, no parameter gradients). Models that are not
    ``nn.Module`` s, cannot be copied, or whose output changes (beyond float rounding) under the
    new layout are used as they are.
    """
    if not isinstance(model, nn.Module) or example.ndim != 4:
        return model
    try:
        twin = copy.deepcopy(model).to(memory_format=torch.channels_last)
        with torch.no_grad():
            ref = model(example)
            got = twin(example.contiguous(memory_format=torch.channels_last))
    except (RuntimeError, TypeError, ValueError, AttributeError):
        return model
    if not isinstance(ref, Tensor) or not isinstance(got, Tensor) or got.shape != ref.shape:
        return model
    scale = float(ref.abs().max()) or 1.0
    if not torch.allclose(got, ref, rtol=1e-4, atol=1e-5 * scale):
        return model
    return _ChannelsLast(twin)


# --- gradients ------------------------------------------------------------------------------


def input_gradient(
    model: Classifier,
    x: Tensor,
    target: Target | None,
    *,
    create_graph: bool = False,
    batch_size: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Gradient of the target logit w.r.t. the images, and the resolved targets.

    ``x`` ``(B, C, H, W)``; returns ``(grad (B, C, H, W), target (B,))``. With
    ``create_graph=True`` the gradient stays differentiable w.r.t. ``x`` (if ``x`` requires
    grad, the graph reaches back to whatever produced it). ``batch_size`` splits the images
    into chunks of at most that many (None = one pass).
    """
    grads, targets = [], []
    step = x.shape[0] if batch_size is None else batch_size
    with gradients_on():  # also under the caller's no_grad; inference_mode is named
        for s in range(0, x.shape[0], step):
            chunk = x[s : s + step]
            inp = chunk if chunk.requires_grad else chunk.detach().requires_grad_(True)
            logits = class_logits(model, inp, name="model")  # (b, K)
            tgt = targets_from(target_slice(target, s, s + step, x.shape[0]), logits)
            score = logits.gather(1, tgt[:, None]).sum()
            (g,) = torch.autograd.grad(score, inp, create_graph=create_graph)
            grads.append(g)
            targets.append(tgt)
    return torch.cat(grads), torch.cat(targets)


def resolve_all(
    model: Classifier, x: Tensor, target: Target | None, batch_size: int | None = None
) -> tuple[Tensor, Tensor]:
    """The model's logits ``(B, K)`` without gradients, in chunks of ``batch_size`` images
    (None: one pass; a method's ``batch_size`` held only its later passes, and 64 images
    went through at once), and the targets ``(B,)``."""
    with torch.no_grad():
        logits = all_logits(model, x, batch_size)
    return logits, targets_from(target, logits)


def all_logits(model: Classifier, x: Tensor, batch_size: int | None) -> Tensor:
    """:func:`class_logits` of ``x`` in chunks of ``batch_size`` (None: one pass)."""
    size = x.shape[0] if batch_size is None else batch_size
    return torch.cat(
        [class_logits(model, x[a:b], name="model") for a, b in chunks(x.shape[0], size)]
    )


# --- batched perturbation scoring -----------------------------------------------------------


def chunks(total: int, size: int) -> Iterator[tuple[int, int]]:
    for s in range(0, total, size):
        yield s, min(s + size, total)


@torch.no_grad()
def masked_scores(
    model: Classifier,
    x: Tensor,
    baseline: Tensor,
    masks: Tensor | Callable[[Tensor, Tensor], Tensor],
    n_masks: int,
    target: Tensor,
    output: Output,
    batch_size: int,
    *,
    pairs: tuple[Tensor, Tensor] | None = None,
) -> Tensor:
    """Target output of the model on ``x * m + baseline * (1 - m)`` for every image and mask.

    Args:
        x, baseline: ``(B, C, H, W)``.
        masks: ``(N, 1, H, W)`` shared by all images, ``(B, N, 1, H, W)`` per image, or a
            function ``(image_index (n,), mask_index (n,)) -> (n, 1, H, W)`` that builds the
            masks of one chunk lazily (keeps memory flat for many large masks).
        n_masks: ``N``.
        target: ``(B,)`` class indices.
        batch_size: images per forward pass.
        pairs: optional ``(image_index, mask_index)`` subset to evaluate (then the result is
            flat, one score per pair).

    Returns ``(B, N)`` scores (or ``(len(pairs[0]),)``). Images and masks are flattened into
    one index ``b * N + n`` and evaluated in chunks of ``batch_size``, so many small images
    and many masks both batch.
    """
    b = x.shape[0]
    if pairs is None:
        flat = torch.arange(b * n_masks, device=x.device)
        all_bi, all_ni = flat // n_masks, flat % n_masks
    else:
        all_bi, all_ni = pairs
    out = torch.empty(all_bi.shape[0], dtype=x.dtype, device=x.device)
    for s, e in chunks(all_bi.shape[0], batch_size):
        bi, ni = all_bi[s:e], all_ni[s:e]
        if callable(masks):
            m = masks(bi, ni)
        elif masks.ndim == 4:
            m = masks[ni]
        else:
            m = masks[bi, ni]
        m = m.to(x.dtype)  # (n, 1, H, W)
        images = torch.lerp(baseline[bi], x[bi], m)  # (n, C, H, W): x where m = 1
        out[s:e] = select(class_logits(model, images, name="model"), target[bi], output)
    return out if pairs is not None else out.view(b, n_masks)


def segment_masks(segments: Tensor, z: Tensor) -> Tensor:
    """Pixel masks of coalitions: ``segments`` ``(n, H, W)`` int labels in [0, K), ``z``
    ``(n, K)`` {0, 1} -> ``(n, 1, H, W)`` with 1 where the pixel's segment is switched on."""
    return z.gather(1, segments.flatten(1)).view(segments.shape)[:, None]


def paint_segments(values: Tensor, segments: Tensor) -> Tensor:
    """Per-segment values ``(B, K)`` painted onto their pixels: ``(B, 1, H, W)``."""
    return values.gather(1, segments.flatten(1)).view(segments.shape)[:, None]
