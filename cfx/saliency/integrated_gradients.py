"""Integrated Gradients: Sundararajan, Taly & Yan, "Axiomatic Attribution for Deep Networks",
ICML 2017.

``IG_i(x) = (x_i - x'_i) * integral_0^1 d f(x' + a (x - x')) / d x_i da`` for the target
logit ``f`` and a baseline ``x'``; the integral is a quadrature over ``n_steps`` points, all
evaluated in batches. Completeness: the attributions sum to ``f(x) - f(x')`` up to the
quadrature error (exactly for a model that is linear along the path).

Quadratures (``method``): ``"gausslegendre"`` (Captum's default; same nodes and weights),
``"riemann_left"``, ``"riemann_right"``, ``"riemann_middle"`` (as Captum) and
``"riemann_trapezoid"`` (the trapezoid rule on ``linspace(0, 1, n)`` with weights summing to
1; Captum's variant weights the points ``1/n`` with halved ends, which sum to ``1 - 1/n``).
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np
import torch
from torch import Tensor

from cfx.errors import MapQualityNotice, check, check_flag, fail
from cfx.reprs import settings_repr
from cfx.saliency._common import (
    Reduction,
    all_logits,
    check_input,
    frozen,
    input_gradient,
    make_baseline,
    positive_int,
    reduce_channels,
    resolve_all,
    targets_from,
)
from cfx.saliency.metrics import _check_maps
from cfx.types import Classifier, Target

Quadrature = Literal[
    "gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid"
]


def quadrature(method: Quadrature, n: int) -> tuple[Tensor, Tensor]:
    """Nodes ``alpha`` in [0, 1] and weights (float64, ``(n,)`` each) of a rule on [0, 1]."""
    if method == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(n)
        return torch.from_numpy(0.5 * (nodes + 1)), torch.from_numpy(0.5 * weights)
    if n < 2:
        raise ValueError(f"`n_steps` must be at least 2 for {method!r}, got {n}")
    w = torch.full((n,), 1.0 / n, dtype=torch.float64)
    if method == "riemann_left":
        a = torch.linspace(0, 1 - 1 / n, n, dtype=torch.float64)
    elif method == "riemann_right":
        a = torch.linspace(1 / n, 1, n, dtype=torch.float64)
    elif method == "riemann_middle":
        a = torch.linspace(1 / (2 * n), 1 - 1 / (2 * n), n, dtype=torch.float64)
    elif method == "riemann_trapezoid":
        a = torch.linspace(0, 1, n, dtype=torch.float64)
        w = torch.full((n,), 1.0 / (n - 1), dtype=torch.float64)
        w[0] = w[-1] = 0.5 / (n - 1)
    else:
        fail(ValueError, f"`method` must be one of {get_args(Quadrature)}, got {method!r}")
    return a, w


class IntegratedGradients:
    """Path-integrated gradients from a baseline image to the input.

    Reference: Sundararajan, Taly & Yan, "Axiomatic Attribution for Deep Networks", ICML 2017.

    Args:
        model: images ``(B, C, H, W)`` in [-1, 1] -> logits ``(B, K)``.
        baseline: reference image in [-1, 1] (float or tensor broadcastable to ``x``);
            the default -1 is black.
        n_steps: quadrature points along the straight path.
        method: quadrature rule (see the module docstring).
        reduce: channel reduction; ``"sum"`` keeps completeness.
        batch_size: path images per forward/backward pass.
    """

    __repr__ = settings_repr  # the arguments given, defaults left out

    def __init__(
        self,
        model: Classifier,
        *,
        baseline: float | Tensor = -1.0,
        n_steps: int = 32,
        method: Quadrature = "gausslegendre",
        reduce: Reduction = "sum",
        batch_size: int = 32,
    ) -> None:
        self.model = model
        self.baseline = baseline
        self.n_steps = n_steps
        self.method = method
        self.reduce = reduce
        self.batch_size = batch_size

    def attribute(self, x: Tensor, target: Target | None, *, create_graph: bool = False) -> Tensor:
        """Signed maps ``(B, 1, H, W)`` for images ``x`` ``(B, C, H, W)`` in [-1, 1].

        ``target``: int, ``(B,)`` tensor or None (predicted class at ``x``).
        ``create_graph=True`` keeps the map differentiable w.r.t. ``x``.
        """
        # an attack calls this every step on images checked once: no model probe then
        check_flag("create_graph", create_graph)  # "no" kept the graph
        x = check_input(x, None if create_graph else self.model)
        base = make_baseline(self.baseline, x)
        n = positive_int("n_steps", self.n_steps)
        size = positive_int("batch_size", self.batch_size)
        alphas, weights = quadrature(self.method, n)
        alphas = alphas.to(x)
        weights = weights.to(x)
        b = x.shape[0]
        delta = x - base  # (B, C, H, W)
        with frozen(self.model):
            f_x, tgt = resolve_all(self.model, x.detach(), target, size)  # f(x): the gap's too
            path = base.unsqueeze(0) + alphas.view(-1, 1, 1, 1, 1) * delta.unsqueeze(0)
            grads, _ = input_gradient(
                self.model,
                path.flatten(0, 1),  # (S*B, C, H, W), step-major
                tgt.repeat(n),
                create_graph=create_graph,
                batch_size=size,
            )
        mean_grad = (grads.view(n, b, *x.shape[1:]) * weights.view(-1, 1, 1, 1, 1)).sum(0)
        maps = reduce_channels(delta * mean_grad, self.reduce)  # (B, 1, H, W)
        if create_graph:  # an attack's step: checked once, when the maps are asked for plainly
            return maps
        maps = maps.detach()  # plain, as the other methods' maps
        if self.reduce == "sum":  # the maps keep completeness: say when the rule missed it
            with frozen(self.model), torch.no_grad():
                f_b = all_logits(self.model, base, size)
            _warn_unconverged(_relative_gap(maps, f_x, f_b, tgt), n, self.method)
        return maps


COMPLETENESS_TOLERANCE = 0.1
"""A map whose sum misses ``f(x) - f(x')`` by more than this share of it is noticed."""


def completeness_gap(
    model: Classifier,
    x: Tensor,
    maps: Tensor,
    target: Target | None,
    baseline: float | Tensor = -1.0,
    *,
    batch_size: int = 32,
) -> Tensor:
    """``(B,)`` relative completeness gap of Integrated Gradients maps ``(B, 1, H, W)``
    (channels summed): ``|sum(map) - (f(x) - f(x'))| / |f(x) - f(x')|`` for the ``target``
    logit ``f`` (int, ``(B,)`` tensor or None for the prediction, as ``attribute`` takes it),
    images ``x`` and ``baseline`` ``x'`` (a float or a tensor broadcastable to ``x``, as
    :class:`IntegratedGradients` takes it); 0 when both are 0, infinite when only the
    difference is. The quadrature's error, as Captum's ``return_convergence_delta`` (absolute
    there): a model with kinks (ReLU) converges slowly in ``n_steps``. The model runs on
    ``batch_size`` images at a time."""
    # each checked: a map of one image broadcast over the batch, or of another size, gave
    # a plausible gap that decides n_steps (session 52 audit)
    x = check_input(x, model)
    maps = _check_maps(maps)
    want = (x.shape[0], 1, *x.shape[2:])
    check(
        tuple(maps.shape) == want,
        ValueError,
        f"`maps` must have shape {want} (one map per image of `x`), got {tuple(maps.shape)}",
    )
    size = positive_int("batch_size", batch_size)
    base = make_baseline(baseline, x)
    with frozen(model), torch.no_grad():
        f_x, f_b = all_logits(model, x, size), all_logits(model, base, size)
    return _relative_gap(maps, f_x, f_b, targets_from(target, f_x))


def _relative_gap(maps: Tensor, f_x: Tensor, f_b: Tensor, target: Tensor) -> Tensor:
    """``(B,)`` ``|sum(map) - (f_x - f_b)[target]| / |(f_x - f_b)[target]|`` (0 when both
    are 0) from the logits ``(B, K)`` at the images and at the baseline."""
    tgt = target[:, None]
    want = (f_x.gather(1, tgt) - f_b.gather(1, tgt))[:, 0].double()
    miss = (maps.flatten(1).sum(1).double() - want).abs()
    rel = miss / want.abs()
    return torch.where(miss == 0, torch.zeros_like(rel), rel)


def _warn_unconverged(gap: Tensor, n_steps: int, method: str) -> None:
    """A Notice when a map misses completeness by more than the tolerance."""
    bad = gap > COMPLETENESS_TOLERANCE
    if not bool(bad.any()):
        return
    import warnings

    warnings.warn(
        f"IntegratedGradients(n_steps={n_steps}, method={method!r}): the maps of "
        f"{int(bad.sum())} of {gap.numel()} images sum to more than "
        f"{COMPLETENESS_TOLERANCE:.0%} away from f(x) - f(baseline) (largest gap "
        f"{float(gap.max()):.0%}): the quadrature has not converged on this model; more "
        "n_steps bring the maps closer (completeness_gap measures it)",
        MapQualityNotice,
        stacklevel=3,
    )
