"""Trajectory metrics (flip rate, oracle agreement, monotonicity, calibration, closeness,
localisation, COUT): one value per sequence, ``Tensor[B]``.

All take plain tensors, so they score any method's output (cfx explainers, Latent Shift, a
pixel-space baseline) the same way. ``probs`` are target-class probabilities per frame
``(B, T+1)`` with frame 0 the start; ``levels`` are the calibration targets ``t / T``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from cfx.calls import call_named, class_logits, frozen, resolve_target
from cfx.errors import check_int, shape_or_type
from cfx.metrics.image import check_image_pair, check_pair, check_scale
from cfx.types import Classifier, Target


def _real(x: Tensor) -> torch.dtype:
    """The dtype a metric of ``x`` comes out in: ``x``'s own if floating, else float32."""
    return x.dtype if x.is_floating_point() else torch.float32


def _per_sequence(name: str, probs: object, *, frames: bool) -> Tensor:
    """Check ``probs``: ``(B, T+1)`` with at least two frames (``frames``) or ``(B,)``."""
    want = "(B, T+1) with T >= 1" if frames else "(B,)"
    ok = isinstance(probs, Tensor) and (
        (probs.ndim == 2 and probs.shape[1] >= 2) if frames else probs.ndim == 1
    )
    if not ok:
        raise ValueError(f"`{name}` must be a tensor {want}, got {shape_or_type(probs)}")
    assert isinstance(probs, Tensor)
    return probs


def _nan_rows(values: Tensor, *inputs: Tensor) -> Tensor:
    """``values`` ``(B,)`` with NaN where any input row holds a NaN (a metric of a broken
    probability is undefined, not 0)."""
    bad = torch.zeros_like(values, dtype=torch.bool)
    for x in inputs:
        bad |= x.isnan() if x.ndim == 1 else x.isnan().flatten(1).any(1)
    return values.masked_fill(bad, float("nan"))


def _probabilities(name: str, p: Tensor) -> None:
    """An error naming ``name`` unless its values (NaN aside) lie in [0, 1]."""
    seen = p[~p.isnan()]
    if seen.numel() and not bool(((seen >= 0) & (seen <= 1)).all()):
        raise ValueError(
            f"`{name}` must be probabilities in [0, 1], got values in [{float(seen.min()):.3g}, "
            f"{float(seen.max()):.3g}]: logits? pass softmax(logits)[:, target]"
        )


def _above_half(name: str, probs: object) -> Tensor:
    p = _per_sequence(name, probs, frames=False)
    _probabilities(name, p)
    return _nan_rows((p > 0.5).to(_real(p)), p)


def flip_rate(final_probs: Tensor) -> Tensor:
    """1.0 where the classifier's target probability at the last frame exceeds 0.5 (binary);
    NaN where it is NaN."""
    return _above_half("final_probs", final_probs)


def oracle_agreement(final_oracle_probs: Tensor) -> Tensor:
    """1.0 where the independent oracle also puts the last frame in the target class; NaN
    where its probability is NaN."""
    return _above_half("final_oracle_probs", final_oracle_probs)


def oracle_agreement_along_path(probs: Tensor, oracle_probs: Tensor) -> Tensor:
    """Of the frames the classifier puts in the target class (probability above 0.5), the
    share the oracle puts there too; ``probs`` and ``oracle_probs`` ``(B, T+1)``.

    :func:`oracle_agreement` reads the last frame only: a path the classifier puts in the
    target from frame 5 of 8 on, while the oracle follows only at frame 8, agrees there (1.0)
    but along the path in 1 of those 4 frames (0.25), a sign the classifier was moved by
    something the oracle does not see. NaN where the classifier puts no frame in
    the target, or a probability is NaN.
    """
    probs = _per_sequence("probs", probs, frames=True)
    if not isinstance(oracle_probs, Tensor) or oracle_probs.shape != probs.shape:
        raise ValueError(
            f"`oracle_probs` must be {tuple(probs.shape)}, as `probs`, got "
            f"{shape_or_type(oracle_probs)}"
        )
    _probabilities("probs", probs)
    _probabilities("oracle_probs", oracle_probs)
    real = _real(probs)
    inside = (probs > 0.5).to(real)
    both = (inside * (oracle_probs > 0.5).to(real)).sum(1)
    count = inside.sum(1)
    share = both / count.clamp(min=1)
    return _nan_rows(share.masked_fill(count == 0, float("nan")), probs, oracle_probs)


def ranks(values: Tensor) -> Tensor:
    """Tie-averaged ranks (0-based) along dim 1 of a ``(B, N)`` tensor, float64 (float32 on
    MPS), by one stable sort: O(N log N), where comparing every pair of values
    took N**2 memory (16M per 64 x 64 map)."""
    b, n = values.shape
    # float64 where the device has it (Apple's MPS does not: float32, exact up to 2**24 ranks)
    real = torch.float32 if values.device.type == "mps" else torch.float64
    srt, order = values.sort(dim=1, stable=True)
    new = torch.ones_like(srt, dtype=torch.bool)
    new[:, 1:] = srt[:, 1:] != srt[:, :-1]
    group = new.long().cumsum(1) - 1  # (B, N) tie group of each sorted position
    pos = torch.arange(n, device=values.device, dtype=real).expand(b, n)
    total = torch.zeros(b, n, dtype=real, device=values.device).scatter_add_(1, group, pos)
    count = torch.zeros_like(total).scatter_add_(1, group, torch.ones_like(pos))
    mean = (total / count.clamp_min(1)).gather(1, group)
    return torch.empty_like(mean).scatter_(1, order, mean)


def spearman(a: Tensor, b: Tensor) -> Tensor:
    """Spearman rank correlation along the last dimension of two ``(B, N)`` tensors, ``(B,)``
    (tie-averaged ranks; 0 for constant input, NaN for a row holding a NaN), in the inputs'
    floating dtype (float32 for integer inputs)."""
    check_pair(a, b, "`a` and `b`", "(B, N)")
    for name, x in (("a", a), ("b", b)):
        if x.is_complex():
            raise TypeError(f"`{name}` must hold real numbers to rank, got {x.dtype}")
    dtype = torch.promote_types(_real(a), _real(b))
    ra, rb = ranks(a), ranks(b)
    ra = ra - ra.mean(-1, keepdim=True)
    rb = rb - rb.mean(-1, keepdim=True)
    den = (ra.square().sum(-1) * rb.square().sum(-1)).sqrt()
    rho = torch.where(den > 0, (ra * rb).sum(-1) / den.clamp_min(1e-300), torch.zeros_like(den))
    return _nan_rows(rho.to(dtype), a, b)


def monotonicity_spearman(probs: Tensor) -> Tensor:
    """Spearman correlation between frame index and target probability, ``(B,)`` in [-1, 1],
    1 = the probability rises with every frame (ties averaged); 0 for a path whose
    probability never changes (no ranking to agree with; scipy gives NaN there)."""
    probs = _per_sequence("probs", probs, frames=True)
    t = torch.arange(probs.shape[1], dtype=_real(probs), device=probs.device).expand_as(probs)
    return spearman(t, probs)


def increasing_steps(probs: Tensor) -> Tensor:
    """Fraction of consecutive frames whose target probability strictly increases, ``(B,)``
    (NaN for a row holding a NaN)."""
    probs = _per_sequence("probs", probs, frames=True)
    return _nan_rows((probs.diff(dim=1) > 0).to(_real(probs)).mean(1), probs)


def largest_step_share(frames: Tensor) -> Tensor:
    """The share of a path's image change that its largest step makes, ``(B,)`` in [1/T, 1]:
    each step's change is the mean ``|frame_{t+1} - frame_t|`` over pixels and channels, and
    the share is the largest over their sum (NaN for a path whose frames never change).

    ``frames`` ``(B, T+1, C, H, W)``. Steps of equal change give ``1/T``; a path that walks
    evenly in the classifier's probability but jumps in the image (a confident classifier's
    probability barely moves while the image changes most, near the start or the margin)
    gives a share near 1, which the probability's monotonicity and calibration cannot show.
    """
    if not isinstance(frames, Tensor) or frames.ndim != 5 or frames.shape[1] < 2:
        raise ValueError(
            f"`frames` must be (B, T+1, C, H, W) with T >= 1, got {shape_or_type(frames)}"
        )
    if not frames.is_floating_point():  # uint8 differences wrap around, and mean() fails
        raise TypeError(f"`frames` must be float images in [-1, 1], got dtype {frames.dtype}")
    step = frames.diff(dim=1).abs().flatten(2).mean(2)  # (B, T)
    total = step.sum(1)
    share = step.max(1).values / total.clamp_min(torch.finfo(step.dtype).tiny)
    return torch.where(total > 0, share, torch.full_like(share, float("nan")))


def calibration_error(probs: Tensor, levels: Tensor) -> Tensor:
    """``max_{t >= 1} |p_t - levels_t|`` (frame 0 is the source and is not calibrated), ``(B,)``
    in [0, 1], lower = better calibrated.

    ``levels`` ``(T+1,)`` for all sequences (e.g. :attr:`TrajectoryResult.levels`, ``t / T``,
    the issue's definition) or ``(B, T+1)``, one row per sequence. A path whose source the
    classifier already puts above the first levels has its frames placed between its start
    and the next level, not at ``t / T``, so against ``t / T`` it scores a large error
    although it climbs at every step.
    """
    probs = _per_sequence("probs", probs, frames=True)
    if not probs.is_floating_point() or bool(((probs < 0) | (probs > 1)).any()):
        raise ValueError(
            "`probs` must be probabilities in [0, 1] (softmax or sigmoid outputs, not logits), "
            f"got values in [{float(probs.min())}, {float(probs.max())}] of dtype {probs.dtype}"
        )
    n = probs.shape[1]
    if not isinstance(levels, Tensor) or tuple(levels.shape) not in ((n,), (probs.shape[0], n)):
        raise ValueError(
            f"`levels` must be ({n},) or ({probs.shape[0]}, {n}), one level per frame of "
            f"`probs` {tuple(probs.shape)}, got {shape_or_type(levels)}"
        )
    if not levels.is_floating_point() or not bool(((levels >= 0) & (levels <= 1)).all()):
        raise ValueError(  # levels [0, 5, 1] gave an 'error' of 4.5; a NaN level NaN
            "`levels` must be probabilities in [0, 1] (t / T, e.g. TrajectoryResult.levels), "
            f"got {levels.flatten()[:6].tolist()} of dtype {levels.dtype}"
        )
    return (probs[:, 1:] - levels.to(probs).expand_as(probs)[:, 1:]).abs().amax(1)


def localisation(start: Tensor, final: Tensor, mask: Tensor, *, dilation: int = 3) -> Tensor:
    """Share of the absolute pixel change ``|final - start|`` inside the dilated ``mask``.

    ``start`` and ``final`` are images ``(B, C, H, W)`` in [-1, 1]; use ``start = G(z_0)``
    (not the input) so inversion error does not count. ``mask`` ``(B, 1, H, W)`` bool;
    dilation is a square of side ``2 * dilation + 1``. Returns ``(B,)`` in [0, 1], higher =
    the change kept to the lesion; NaN for sequences that change nothing and for an empty
    mask (no lesion to keep it to: undefined, as the saliency metrics score an empty mask,
    where it was 0 and pulled means down). ``mask`` bool, or 0 and one other value (0/1,
    0/255); a soft mask is refused: threshold it first.
    """
    check_image_pair(start, final, ("start", "final"), values=False)
    check_scale(start, "start")  # [0, 255] frames gave shares of another scale, silently
    check_scale(final, "final")
    check_int("dilation", dilation, minimum=0)
    b, _, h, w = start.shape
    if not isinstance(mask, Tensor) or tuple(mask.shape) != (b, 1, h, w):
        raise ValueError(
            f"`mask` must be ({b}, 1, {h}, {w}), one mask per image, got {shape_or_type(mask)}"
        )
    # a segmenter's sigmoid or logits is nonzero almost everywhere: read as "inside", every
    # change scored 1.0 (a session-55 audit); a mask is bool or 0 and one other value (an
    # 8-bit mask's 255 counts once)
    if mask.dtype != torch.bool:
        values = torch.unique(mask.detach())
        if not bool((values[values != 0] == values.max()).all()) or bool((values < 0).any()):
            shown = ", ".join(f"{float(v):g}" for v in values[:6].cpu())
            raise ValueError(
                "`mask` must be bool or hold 0 and one other value (0/1, 0/255), got values "
                f"{shown}{', ...' if len(values) > 6 else ''}: a soft mask (a segmenter's "
                "sigmoid) is nonzero almost everywhere; threshold it, e.g. `mask > 0.5`"
            )
    # summed in float32 at least: float16 sums of a 256 x 256 change overflowed to inf / inf
    wide = torch.promote_types(_real(start), torch.float32)
    change = (final.to(wide) - start.to(wide)).abs().sum(1, keepdim=True)  # (B, 1, H, W)
    grown = (mask != 0).to(change.dtype)
    if dilation > 0:
        grown = F.max_pool2d(grown, 2 * dilation + 1, stride=1, padding=dilation)
    total = change.flatten(1).sum(1)
    inside = (change * grown).flatten(1).sum(1)
    defined = (total > 0) & (mask != 0).flatten(1).any(1)
    share = torch.where(
        defined, inside / total.clamp_min(1e-12), torch.full_like(total, float("nan"))
    )
    return share.to(_real(start))


@torch.no_grad()
def lesion_area(segmenter: Callable[[Tensor], Tensor], frames: Tensor) -> Tensor:
    """Segmenter-measured lesion area (pixels with logit > 0) per frame, ``(B, T+1)``.

    ``frames`` ``(B, T+1, C, H, W)``. The segmenter runs in eval mode (an ``nn.Module`` is
    left as it was: mode, ``requires_grad``, BatchNorm statistics)."""
    if not isinstance(frames, Tensor) or frames.ndim != 5:
        raise ValueError(f"`frames` must be (B, T+1, C, H, W), got {shape_or_type(frames)}")
    b, n = frames.shape[:2]
    flat = frames.reshape(b * n, *frames.shape[2:])
    check_scale(flat, "frames")  # a [0, 255] path was segmented as it was, silently
    with frozen(segmenter):
        logits = call_named(
            lambda: segmenter(flat),
            {"segmenter": segmenter},
            flat,
            f"`segmenter` failed on `frames` shaped {tuple(flat.shape[1:])} per frame (C, H, W)",
            name="frames",
        )
    h, w = frames.shape[-2:]
    if not isinstance(logits, Tensor) or tuple(logits.shape) != (b * n, 1, h, w):
        raise ValueError(  # a two-class segmenter's (N, 2, H, W) counted every pixel
            f"`segmenter` must map images (N, C, {h}, {w}) to one mask logit per pixel "
            f"(N, 1, {h}, {w}), got {shape_or_type(logits)} for N = {b * n}: a classifier's "
            "(N, K) logits are not a mask, and a two-class segmenter's (N, 2, H, W) "
            "logits go in as their difference (tumour minus background)"
        )
    # counts in float32 at least: float16 read 2079 pixels as 2080
    count = torch.promote_types(_real(frames), torch.float32)
    return (logits > 0).flatten(1).sum(1).view(b, n).to(count)


@torch.no_grad()
def cout(
    classifier: Classifier,
    source: Tensor,
    counterfactual: Tensor,
    target: Target,
    *,
    steps: int = 20,
) -> Tensor:
    """COUT (Khorram & Fuxin, "Cycle-Consistent Counterfactuals by Latent Transformations",
    CVPR 2022): insert the counterfactual's pixels into the source in order of decreasing
    ``|counterfactual - source|``, in ``steps`` equal chunks; at each stage, the source itself
    (stage 0) included, score ``p(target) - p(source class)``; return the area under this
    transition curve by the trapezoid rule over the inserted share of pixels, in [-1, 1],
    higher = a transition the classifier follows (the C3LT reference code's definition; until
    session 38 cfx averaged stages 1..steps, which reads ``(d_steps - d_0) / (2 steps)``
    higher). The source class is the classifier's prediction on ``source``.

    ``source`` and ``counterfactual`` ``(B, C, H, W)``; ``target`` one class (int) or ``(B,)``
    class indices, as the explainers take it.
    The classifier runs in eval mode (an ``nn.Module`` is left as it was).
    """
    check_image_pair(source, counterfactual, ("source", "counterfactual"), values=False)
    check_scale(source, "source")  # [0, 255] images were classified as they were, silently
    check_scale(counterfactual, "counterfactual")
    tgt = resolve_target(target, source.shape[0], None, source.device)  # the class range: _cout
    check_int("steps", steps)
    with frozen(classifier):
        return _cout(classifier, source, counterfactual, tgt, steps)


def _cout(
    classifier: Classifier,
    source: Tensor,
    counterfactual: Tensor,
    target: Tensor,
    steps: int,
) -> Tensor:
    b = source.shape[0]
    logits = call_named(
        lambda: class_logits(classifier, source),
        {"classifier": classifier},
        source,
        f"`classifier` failed on `source` shaped {tuple(source.shape[1:])} per image (C, H, W)",
        name="source",
    )
    k = logits.shape[1]
    bad = target >= k  # below 0 was refused by resolve_target, in these words
    if bool(bad.any()):
        raise ValueError(
            f"`target` must be a class index in [0, {k - 1}], got {target[bad][0].item()}"
        )
    src_class = logits.argmax(1)
    change = (counterfactual - source).abs().sum(1).flatten(1)  # (B, H*W)
    order = change.argsort(dim=1, descending=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(order.shape[1], device=order.device).expand_as(order))
    n_pix = order.shape[1]
    p0 = torch.softmax(logits, 1)
    scores = [p0.gather(1, target[:, None])[:, 0] - p0.gather(1, src_class[:, None])[:, 0]]
    for k in range(1, steps + 1):
        take = (rank < round(k * n_pix / steps)).view(b, 1, *source.shape[2:])
        mixed = torch.where(take, counterfactual, source)
        p = torch.softmax(class_logits(classifier, mixed), 1)
        scores.append(p.gather(1, target[:, None])[:, 0] - p.gather(1, src_class[:, None])[:, 0])
    curve = torch.stack(scores, 1)  # (B, steps + 1), stage 0 first
    return (curve[:, 1:-1].sum(1) + (curve[:, 0] + curve[:, -1]) / 2) / steps  # trapezoid


def summarise(
    probs: Tensor,
    levels: Tensor,
    frames: Tensor,
    source: Tensor,
    *,
    oracle_probs: Tensor | None = None,
    masks: Tensor | None = None,
    success: Tensor | None = None,
) -> dict[str, float]:  # "n" is an int
    """Means of the per-sequence metrics for one batch (for ``summary.json`` and reports).

    ``probs`` ``(B, T+1)`` target probabilities per frame; ``levels`` ``(T+1,)`` or
    ``(B, T+1)`` the calibration targets ``t / T``; ``frames`` ``(B, T+1, C, H, W)`` in
    [-1, 1] with frame 0 = ``G(z_0)``; ``source`` the inputs ``(B, C, H, W)`` in [-1, 1];
    ``masks`` (optional) ``(B, 1, H, W)`` lesion masks for localisation of the change.
    ``success`` ``(B,)`` (optional; e.g. :attr:`TrajectoryResult.success`, the last frame's
    argmax is the target) gives the flip rate; without it a flip is a final target probability
    above 0.5, which is the same for two classes (but for exact ties) but misses argmax flips
    below 0.5 with three or more. Oracle agreement is always the oracle's target probability
    above 0.5.

    Returns ``n`` (the number of sequences, an int) and the means by metric name;
    ``oracle_agreement``, ``oracle_agreement_along_path`` (the mean over the paths whose
    classifier puts some frame in the target) and ``localisation`` only when
    ``oracle_probs`` / ``masks`` are given
    (:func:`cfx.trajectory.save_result` writes null for them otherwise, so every
    ``summary.json`` has the same keys).
    """
    from cfx.images import check_images
    from cfx.metrics.image import SCALE_LIMIT, _common, _l1, _psnr, _ssim

    probs = _per_sequence("probs", probs, frames=True)
    b, n = probs.shape
    # what each argument must be, named before any metric runs (they failed deep inside
    # one, in torch's words, or a frame count that differed from the probabilities' passed)
    if not isinstance(frames, Tensor) or frames.ndim != 5 or tuple(frames.shape[:2]) != (b, n):
        raise ValueError(
            f"`frames` must be ({b}, {n}, C, H, W), one frame per probability of `probs` "
            f"{tuple(probs.shape)}, got {shape_or_type(frames)}"
        )
    if not isinstance(source, Tensor) or tuple(source.shape) != (b, *frames.shape[2:]):
        raise ValueError(
            f"`source` must be ({b}, {', '.join(map(str, frames.shape[2:]))}), one input per "
            f"sequence, got {shape_or_type(source)}"
        )
    # the inputs are the user's images (the frames, generated, are scored as they are): a
    # [0, 255] source gave PSNR -37 dB and SSIM 6e-7 without a word. ([0, 1] inputs are
    # noticed where they go in: the explainer, the command; said here again, twice.)
    check_images(source, "source", tol=SCALE_LIMIT - 1.0)
    check_scale(frames.flatten(0, 1), "frames")  # [0, 255] frames: PSNR -32 dB, silently
    if oracle_probs is not None and (
        not isinstance(oracle_probs, Tensor) or tuple(oracle_probs.shape) != (b, n)
    ):
        raise ValueError(
            f"`oracle_probs` must be ({b}, {n}), as `probs`, got {shape_or_type(oracle_probs)}"
        )
    final = frames[:, -1]

    def mean(x: Tensor) -> float:
        return float(x[~torch.isnan(x)].mean()) if bool((~torch.isnan(x)).any()) else float("nan")

    if success is not None and not isinstance(success, Tensor):  # a list, a numpy array
        success = torch.as_tensor(np.asarray(success), device=probs.device)
    if success is not None and tuple(success.shape) != (probs.shape[0],):
        raise ValueError(
            f"`success` must have shape ({probs.shape[0]},), one flag per sequence, got "
            f"{tuple(success.shape)}"
        )
    if success is not None and not bool(((success == 0) | (success == 1)).all()):
        raise ValueError(  # probabilities in place of flags read as a share of flips
            "`success` must be flags (bool or 0/1), one per sequence, got values "
            f"{sorted({float(v) for v in success.flatten()[:4].tolist()})}..."
        )
    # in one dtype: float32 frames beside a float64 source failed inside SSIM's conv
    final_c, source_c = _common(final, source)
    out = {
        "n": probs.shape[0],
        "flip_rate": mean(flip_rate(probs[:, -1]) if success is None else success.to(probs.dtype)),
        "spearman_t_f": mean(monotonicity_spearman(probs)),
        "increasing_steps": mean(increasing_steps(probs)),
        "calibration_error": mean(calibration_error(probs, levels)),
        "largest_step_share": mean(largest_step_share(frames)),
        "l1_to_source": mean(_l1(final_c, source_c)),
        "ssim_to_source": mean(_ssim(final_c, source_c)),
        "psnr_to_source": mean(_psnr(final_c, source_c)),
    }
    if oracle_probs is not None:
        out["oracle_agreement"] = mean(oracle_agreement(oracle_probs[:, -1]))
        out["oracle_agreement_along_path"] = mean(oracle_agreement_along_path(probs, oracle_probs))
    if masks is not None:
        b, _, h, w = final.shape
        if not isinstance(masks, Tensor) or tuple(masks.shape) != (b, 1, h, w):
            raise ValueError(
                f"`masks` must be ({b}, 1, {h}, {w}), one lesion mask per sequence, got "
                f"{shape_or_type(masks)}"
            )
        out["localisation"] = mean(localisation(frames[:, 0], final, masks))
    return out
