"""Where a map's mass lies: shares of a non-negative map inside named image regions.

A map is anything non-negative and pixel-wise, ``(B, 1, H, W)``: the absolute pixel change of a
counterfactual path, a saliency map's absolute value. Regions are boolean masks
``(B, 1, H, W)``, or ``(1, 1, H, W)`` shared by every example (e.g. the scanner-marker box).

Regions may overlap. They claim pixels **in the order given** (dict order): a pixel belongs to
the first region that contains it, and ``"elsewhere"`` gets every pixel no region claims, so
the shares of one example always sum to 1. Put the region you want to credit on a tie first
(the shortcut audit passes ``{"lesion": ..., "marker": ...}``: the lesion wins its overlap).

Each region can be grown first by a square dilation of side ``2 * d + 1`` (as in
:func:`cfx.metrics.trajectory.localisation`, whose ``dilation=3`` the lesion usually gets).
Dilation happens before precedence, so a grown region claims its halo too.

All functions return one value per example, ``Tensor[B]``, NaN where it is undefined.
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Integral

import torch
import torch.nn.functional as F
from torch import Tensor

from cfx.errors import check
from cfx.images import binary_masks

ELSEWHERE = "elsewhere"

Dilation = int | Mapping[str, int]


def _check_map(change: object, name: str = "change") -> Tensor:
    if not isinstance(change, Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor, got {type(change).__name__}")
    check(
        change.is_floating_point(),
        TypeError,
        f"`{name}` must be a floating-point tensor, got dtype {change.dtype}",
    )
    check(
        change.ndim == 4 and change.shape[1] == 1 and change.shape[0] > 0,
        ValueError,
        f"`{name}` must have shape (B, 1, H, W) with B >= 1, got {tuple(change.shape)}",
    )
    check(
        bool(torch.isfinite(change).all()),
        ValueError,
        f"`{name}` must be finite, got NaN or inf values",
    )
    check(
        not bool((change < 0).any()),
        ValueError,
        f"`{name}` must be non-negative (take .abs() first), got minimum {float(change.min()):.3g}",
    )
    return change


def _check_regions(regions: object, like: Tensor) -> dict[str, Tensor]:
    if not isinstance(regions, Mapping) or len(regions) == 0:
        got = "an empty dict" if isinstance(regions, Mapping) else type(regions).__name__
        raise TypeError(f"`regions` must be a non-empty dict of name -> bool mask, got {got}")
    b, _, h, w = like.shape
    out: dict[str, Tensor] = {}
    for name, mask in regions.items():
        check(
            isinstance(name, str) and name != ELSEWHERE,
            ValueError,
            f"`regions` keys must be strings other than {ELSEWHERE!r} (it names the rest), "
            f"got {name!r}",
        )
        if not isinstance(mask, Tensor) or mask.is_complex():
            got = f"dtype {mask.dtype}" if isinstance(mask, Tensor) else type(mask).__name__
            raise TypeError(f"`regions[{name!r}]` must be a bool or 0/1 tensor, got {got}")
        mask = binary_masks(mask, f"regions[{name!r}]")  # 0/1 masks, as ShortcutAudit takes
        check(
            mask.ndim == 4 and mask.shape[0] in (1, b) and tuple(mask.shape[1:]) == (1, h, w),
            ValueError,
            f"`regions[{name!r}]` must have shape ({b}, 1, {h}, {w}) or (1, 1, {h}, {w}) to "
            f"match the map, got {tuple(mask.shape)}",
        )
        out[name] = mask.to(like.device)
    return out


def _natural(d: object) -> bool:
    return isinstance(d, Integral) and not isinstance(d, bool) and int(d) >= 0


def _dilations(dilation: object, names: list[str]) -> dict[str, int]:
    if isinstance(dilation, Mapping):
        unknown = [k for k in dilation if k not in names]
        check(
            not unknown,
            ValueError,
            f"`dilation` names regions that are not in `regions` ({names}): {unknown}",
        )
        bad = {k: v for k, v in dilation.items() if not _natural(v)}
        check(not bad, ValueError, f"`dilation` values must be ints >= 0, got {bad}")
        return {n: int(dilation.get(n, 0)) for n in names}
    if _natural(dilation):  # numpy ints too
        return {n: int(dilation) for n in names}  # type: ignore[call-overload]
    raise ValueError(f"`dilation` must be an int >= 0 or a dict of region -> int, got {dilation!r}")


def _claim(masks: dict[str, Tensor], grow: dict[str, int], like: Tensor) -> dict[str, Tensor]:
    """Disjoint float masks ``(B, 1, H, W)`` per region (dilated, then first come first
    served), plus ``"elsewhere"``."""
    taken = torch.zeros(like.shape, dtype=torch.bool, device=like.device)  # (B, 1, H, W)
    out: dict[str, Tensor] = {}
    for name, mask in masks.items():
        m = mask.expand(like.shape[0], -1, -1, -1)  # (B, 1, H, W)
        d = grow[name]
        if d > 0:
            m = F.max_pool2d(m.float(), 2 * d + 1, stride=1, padding=d) > 0.5
        m = m & ~taken
        taken = taken | m
        out[name] = m.to(like.dtype)
    out[ELSEWHERE] = (~taken).to(like.dtype)
    return out


def claimed_regions(
    regions: Mapping[str, Tensor], like: Tensor, *, dilation: Dilation = 0
) -> dict[str, Tensor]:
    """The disjoint float masks ``(B, 1, H, W)`` each region gets after dilation and
    precedence (first region first), plus ``"elsewhere"``; ``like`` is a non-negative
    ``(B, 1, H, W)`` map that fixes batch, size, dtype and device (e.g. the map to score)."""
    like = _check_map(like, "like")
    masks = _check_regions(regions, like)
    return _claim(masks, _dilations(dilation, list(masks)), like)


def region_shares(
    change: Tensor, regions: Mapping[str, Tensor], *, dilation: Dilation = 0
) -> dict[str, Tensor]:
    """Each region's share of the total mass of ``change``, per example.

    Args:
        change: non-negative map ``(B, 1, H, W)`` (e.g. ``|G(z_T) - G(z_0)|`` summed over
            channels, or ``|saliency|``).
        regions: name -> bool mask ``(B, 1, H, W)`` or ``(1, 1, H, W)``; dict order is the
            precedence on overlaps (see the module docstring). ``"elsewhere"`` is reserved.
        dilation: squares of side ``2 * d + 1`` grown around every region (an int), or per
            region (a dict; regions not named get 0).

    Returns:
        ``{name: (B,), ..., "elsewhere": (B,)}`` in [0, 1], summing to 1 per example; NaN
        for every region of an example whose map has no mass.
    """
    change = _check_map(change)
    masks = _check_regions(regions, change)
    claimed = _claim(masks, _dilations(dilation, list(masks)), change)
    total = change.flatten(1).sum(1)  # (B,)
    nan = torch.full_like(total, float("nan"))
    out: dict[str, Tensor] = {}
    for name, mask in claimed.items():
        inside = (change * mask).flatten(1).sum(1)  # (B,)
        out[name] = torch.where(total > 0, inside / total.clamp_min(1e-30), nan)
    return out


def region_areas(
    regions: Mapping[str, Tensor], like: Tensor, *, dilation: Dilation = 0
) -> dict[str, Tensor]:
    """Each region's fraction of the image area after dilation and precedence, ``(B,)`` per
    name plus ``"elsewhere"`` (the shares of a uniform map); ``like`` as in
    :func:`claimed_regions`."""
    _check_map(like, "like")
    return region_shares(torch.ones_like(like), regions, dilation=dilation)


def region_enrichment(
    change: Tensor, regions: Mapping[str, Tensor], *, dilation: Dilation = 0
) -> dict[str, Tensor]:
    """Share per unit area: ``share / area fraction`` per region and example, ``(B,)``.

    1 means the region holds as much mass as its size alone predicts; a small region holding
    much of the change scores far above 1 (the 11x11 marker box is 3% of a 64x64 image, so a
    marker share of 0.3 is an enrichment of ~10). NaN where the map has no mass or the region
    is empty (e.g. the lesion of a healthy slice).
    """
    shares = region_shares(change, regions, dilation=dilation)
    areas = region_areas(regions, change, dilation=dilation)
    nan = torch.full_like(change[:, 0, 0, 0], float("nan"))
    return {
        name: torch.where(areas[name] > 0, shares[name] / areas[name].clamp_min(1e-30), nan)
        for name in shares
    }
