"""LIME on superpixels: Ribeiro, Singh & Guestrin, ""Why Should I Trust You?": Explaining the
Predictions of Any Classifier", KDD 2016.

The image is cut into superpixels (:func:`~cfx.saliency.superpixels.superpixels`); ``N``
binary coalitions ``z`` switch superpixels on (kept) or off (set to the baseline), each on with
probability 1/2, the first sample being the full image (as in the reference ``lime_image``).
A ridge regression (``alpha``, unpenalised intercept) is fitted to the target output, with
sample weights ``sqrt(exp(-d^2 / width^2))`` of the cosine distance ``d`` between ``z`` and the
all-on coalition (``lime``'s kernel, width 0.25). Each pixel gets its superpixel's coefficient
(Captum's convention for feature masks). Images, samples and the regressions are all batched;
the regressions are solved in closed form with one batched linear solve.
"""

from __future__ import annotations

import torch
from torch import Tensor

from cfx.reprs import settings_repr
from cfx.saliency._common import (
    Output,
    check_input,
    draw_device,
    fast_model,
    frozen,
    make_baseline,
    masked_scores,
    own_generator,
    paint_segments,
    positive_float,
    positive_int,
    resolve_all,
    segment_masks,
)
from cfx.saliency.superpixels import superpixels
from cfx.types import Classifier, Target


def check_segments(segments: object, x: Tensor) -> Tensor:
    """User segment labels: an integer ``(B, H, W)`` tensor of non-negative labels."""
    want = (x.shape[0], *x.shape[2:])
    if not isinstance(segments, Tensor) or segments.is_floating_point():
        raise TypeError(f"`segments` must be an integer tensor of shape {want}, got {segments!r}")
    if tuple(segments.shape) != want:
        raise ValueError(f"`segments` must have shape {want}, got {tuple(segments.shape)}")
    if bool((segments < 0).any()):
        raise ValueError("`segments` must hold non-negative labels")
    return segments.to(device=x.device, dtype=torch.int64)


def present_segments(segments: Tensor, k: int) -> Tensor:
    """``(B, K)`` bool: which labels occur in each image."""
    present = torch.zeros(segments.shape[0], k, dtype=torch.bool, device=segments.device)
    return present.scatter_(1, segments.flatten(1), True)


class LIME:
    """Local linear surrogate fitted on superpixel coalitions.

    Reference: Ribeiro, Singh & Guestrin, "'Why Should I Trust You?': Explaining the
    Predictions of Any Classifier", KDD 2016.

    Args:
        model: images ``(B, C, H, W)`` in [-1, 1] -> logits ``(B, K)``.
        n_samples: coalitions per image (the first is the full image).
        n_segments, compactness: superpixel settings (ignored when ``segments`` is given).
        kernel_width: width of the exponential kernel on the cosine distance.
        alpha: ridge penalty (``lime`` uses scikit-learn's ``Ridge(alpha=1)``).
        baseline: value of switched-off superpixels in [-1, 1] (float or tensor); -1 = black.
        output: ``"probability"`` (default) or ``"logit"`` of the target.
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
        kernel_width: float = 0.25,
        alpha: float = 1.0,
        baseline: float | Tensor = -1.0,
        output: Output = "probability",
        batch_size: int = 32,
    ) -> None:
        self.model = model
        self.n_samples = n_samples
        self.n_segments = n_segments
        self.compactness = compactness
        self.kernel_width = kernel_width
        self.alpha = alpha
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
        width = positive_float("kernel_width", self.kernel_width)
        alpha = positive_float("alpha", self.alpha, allow_zero=True)
        size = positive_int("batch_size", self.batch_size)
        generator = own_generator(generator)
        base = make_baseline(self.baseline, x)
        if segments is None:
            segments = superpixels(x, n_segments=self.n_segments, compactness=self.compactness)
        else:
            segments = check_segments(segments, x)
        b = x.shape[0]
        k = int(segments.max()) + 1
        present = present_segments(segments, k)  # (B, K)
        where = draw_device(generator)
        z = torch.rand(b, n, k, generator=generator, device=where).to(x.device) < 0.5  # (B, N, K)
        z[:, 0] = True
        z = z | ~present[:, None]  # absent labels: "on", they change nothing
        zf = z.to(x.dtype)

        with frozen(self.model):
            _, tgt = resolve_all(self.model, x, target, size)
            y = masked_scores(
                fast_model(self.model, x[:1]),
                x,
                base,
                lambda bi, ni: segment_masks(segments[bi], zf[bi, ni]),
                n,
                tgt,
                self.output,
                size,
            )  # (B, N)

        # kernel weights from the cosine distance to the all-on coalition (present labels only)
        on = (zf * present[:, None]).sum(2)  # (B, N)
        m = present.sum(1, keepdim=True).to(x.dtype)  # (B, 1)
        dist = 1 - torch.sqrt(on / m)
        weight = torch.sqrt(torch.exp(-(dist**2) / width**2))  # (B, N)
        coef = weighted_ridge(zf * present[:, None], y, weight, alpha)  # (B, K)
        return paint_segments(coef, segments)  # (B, 1, H, W)


def weighted_ridge(z: Tensor, y: Tensor, weight: Tensor, alpha: float) -> Tensor:
    """Batched ridge regression with an unpenalised intercept (scikit-learn's ``Ridge``).

    ``z`` ``(B, N, K)``, ``y`` ``(B, N)``, ``weight`` ``(B, N)`` -> coefficients ``(B, K)``.
    Centres ``z`` and ``y`` by their weighted means and solves
    ``(Zc^T W Zc + alpha I) beta = Zc^T W yc``; a tiny jitter keeps constant columns solvable.
    """
    wsum = weight.sum(1, keepdim=True)  # (B, 1)
    z_mean = (weight[:, :, None] * z).sum(1, keepdim=True) / wsum[:, :, None]  # (B, 1, K)
    y_mean = (weight * y).sum(1, keepdim=True) / wsum  # (B, 1)
    zc, yc = z - z_mean, y - y_mean
    zw = zc * weight[:, :, None]  # (B, N, K)
    gram = zw.transpose(1, 2) @ zc  # (B, K, K)
    eye = torch.eye(z.shape[2], dtype=z.dtype, device=z.device)
    gram = gram + (alpha + 1e-6 * (1 + gram.diagonal(dim1=1, dim2=2).mean(1)))[:, None, None] * eye
    rhs = (zw * yc[:, :, None]).sum(1)  # (B, K)
    return torch.linalg.solve(gram.double(), rhs.double()[:, :, None])[:, :, 0].to(z.dtype)
