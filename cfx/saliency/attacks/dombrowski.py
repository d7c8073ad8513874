"""Target-map manipulation: Dombrowski, Alber, Anders, Ackermann, Mueller & Kessel,
"Explanations can be manipulated and geometry is to blame", NeurIPS 2019.

Minimise ``L = ||h(x_adv) - h_t||^2 / ||h(x) - h_t||^2 + gamma ||p(x_adv) - p(x)||^2`` over the
perturbed image, where ``h`` is the explanation (``|map|`` normalised to sum 1), ``h_t`` the
target map (normalised the same way) and ``p`` the class probabilities, which the second term
keeps in place. Gradients come from a copy of the model whose ReLUs are softplus(beta), with
``beta`` annealed geometrically from ``beta_start`` (smooth, informative gradients) to
``beta_end`` (close to the real ReLU network) as in the paper. Adam steps, each followed by a
projection into the L-inf ball of radius ``epsilon`` and the image range; the returned image is
the iterate whose real explanation is closest to the target among those that keep the label.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from cfx.calls import class_logits, resolve_target
from cfx.errors import check_flag, shape_or_type
from cfx.reprs import settings_repr
from cfx.saliency._common import (
    SaliencyMethod,
    check_input,
    frozen,
    notices_given,
    own_generator,
    positive_float,
    positive_int,
)
from cfx.saliency.attacks._common import (
    RANGE,
    AttackResult,
    check_epsilon,
    check_explainer,
    default_k,
    predict,
    project,
    relevance,
    result,
    set_beta,
    softplus_surrogate,
    takes_generator,
    zero_gradient_notice,
)
from cfx.types import Target


class TargetMapAttack:
    """Steer an explanation towards a chosen target map while the prediction stays put.

    Reference: Dombrowski, Alber, Anders, Ackermann, Mueller & Kessel, "Explanations can be
    manipulated and geometry is to blame", NeurIPS 2019.

    Args:
        explainer: a differentiable saliency method (``attribute`` takes ``create_graph``)
            whose ``model`` is an ``nn.Module``.
        epsilon: L-inf budget as a fraction of the intensity range (``8/255`` = eight grey
            levels; cfx pixels in [-1, 1] move by at most ``2 * epsilon``).
        steps: Adam iterations.
        lr: Adam learning rate as a fraction of the intensity range.
        gamma: weight of the output-preservation term.
        beta_start, beta_end: softplus sharpness at the first and last step.
        k: pixels in the top-k set for the reported intersection (None = 2% of the pixels).
        show_progress: tqdm bar over iterations.
    """

    __repr__ = settings_repr  # the arguments given, defaults left out

    def __init__(
        self,
        explainer: SaliencyMethod,
        *,
        epsilon: float = 8 / 255,
        steps: int = 100,
        lr: float = 2 / 255,
        gamma: float = 1.0,
        beta_start: float = 2.0,
        beta_end: float = 50.0,
        k: int | None = None,
        show_progress: bool = False,
    ) -> None:
        self.explainer = explainer
        self.epsilon = epsilon
        self.steps = steps
        self.lr = lr
        self.gamma = gamma
        self.beta_start = beta_start
        self.beta_end = beta_end
        self.k = k
        self.show_progress = check_flag("show_progress", show_progress)

    def perturb(
        self,
        x: Tensor,
        target: Target | None = None,
        *,
        target_map: Tensor,
        generator: torch.Generator | None = None,
    ) -> AttackResult:
        """Attack images ``x`` ``(B, C, H, W)`` in [-1, 1] towards ``target_map``
        (``(B, 1, H, W)`` or ``(1, 1, H, W)``, any non-negative scale). ``target``: class
        explained (None = predicted). ``generator``: noise of stochastic explainers."""
        model = check_explainer(self.explainer, differentiable=True)
        x0 = check_input(x, model).detach()  # a float64 image for a float32 model is named
        with notices_given():  # the probe above gave them once
            eps = check_epsilon(self.epsilon)
            steps = positive_int("steps", self.steps, minimum=0)
            lr = positive_float("lr", self.lr)
            gamma = positive_float("gamma", self.gamma, allow_zero=True)
            b0, b1 = (
                positive_float("beta_start", self.beta_start),
                positive_float("beta_end", self.beta_end),
            )
            k = default_k(self.k, x0)
            generator = own_generator(generator)
            goal = _target_map(target_map, x0)  # (B, P), sums to 1

            with torch.no_grad(), frozen(model):
                logits0 = class_logits(model, x0, name="model")
            label = logits0.argmax(1)
            probs0 = torch.softmax(logits0, 1)
            tgt = (
                label
                if target is None
                else resolve_target(target, x0.shape[0], logits0.shape[1], x0.device)
            )
            budget = eps * RANGE
            gen_kw = {"generator": generator} if takes_generator(self.explainer) else {}
            surrogate = softplus_surrogate(self.explainer, b0)
            sur_model = surrogate.model  # type: ignore[attr-defined]

            maps0 = self.explainer.attribute(x0, tgt, **gen_kw).detach()
            scale = (relevance(maps0) - goal).square().sum(1).clamp_min(1e-20)  # (B,)
            best_x = x0.clone()
            best = torch.ones_like(scale)  # normalised distance to the goal of the original map
            delta = torch.zeros_like(x0, requires_grad=True)
            opt = torch.optim.Adam([delta], lr=lr * RANGE)
            iterator = range(steps)
            if self.show_progress:
                from cfx.progress import tqdm

                iterator = tqdm(iterator, desc="target-map attack", unit="step")
            for i in iterator:
                beta = b0 * (b1 / b0) ** (i / max(1, steps - 1))
                set_beta(surrogate, beta)
                xa = x0 + delta
                maps = surrogate.attribute(xa, tgt, create_graph=True, **gen_kw)  # type: ignore[call-arg]
                map_loss = (relevance(maps) - goal).square().sum(1) / scale
                with frozen(sur_model):
                    probs = torch.softmax(class_logits(sur_model, xa), 1)
                loss = map_loss + gamma * (probs - probs0).square().sum(1)
                opt.zero_grad()
                loss.sum().backward()
                if i == 0 and delta.grad is not None:
                    zero_gradient_notice(delta.grad, "TargetMapAttack")
                opt.step()
                with torch.no_grad():
                    delta.copy_(project(x0 + delta, x0, budget) - x0)
                    x_adv = x0 + delta
                    kept = predict(model, x_adv) == label
                    real = self.explainer.attribute(x_adv, tgt, **gen_kw).detach()
                    dist = (relevance(real) - goal).square().sum(1) / scale
                    better = kept & (dist < best) & torch.isfinite(dist)
                    best_x[better] = x_adv[better]
                    best = torch.where(better, dist, best)
            if not math.isfinite(float(best.sum())):
                best = torch.nan_to_num(best)
            return result(self.explainer, x0, best_x, tgt, k, generator=generator)


def _target_map(target_map: object, x: Tensor) -> Tensor:
    if isinstance(target_map, Tensor) and target_map.dtype == torch.bool:
        target_map = target_map.to(x.dtype)  # a drawn region: its pixels share the mass
    if not isinstance(target_map, Tensor) or not target_map.is_floating_point():
        raise TypeError(
            "`target_map` must be a float (or bool) tensor (B, 1, H, W) or (1, 1, H, W), got "
            f"{shape_or_type(target_map)}"
            + (f" of {target_map.dtype}" if isinstance(target_map, Tensor) else "")
        )
    want = (1, *x.shape[2:])
    if (
        target_map.ndim != 4
        or tuple(target_map.shape[1:]) != want
        or target_map.shape[0] not in (1, x.shape[0])
    ):
        raise ValueError(
            f"`target_map` must have shape ({x.shape[0]}, 1, {x.shape[2]}, {x.shape[3]}) or "
            f"(1, 1, {x.shape[2]}, {x.shape[3]}), got {tuple(target_map.shape)}"
        )
    if bool((target_map < 0).any()) or not bool((target_map.flatten(1).sum(1) > 0).all()):
        raise ValueError("`target_map` must be non-negative with a positive sum per image")
    return relevance(target_map.to(x).expand(x.shape[0], -1, -1, -1))
