"""KernelSHAP on superpixels: Lundberg & Lee, "A Unified Approach to Interpreting Model
Predictions", NeurIPS 2017.

Players are superpixels (:func:`~cfx.saliency.superpixels.superpixels`); a coalition keeps its
superpixels and sets the others to the baseline. Coalition sizes ``s`` are drawn from the Shapley
kernel's size distribution ``p(s) ~ (M - 1) / (s (M - s))``, members uniformly given the size,
and every coalition is paired with its complement (antithetic sampling); with sizes drawn this
way all samples carry equal weight. The Shapley values solve the least-squares problem
``min sum_n (f(z_n) - f(0) - z_n . phi)^2`` under the efficiency constraint
``sum phi = f(1) - f(0)``, in closed form through its KKT system, batched over images. Each
pixel gets its superpixel's value (Captum's convention for feature masks). For a model that is
linear in the coalition (e.g. a linear logit model with ``output="logit"``) the result is the
exact Shapley value. A seeded map depends on the rest of its batch: the coalitions are drawn
for the batch at once (LIME's and RISE's are not: their seeded maps are the same alone).
"""

from __future__ import annotations

import torch
from torch import Tensor

from cfx.reprs import settings_repr
from cfx.saliency._common import (
    Output,
    all_logits,
    check_input,
    draw_device,
    fast_model,
    frozen,
    make_baseline,
    masked_scores,
    own_generator,
    paint_segments,
    positive_int,
    resolve_all,
    segment_masks,
    select,
)
from cfx.saliency.lime import check_segments, present_segments
from cfx.saliency.superpixels import superpixels
from cfx.types import Classifier, Target


def shapley_coalitions(present: Tensor, n: int, generator: torch.Generator | None) -> Tensor:
    """``(B, n, K)`` bool coalitions over the present players, in complementary pairs."""
    b, k = present.shape
    on = present.cpu()  # drawn on the CPU, as the other methods draw (a CPU generator)
    m = on.sum(1)  # (B,) players per image
    # candidate sizes 1..K-1; one player (K = 1) keeps size 1: the pair (all on, all off)
    # then gives its Shapley value f(1) - f(0) exactly
    sizes = torch.arange(1, max(k, 2), dtype=torch.float64)
    mm = m[:, None].double()
    prob = (mm - 1) / (sizes[None] * (mm - sizes[None]))  # (B, K-1)
    prob = torch.where(sizes[None] < mm, prob, torch.zeros_like(prob))
    prob[m < 2, 0] = 1.0  # fewer than two players: nothing to sample, any row works
    half = (n + 1) // 2
    where = draw_device(generator)  # drawn there, worked on the CPU
    size = torch.multinomial(prob.to(where), half, replacement=True, generator=generator)
    size = size.cpu() + 1  # (B, half)
    scores = torch.rand(b, half, k, generator=generator, device=where).cpu()
    scores = torch.where(on[:, None], scores, torch.full_like(scores, 2.0))
    ranks = scores.argsort(2).argsort(2)  # (B, half, K): rank of each player's score
    z = ranks < size[:, :, None]
    z = torch.stack([z, on[:, None] & ~z], 2).flatten(1, 2)[:, :n]  # (B, n, K)
    return z.to(present.device)


class KernelSHAP:
    """Shapley values of superpixels, estimated by Kernel SHAP's weighted regression.

    Reference: Lundberg & Lee, "A Unified Approach to Interpreting Model Predictions",
    NeurIPS 2017.

    Args:
        model: images ``(B, C, H, W)`` in [-1, 1] -> logits ``(B, K)``.
        n_samples: coalitions per image (in complementary pairs).
        n_segments, compactness: superpixel settings (ignored when ``segments`` is given).
        baseline: value of absent superpixels in [-1, 1] (float or tensor); -1 = black.
        output: ``"probability"`` (default) or ``"logit"`` of the target. A confident model's
            probability saturates, so coalitions that keep the class look alike; logits keep
            them apart (``compare_methods`` builds this form). On brain-cnn, 16 validation
            slices: mean Dice 0.60 with probabilities, 0.62 with logits
            (``benchmarks/saliency_settings_probe.py``).
        batch_size: perturbed images per forward pass.
    """

    __repr__ = settings_repr  # the arguments given, defaults left out

    def __init__(
        self,
        model: Classifier,
        *,
        n_samples: int = 1000,
        n_segments: int = 64,
        compactness: float = 0.25,
        baseline: float | Tensor = -1.0,
        output: Output = "probability",
        batch_size: int = 32,
    ) -> None:
        self.model = model
        self.n_samples = n_samples
        self.n_segments = n_segments
        self.compactness = compactness
        self.baseline = baseline
        self.output = output
        self.batch_size = batch_size

    def attribute(
        self,
        x: Tensor,
        target: Target | None,
        *,
        generator: torch.Generator | None = None,
        segments: Tensor | None = None,
    ) -> Tensor:
        """Signed maps ``(B, 1, H, W)`` for images ``x`` ``(B, C, H, W)`` in [-1, 1].

        ``target``: int, ``(B,)`` tensor or None (predicted class). ``generator`` draws the
        coalitions; ``segments`` ``(B, H, W)`` integer labels replace the built-in SLIC.
        """
        x = check_input(x, self.model)
        n = positive_int("n_samples", self.n_samples, minimum=2)
        size = positive_int("batch_size", self.batch_size)
        generator = own_generator(generator)
        base = make_baseline(self.baseline, x)
        if segments is None:
            segments = superpixels(x, n_segments=self.n_segments, compactness=self.compactness)
        else:
            segments = check_segments(segments, x)
        k = int(segments.max()) + 1
        present = present_segments(segments, k)  # (B, K)
        z = shapley_coalitions(present, n, generator).to(x.dtype)  # (B, N, K)

        with frozen(self.model):
            logits, tgt = resolve_all(self.model, x, target, size)
            f1 = select(logits, tgt, self.output)  # (B,)
            with torch.no_grad():
                f0 = select(all_logits(self.model, base, size), tgt, self.output)  # (B,)
            y = masked_scores(
                fast_model(self.model, x[:1]),
                x,
                base,
                lambda bi, ni: segment_masks(segments[bi], z[bi, ni]),
                n,
                tgt,
                self.output,
                size,
            )  # (B, N)
        phi = constrained_least_squares(z, y - f0[:, None], present, f1 - f0)  # (B, K)
        return paint_segments(phi, segments)  # (B, 1, H, W)


def constrained_least_squares(z: Tensor, y: Tensor, present: Tensor, total: Tensor) -> Tensor:
    """``argmin ||y - z phi||^2`` s.t. ``sum(phi[present]) = total`` and ``phi[~present] = 0``.

    ``z`` ``(B, N, K)``, ``y`` ``(B, N)``, ``present`` ``(B, K)`` bool, ``total`` ``(B,)``.
    Solved in float64 through the KKT system ``[[Z^T Z, a], [a^T, 0]] [phi; mu] = [Z^T y;
    total]`` (absent players pinned to 0; a tiny ridge keeps rare ties solvable).
    """
    b, _, k = z.shape
    zd, yd = z.double(), y.double()
    a = present.double()  # (B, K)
    gram = zd.transpose(1, 2) @ zd  # (B, K, K)
    scale = 1e-8 * (1 + gram.diagonal(dim1=1, dim2=2).mean(1))  # (B,)
    gram = gram + torch.diag_embed((1 - a) + scale[:, None])
    kkt = torch.zeros(b, k + 1, k + 1, dtype=torch.float64, device=z.device)
    kkt[:, :k, :k] = gram
    kkt[:, :k, k] = a
    kkt[:, k, :k] = a
    rhs = torch.cat([(zd * yd[:, :, None]).sum(1), total.double()[:, None]], 1)  # (B, K+1)
    sol = torch.linalg.solve(kkt, rhs[:, :, None])[:, :, 0]
    return sol[:, :k].to(z.dtype) * present.to(z.dtype)
