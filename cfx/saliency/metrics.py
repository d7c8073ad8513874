"""Scores for saliency maps, one value per example (``Tensor[B]``), as pure functions.

Localisation against a ground-truth mask (Quantus semantics; Hedstroem et al., "Quantus",
JMLR 2023), for maps ``(B, 1, H, W)`` and boolean masks ``(B, 1, H, W)``:

* :func:`pointing_game` (Zhang et al., IJCV 2018): 1 if a maximum of the map falls in the mask
  (optionally dilated by ``tolerance`` pixels), else 0.
* :func:`relevance_mass_accuracy` (Arras et al., Information Fusion 2022): share of the map's
  total relevance that lies inside the mask.
* :func:`relevance_rank_accuracy` (Arras et al.): share of the ``K = |mask|`` highest-ranked
  pixels that lie inside the mask.
* :func:`energy_pointing_game` (Wang et al., "Score-CAM", CVPRW 2020): share of the positive
  map's energy inside the mask's bounding box.
* :func:`top_k_dice`, :func:`top_k_iou`: overlap of the binary top-``K`` map with the mask,
  ``K = |mask|``. (With equal sizes, Dice equals the relevance rank accuracy.)

Empty masks give NaN (nothing to localise), as in Quantus. Where pixels tie at the edge of
a top-``K`` set (a blank map, the zeros of ``maps.clamp(min=0)``, a method's flat plateaus),
the localisation scores take the expectation over a random choice among the tied pixels
(:func:`expected_top_k_hits`), as :func:`pointing_game` does for tied maxima: a blank map
scores the mask's share of the image wherever the mask lies. Breaking ties by pixel order
instead rewarded masks near the top of the image. :func:`top_k_mask` itself (used by the
attacks) breaks ties by pixel order, deterministically.

Similarity of two maps (attacks, randomisation check): :func:`top_k_intersection`
(Ghorbani et al., AAAI 2019; a tied pixel counts by its chance of a place in both, the
smaller one), :func:`spearman` (rank correlation) and :func:`mass_center_shift` (distance
between centres of mass of ``|map|``, in pixels).
"""

from __future__ import annotations

from numbers import Integral

import torch
import torch.nn.functional as F
from torch import Tensor

from cfx.errors import check
from cfx.images import binary_masks
from cfx.metrics.trajectory import spearman as spearman_rows


def _check_maps(maps: object, name: str = "maps") -> Tensor:
    if not isinstance(maps, Tensor) or not maps.is_floating_point():
        got = (
            f"a {maps.dtype} tensor {tuple(maps.shape)}"
            if isinstance(maps, Tensor)
            else type(maps).__name__
        )  # a tensor's contents say nothing (e.g. masks passed for maps)
        raise TypeError(f"`{name}` must be a float tensor (B, 1, H, W), got {got}")
    check(
        maps.ndim == 4 and maps.shape[1] == 1,
        ValueError,
        f"`{name}` must have shape (B, 1, H, W), got {tuple(maps.shape)}",
    )
    check(bool(torch.isfinite(maps).all()), ValueError, f"`{name}` contains NaN or inf")
    return maps


def _check_pair(maps: object, masks: object) -> tuple[Tensor, Tensor]:
    m = _check_maps(maps)
    if not isinstance(masks, Tensor):
        raise TypeError(f"`masks` must be a boolean tensor (B, 1, H, W), got {type(masks)}")
    check(
        masks.shape == m.shape,
        ValueError,
        f"`masks` must have the maps' shape {tuple(m.shape)}, got {tuple(masks.shape)}",
    )
    return m, binary_masks(masks)


def _nan_if_empty(score: Tensor, masks: Tensor) -> Tensor:
    empty = masks.flatten(1).sum(1) == 0
    return torch.where(empty, torch.full_like(score, float("nan")), score)


def top_k_mask(maps: Tensor, k: Tensor | int) -> Tensor:
    """Boolean ``(B, 1, H, W)``: the ``k`` highest pixels of each map (stable ties).

    ``k`` is an int or a ``(B,)`` integer tensor (one count per map).
    """
    flat = maps.flatten(1)  # (B, P)
    order = flat.argsort(dim=1, descending=True, stable=True)
    ranks = torch.empty_like(order).scatter_(
        1, order, torch.arange(flat.shape[1], device=flat.device).expand_as(order)
    )
    kk = torch.as_tensor(k, device=flat.device).reshape(-1, 1)
    return (ranks < kk).view(maps.shape)


def _top_k_ties(flat: Tensor, k: Tensor | int) -> tuple[Tensor, Tensor, Tensor]:
    """For the ``k`` (an int, or ``(B,)`` counts clamped to [1, P]) highest pixels of each row
    of ``flat`` ``(B, P)``: the pixels above the ``k``-th value and those tied with it, both
    ``(B, P)`` bool, and the places ``k - above`` left to the tied ones, ``(B,)``."""
    kk = torch.as_tensor(k, device=flat.device).long().clamp(1, flat.shape[1])
    kk = kk.expand(flat.shape[0])[:, None]  # (B, 1)
    kth = flat.sort(dim=1, descending=True).values.gather(1, kk - 1)  # (B, 1)
    above, tied = flat > kth, flat == kth
    return above, tied, (kk[:, 0] - above.sum(1)).to(flat.dtype)  # places >= 1: the k-th ties


def in_top_k(flat: Tensor, k: Tensor | int) -> Tensor:
    """``(B, P)``: the chance that each pixel of ``flat`` ``(B, P)`` is among the ``k`` highest
    of its row when ties at the ``k``-th value are broken at random: 1 above that value,
    ``places / tied`` at it, 0 below (:func:`_top_k_ties`)."""
    above, tied, places = _top_k_ties(flat, k)
    return above.to(flat.dtype) + tied.to(flat.dtype) * places[:, None] / tied.sum(1, keepdim=True)


def expected_top_k_hits(maps: Tensor, masks: Tensor, k: Tensor) -> Tensor:
    """Expected number of mask pixels among the ``k`` (``(B,)``, >= 1) highest pixels of each
    map when ties at the ``k``-th value are broken at random: the pixels above that value
    count in full, and the ``k - above`` places left go to the tied pixels in proportion to
    how many of them lie in the mask. ``(B,)`` in the maps' dtype."""
    flat, inside = maps.flatten(1), masks.flatten(1).bool()
    above, tied, places = _top_k_ties(flat, k)
    tied_inside = (tied & inside).sum(1).to(flat.dtype)
    return (above & inside).sum(1).to(flat.dtype) + places * tied_inside / tied.sum(1)


def pointing_game(maps: Tensor, masks: Tensor, *, tolerance: int = 0) -> Tensor:
    """1.0 when the map's maximum lies in the mask dilated by ``tolerance`` pixels (a disk;
    Zhang et al. use 15 px on 224 px images), else 0.0; NaN for empty masks. Where several
    pixels tie for the maximum, the share of them inside: the hit rate of a random pick among
    them, so a blank map scores the mask's share of the image, not a hit.

    Reference: Zhang et al., IJCV 2018 (Quantus semantics: Hedstroem et al., "Quantus",
    JMLR 2023).
    """
    m, s = _check_pair(maps, masks)
    if isinstance(tolerance, bool) or not isinstance(tolerance, Integral) or tolerance < 0:
        raise ValueError(f"`tolerance` must be a non-negative int, got {tolerance!r}")
    tolerance = int(tolerance)  # a numpy int too
    if tolerance > 0:
        r = torch.arange(-tolerance, tolerance + 1, device=m.device, dtype=m.dtype)
        disk = ((r[:, None] ** 2 + r[None, :] ** 2) <= tolerance**2).to(m.dtype)[None, None]
        s = F.conv2d(s.to(m.dtype), disk, padding=tolerance) > 0
    flat = m.flatten(1)
    is_max = flat == flat.amax(1, keepdim=True)  # (B, P), at least one (maps are finite)
    hit = (is_max & s.flatten(1)).sum(1).to(m.dtype) / is_max.sum(1).to(m.dtype)
    return _nan_if_empty(hit, masks)


def relevance_mass_accuracy(maps: Tensor, masks: Tensor) -> Tensor:
    """``sum(map inside mask) / sum(map)`` in [0, 1] for non-negative maps; 0 when the map
    sums to 0. Signed maps are refused (a map and its negation scored alike, outside [0, 1]):
    pass ``maps.clamp(min=0)`` (the evidence for the target, as :func:`compare_methods
    <cfx.saliency.compare.compare_methods>` scores) or ``maps.abs()``.

    Reference: Arras et al., Information Fusion 2022 (Quantus semantics: Hedstroem et al.,
    "Quantus", JMLR 2023). ``maps`` and boolean ``masks`` are ``(B, 1, H, W)``; returns
    ``Tensor[B]``, NaN for an empty mask.
    """
    m, s = _check_pair(maps, masks)
    low = float(m.min()) if m.numel() else 0.0
    check(
        low >= 0,
        ValueError,
        f"`maps` must be non-negative for relevance mass, got values down to {low:.3g}: pass "
        "maps.clamp(min=0) (the evidence for the target) or maps.abs() for a signed method",
    )
    flat = m.flatten(1)
    total = flat.sum(1)
    inside = (flat * s.flatten(1)).sum(1)
    score = torch.where(total != 0, inside / torch.where(total != 0, total, 1), 0 * total)
    return _nan_if_empty(score, s)


def relevance_rank_accuracy(maps: Tensor, masks: Tensor) -> Tensor:
    """Share of the ``K = |mask|`` top-ranked pixels that lie inside the mask.

    Reference: Arras et al., Information Fusion 2022 (Quantus semantics: Hedstroem et al.,
    "Quantus", JMLR 2023). ``maps`` and boolean ``masks`` are ``(B, 1, H, W)``; returns
    ``Tensor[B]`` in [0, 1], NaN for an empty mask. Ties at the ``K``-th value count in
    expectation (:func:`expected_top_k_hits`).
    """
    m, s = _check_pair(maps, masks)
    k = s.flatten(1).sum(1)  # (B,)
    hits = expected_top_k_hits(m, s, k)
    return _nan_if_empty(hits / k.clamp_min(1).to(m.dtype), s)


def top_k_dice(maps: Tensor, masks: Tensor) -> Tensor:
    """Dice of the binary top-``K`` map (``K = |mask|``) with the mask; ties at the ``K``-th
    value count in expectation (Dice is linear in the intersection, so this is its expected
    value under a random tie-break)."""
    m, s = _check_pair(maps, masks)
    k = s.flatten(1).sum(1)
    inter = expected_top_k_hits(m, s, k)
    return _nan_if_empty(2 * inter / (2 * k).clamp_min(1).to(m.dtype), s)


def top_k_iou(maps: Tensor, masks: Tensor) -> Tensor:
    """Intersection over union of the binary top-``K`` map (``K = |mask|``) with the mask; ties
    at the ``K``-th value enter through the expected intersection."""
    m, s = _check_pair(maps, masks)
    k = s.flatten(1).sum(1)
    inter = expected_top_k_hits(m, s, k)
    kf = k.to(m.dtype)
    return _nan_if_empty(inter / (2 * kf - inter).clamp_min(1), s)


def bounding_box(masks: Tensor) -> Tensor:
    """Boolean ``(B, 1, H, W)``: the smallest axis-aligned box around each mask."""
    s = masks.bool()
    rows = s.any(3, keepdim=True)  # (B, 1, H, 1)
    cols = s.any(2, keepdim=True)  # (B, 1, 1, W)
    h, w = s.shape[2:]
    ar = torch.arange(h, device=s.device).view(1, 1, h, 1)
    ac = torch.arange(w, device=s.device).view(1, 1, 1, w)
    big = max(h, w)
    r0 = torch.where(rows, ar, big).amin(2, keepdim=True)
    r1 = torch.where(rows, ar, -1).amax(2, keepdim=True)
    c0 = torch.where(cols, ac, big).amin(3, keepdim=True)
    c1 = torch.where(cols, ac, -1).amax(3, keepdim=True)
    return (ar >= r0) & (ar <= r1) & (ac >= c0) & (ac <= c1)


def energy_pointing_game(maps: Tensor, masks: Tensor) -> Tensor:
    """Share of the positive part of the map inside the mask's bounding box (0 if the map has
    no positive value).

    Reference: Wang et al., "Score-CAM", CVPRW 2020 (Quantus semantics: Hedstroem et al.,
    "Quantus", JMLR 2023). ``maps`` and boolean ``masks`` are ``(B, 1, H, W)``; returns
    ``Tensor[B]`` in [0, 1], NaN for an empty mask.
    """
    m, s = _check_pair(maps, masks)
    pos = m.clamp(min=0).flatten(1)
    total = pos.sum(1)
    inside = (pos * bounding_box(s).flatten(1)).sum(1)
    score = torch.where(total > 0, inside / total.clamp_min(torch.finfo(m.dtype).tiny), 0 * total)
    return _nan_if_empty(score, s)


# --- similarity of two maps -----------------------------------------------------------------


def top_k_intersection(a: Tensor, b: Tensor, k: int) -> Tensor:
    """Share of the ``k`` top pixels of map ``a`` that are also among the ``k`` top of ``b``,
    per example, in [0, 1] (higher = the ranking kept).

    A pixel tied at the ``k``-th value of a map belongs to its top ``k`` in part, by the
    chance a random tie-break picks it (:func:`in_top_k`), and a pixel counts by the smaller
    of its two shares: a map scores 1.0 against itself, blank or not, and a blank map
    ``k / P`` against one without ties. Without ties this is the plain intersection. (Pixel
    order made a blank map score 1.0 or 0.0 by where the other map's top pixels lay; the
    product of the shares, tie-breaks drawn for each map apart, scored a tied map below 1.0
    against itself, so an attack that changed nothing read as one that moved the map.)"""
    a, b = _check_maps(a, "a"), _check_maps(b, "b")
    check(a.shape == b.shape, ValueError, f"maps differ in shape: {a.shape} vs {b.shape}")
    if isinstance(k, bool) or not isinstance(k, Integral) or not 0 < k <= a[0].numel():
        raise ValueError(f"`k` must be an int in [1, {a[0].numel()}], got {k!r}")
    k = int(k)  # a numpy int too
    both = torch.minimum(in_top_k(a.flatten(1), k), in_top_k(b.flatten(1), k))  # (B, P)
    return both.sum(1) / k


def spearman(a: Tensor, b: Tensor) -> Tensor:
    """Spearman rank correlation of two maps per example (tie-averaged ranks); 0 when either
    map is constant (no ranking to agree with); maps holding NaN are refused
    (:func:`cfx.metrics.spearman` over the flattened maps)."""
    a, b = _check_maps(a, "a"), _check_maps(b, "b")
    check(a.shape == b.shape, ValueError, f"maps differ in shape: {a.shape} vs {b.shape}")
    return spearman_rows(a.flatten(1), b.flatten(1)).to(a.dtype)


def mass_center(maps: Tensor) -> Tensor:
    """Centre of mass ``(B, 2)`` (row, column, in pixels) of ``|map|``; the image centre for an
    all-zero map."""
    m = _check_maps(maps).abs()[:, 0]  # (B, H, W)
    h, w = m.shape[1:]
    total = m.flatten(1).sum(1)
    rows = torch.arange(h, device=m.device, dtype=m.dtype)
    cols = torch.arange(w, device=m.device, dtype=m.dtype)
    safe = torch.where(total > 0, total, torch.ones_like(total))
    cy = (m.sum(2) * rows).sum(1) / safe
    cx = (m.sum(1) * cols).sum(1) / safe
    cy = torch.where(total > 0, cy, torch.full_like(cy, (h - 1) / 2))
    cx = torch.where(total > 0, cx, torch.full_like(cx, (w - 1) / 2))
    return torch.stack([cy, cx], 1)


def mass_center_shift(a: Tensor, b: Tensor) -> Tensor:
    """Euclidean distance in pixels between the centres of mass of ``|a|`` and ``|b|``, per
    example (``(B,)``, >= 0; larger = the map moved further)."""
    a, b = _check_maps(a, "a"), _check_maps(b, "b")
    # maps of another size or batch gave a number (or broadcast) without a word
    check(a.shape == b.shape, ValueError, f"maps differ in shape: {a.shape} vs {b.shape}")
    return (mass_center(a) - mass_center(b)).norm(dim=1)
