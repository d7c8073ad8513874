"""Fréchet distance between two sets of feature vectors (the "FID" formula, any features).

cfx reports it in the feature space of an independently trained network (e.g. the zoo's
``brain-oracle`` penultimate layer), always next to the real-vs-real floor measured on the
same features; it is not comparable with published FID numbers (Inception features).
"""

from __future__ import annotations

import numpy as np
from torch import Tensor


def frechet_distance(features_a: Tensor | np.ndarray, features_b: Tensor | np.ndarray) -> float:
    """``||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))`` for ``(N, D)`` feature sets.

    The Fréchet distance between Gaussians fitted to the two sets (``mu`` means, ``S``
    covariances); ``features_a`` ``(N_a, D)`` and ``features_b`` ``(N_b, D)`` may differ in
    ``N``. cfx passes the penultimate-layer features of the independently trained
    ``brain-oracle`` (not Inception's), so its values are comparable only with each other and
    with the real-vs-real floor on the same features, not with published FID numbers.

    Returns one number for the two sets (not per example), never below 0; lower = the sets
    closer (0 for identical statistics). The trace of
    ``(S_a S_b)^(1/2)`` is taken exactly, also for singular covariances (fewer rows than
    features, or features that never vary): the usual ``sqrtm`` of the product fails there
    and FID code retries with ``1e-6`` added to both covariances, which lowers the distance
    by the square root of what that adds to each zero eigenvalue of the product (2.4e-3 in a
    three-feature example, more with more such eigenvalues; the zoo's real-vs-real floors at
    n = 500 are 0.007-0.012, BENCHMARKS.md).

    Reference: Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local
    Nash Equilibrium", NeurIPS 2017 (the FID).
    """
    a, b = _array(features_a, "features_a"), _array(features_b, "features_b")
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(
            f"`features_a` and `features_b` must be (N, D) with equal D, got {a.shape} and "
            f"{b.shape}"
        )
    for name, feats in (("features_a", a), ("features_b", b)):
        if feats.shape[0] < 2:  # a covariance needs two rows
            raise ValueError(f"`{name}` must hold at least 2 rows, got {feats.shape[0]}")
    a, b = a.astype(np.float64), b.astype(np.float64)
    for name, feats in (("features_a", a), ("features_b", b)):
        if not np.isfinite(feats).all():
            rows = np.flatnonzero(~np.isfinite(feats).all(1))
            raise ValueError(
                f"`{name}` holds NaN or infinite values in {rows.size} of {feats.shape[0]} rows "
                f"(first: {rows[:5].tolist()})"
            )
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a = np.atleast_2d(np.cov(a, rowvar=False))  # (D, D), also for D = 1
    cov_b = np.atleast_2d(np.cov(b, rowvar=False))
    diff = mu_a - mu_b
    value = float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * _trace_sqrt(cov_a, cov_b))
    return max(value, 0.0)  # rounding leaves e.g. -4e-6 for two identical sets


def _trace_sqrt(cov_a: np.ndarray, cov_b: np.ndarray) -> float:
    """``Tr (S_a S_b)^(1/2)`` for symmetric positive semi-definite ``S_a``, ``S_b``: the sum of
    the square roots of the eigenvalues of ``S_a^(1/2) S_b S_a^(1/2)``, which is similar to
    ``S_a S_b`` and symmetric, so they are real and (up to rounding, clipped) non-negative."""
    w, v = np.linalg.eigh(cov_a)
    root_a = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
    inner = root_a @ cov_b @ root_a
    lam = np.linalg.eigvalsh((inner + inner.T) / 2.0)
    return float(np.sqrt(np.clip(lam, 0.0, None)).sum())


def _array(features: object, name: str) -> np.ndarray:
    """A numpy array of ``features`` (a tensor of any dtype: numpy has no bfloat16), or a
    ``TypeError`` naming ``name`` when it holds no numbers (a string was read as a 0-d array
    and said to have shape ())."""
    if isinstance(features, Tensor):
        t = features.detach().cpu()
        return np.asarray(t.double() if t.is_floating_point() else t)
    a = np.asarray(features)
    if a.dtype.kind not in "biuf":
        raise TypeError(
            f"`{name}` must be an (N, D) tensor or array of numbers, got {type(features).__name__}"
            + (f" of {a.dtype}" if a.dtype.kind != "O" and a.ndim else "")
        )
    return a
