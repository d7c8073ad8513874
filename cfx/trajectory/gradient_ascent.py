"""Option 1: gradient ascent in latent space along the classifier's target evidence.

``z_{k+1} = z_k + eta * g_k / ||g_k||`` with ``g_k = grad_z s(G(z_k))``, where ``s`` is the
target log-odds ``logit_target - logsumexp(other logits)`` (numerically stabler than the
probability, whose gradient vanishes far from the boundary). Each image stops once its target
probability passes ``margin``. The recorded path is then resampled at ``T`` evenly spaced
probability levels ``t / T``: the two recorded steps that bracket a level are found and the
level is located on the segment between them by false position in log-odds (``refine_iters``
model evaluations, then linear interpolation in log-odds;
:func:`~cfx.trajectory.resample.resample_path`), so frame ``t`` shows the image at target
probability ~``t / T`` even for a confident classifier whose probability jumps within one step.

A source the classifier already puts past ``margin`` has no boundary left to cross; its path
exaggerates instead (Singla et al.'s "progressive exaggeration"): it climbs until the target
log-odds exceed the start's by :data:`EXAGGERATION`, so its frames still climb at every step
rather than repeating the start ``T`` times.

This is the latent-space counterpart of the gradient counterfactuals of Wachter et al. (2017),
as used for image paths by e.g. Singla et al., "Explanation by Progressive Exaggeration"
(ICLR 2020) and Cohen et al., "Gifsplanation via Latent Shift" (MIDL 2021).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

import torch
from torch import Tensor

from cfx.calls import (
    class_logits,
    frozen,
    gradients_on,
    in_chunks,
    target_margin,
    target_prob,
    values_of,
)
from cfx.errors import check_flag, check_int, check_real
from cfx.progress import tqdm
from cfx.reprs import settings_repr
from cfx.trajectory.notices import end_notice, notify_starts
from cfx.trajectory.repair import repair_steps
from cfx.trajectory.resample import resample_path
from cfx.trajectory.result import TrajectoryResult
from cfx.trajectory.start import Start, check_inversion, start
from cfx.types import Classifier, Generator, Target

log = logging.getLogger(__name__)


EXAGGERATION = 1.0
"""Log-odds a path climbs past its start when the start already reaches ``margin``."""

GIVE_UP_AFTER = 10
"""Iterations :meth:`GradientAscent.ascend` waits before ``give_up`` may stop an image."""

STALL_WINDOW = 10
"""Default ``stall_window`` of :class:`GradientAscent`: the iterations over which the recent
log-odds gain of an image already past ``margin`` is measured (the stall stop)."""


def projected_log_odds(
    history: list[Tensor], over: int, cap: Tensor, factor: float = 1.0
) -> Tensor:
    """Where each image's log-odds would end ``(B,)`` if it kept gaining, for the rest of its
    budget, ``factor`` times its mean gain per iteration over the last ``over`` iterations
    (a loss counts as no gain). ``history``: the log-odds ``(B,)`` of every iteration so far
    (the last is the current one); ``cap`` ``(B,)``: each image's iteration budget."""
    it = len(history) - 1
    rate = (history[-1] - history[-1 - over]) / over
    return history[-1] + factor * rate.clamp_min(0.0) * (cap - it)


class GradientAscent:
    """Option 1: normalised gradient ascent on the target log-odds, resampled at ``t / T``.

    Reference: the latent-space counterpart of Wachter et al., "Counterfactual Explanations
    without Opening the Black Box", 2017, as used for image paths by Singla et al.,
    "Explanation by Progressive Exaggeration", ICLR 2020 and Cohen et al., "Gifsplanation via
    Latent Shift", MIDL 2021.

    Args:
        generator: an :class:`~cfx.types.Generator`; with an ``encode`` method (an
            ``Invertible``) the inversion starts from the encoder, else from ``z = 0``.
        classifier: images in [-1, 1] -> logits ``(B, K)``; the model being explained.
        steps: number of frames ``T`` after the start.
        eta: latent step length per iteration (latents are ~N(0, I)).
        max_iter: iteration cap per image.
        margin: stop an image once its target probability reaches this. The default 0.99 asks
            for an end frame about as confident as a typical real member of the target class
            (brain-cnn's median on real healthy validation slices is 0.988-0.989): a path stopped
            just past the boundary (0.95) often leaves a faint lesion that an independent
            oracle still calls tumour (oracle agreement 0.58 at 0.95 vs 0.92 at 0.99 on 64
            tumour slices, BENCHMARKS.md). The typical confidence depends on the class:
            brain-cnn's median on real tumour slices is 0.9999, and walking healthy slices to
            tumour with 0.999 instead of 0.99 made the added lesions less faint (oracle
            agreement 0.992 -> 1.000, Fréchet to real tumour slices 2.79 -> 1.10 on 128
            validation slices, localised Option 2), so choose the margin by target class
            (one explainer per target) when the classes differ this much.
        refine_iters: model evaluations that narrow the bracketing step when placing each
            frame at its level (false position in log-odds; 0 = linear interpolation in
            log-odds, no extra model calls).
        oracle: optional independent classifier; its probabilities are recorded per frame.
        stall_window: stop an image already past ``margin`` whose confidence has saturated
            short of its goal (see :meth:`ascend`), judged on its log-odds gain over this many
            iterations; ``None`` runs it to ``max_iter``. On 128 validation tumour slices
            (seed 1, batch 32) the stall stop took Option 1 from 0.45 to 0.26 s per path
            (oracle agreement 0.922 -> 0.914: one slice). The localised search and Option 2's
            warm start keep walking (``None``): there it made the end frames less realistic
            (BENCHMARKS.md, session 14).
        inversion_steps: latent-optimisation steps of the inversion (0 = encoder only).
        inversion_classifier_weight: when > 0, the inversion also keeps the classifier's
            decision on each source (:func:`~cfx.invert`'s ``classifier_weight``: the loss
            gains that weight times ``KL(f(x) || f(G(z)))``), for paths whose reconstruction
            the classifier already puts in the target while it does not put the source there
            (the start notice names those rows). Off (0) by default: on brain-gan / brain-cnn
            it fixed those starts but cost oracle agreement (BENCHMARKS.md, session 24). It
            needs ``inversion_steps > 0`` and does nothing when ``explain`` gets ``latents``.
        show_progress: progress bars (the inversion's steps, then the images that finished
            their ascent).
    """

    __repr__ = settings_repr  # the arguments given, defaults left out

    def __init__(
        self,
        generator: Generator,
        classifier: Classifier,
        *,
        steps: int = 10,
        eta: float = 0.25,
        max_iter: int = 120,
        margin: float = 0.99,
        refine_iters: int = 3,
        oracle: Classifier | None = None,
        stall_window: int | None = STALL_WINDOW,
        inversion_steps: int = 100,
        inversion_classifier_weight: float = 0.0,
        show_progress: bool = False,
    ) -> None:
        self.generator = generator
        self.classifier = classifier
        self.steps = steps
        self.eta = eta
        self.max_iter = max_iter
        self.margin = margin
        self.refine_iters = refine_iters
        self.oracle = oracle
        self.stall_window = stall_window
        self.inversion_steps = inversion_steps
        self.inversion_classifier_weight = inversion_classifier_weight
        self.show_progress = check_flag("show_progress", show_progress)

    def _check(self) -> None:
        check_int("steps", self.steps)
        check_int("max_iter", self.max_iter)
        check_real("eta", self.eta, low=0.0, open_low=True)
        check_real("margin", self.margin, low=0.5, high=1.0, open_low=True, open_high=True)
        check_inversion(self.inversion_steps, self.inversion_classifier_weight)
        check_int("refine_iters", self.refine_iters, minimum=0)
        if self.stall_window is not None:
            check_int("stall_window", self.stall_window)

    def ascend(
        self,
        z0: Tensor,
        target: Tensor,
        *,
        decode: Callable[[Tensor, Tensor], Tensor] | None = None,
        budget: Tensor | None = None,
        give_up: float | None = None,
        need: Tensor | None = None,
        label: str = "gradient ascent",
    ) -> tuple[Tensor, Tensor]:
        """Ascend from ``z0`` ``(B, *latent)``; return the path ``(B, K, *latent)`` and the
        target probability at each recorded latent ``(B, K)``.

        Each image stops once its probability reaches its goal: ``margin``, or the start's
        log-odds plus :data:`EXAGGERATION` where that is higher (a start past the margin, or
        within :data:`EXAGGERATION` log-odds below it, climbs that far); only the images still
        climbing are decoded and classified, so a batch does not pay for its finished images
        while its slowest one catches up (the finished ones' entries repeat their last value).

        With ``stall_window`` set, an image already past ``margin`` that is still short of a
        higher goal (the exaggeration of a start near or past the margin) also stops once its
        log-odds gain over the last ``stall_window`` iterations, kept up for the rest of its
        budget, would not reach that goal: the classifier's confidence has saturated
        (brain-cnn's healthy log-odds level off near 5.05, p = 0.994, so a start at 0.985
        chasing 0.994 ran all ``max_iter`` iterations, alone at the end of its batch, its
        latent moving ``eta`` per step while its probability hardly rose). Images below the
        margin are never stopped this way.

        ``decode(z, rows)`` replaces the generator's (e.g. a composite with a fixed image;
        ``rows`` ``(N,)`` are the images the latents ``z`` ``(N, *latent)`` belong to);
        ``budget`` ``(B,)`` caps each image's iterations below ``max_iter``.

        ``give_up``: stop an image early once ``give_up`` times its mean log-odds gain per
        iteration so far, kept up for the rest of its budget, would still leave it short of
        its goal (checked from iteration :data:`GIVE_UP_AFTER` on), unless it has yet to
        reach ``need`` ``(B,)`` (log-odds; default the margin's) and would reach that: a
        caller judging paths by ``need`` loses no path that would pass, while paths that
        passed it and level off short of a higher goal still stop. ``None`` never gives up.
        ``label`` names the progress bar (``show_progress``), which counts finished images.
        """
        generator = self.generator
        decode = decode or (lambda zs, rows: generator.decode(zs))
        z = z0.detach().clone()
        shape = (-1, *([1] * (z.ndim - 1)))
        rows = torch.arange(z.shape[0], device=z.device)  # the images computed this iteration
        path, probs = [], []
        # the bar counts finished images: the iterations a batch needs are not known ahead
        bar = tqdm(total=z.shape[0], desc=label, unit="image", disable=not self.show_progress)
        goal = goal_logit = need_logit = p_all = s_all = torch.empty(0)
        history: list[Tensor] = []  # s_all per iteration: the gain rates of the early stops
        window = self.stall_window
        cap = torch.full((z.shape[0],), self.max_iter, device=z.device)
        cap = cap if budget is None else torch.minimum(cap, budget.to(cap.dtype))
        for it in range(self.max_iter + 1):
            zi = z[rows].requires_grad_(True)
            logits = class_logits(self.classifier, decode(zi, rows))
            score = target_margin(logits, target[rows])  # (N,)
            p = target_prob(logits.detach(), target[rows])
            if it == 0:  # a start already past the margin climbs EXAGGERATION log-odds further
                goal = torch.sigmoid(score.detach() + EXAGGERATION).clamp_min(self.margin)
                goal_logit = torch.logit(goal)
                floor = torch.logit(goal.new_tensor(self.margin))  # need is at least the margin
                need_logit = floor if need is None else need.to(goal_logit).clamp_min(floor)
                p_all, s_all = p, score.detach()
            else:
                p_all = p_all.index_copy(0, rows, p)
                s_all = s_all.index_copy(0, rows, score.detach())
            path.append(z)
            probs.append(p_all)
            history.append(s_all)
            active = (p_all < goal) & (it < cap)
            if window is not None and it >= window:  # past the margin, saturated short of goal
                reach = projected_log_odds(history, window, cap)  # at the recent rate
                active = active & ~((p_all >= self.margin) & (reach < goal_logit))
            if give_up is not None and it >= GIVE_UP_AFTER:  # at the mean rate since the start
                reach = projected_log_odds(history, it, cap, give_up)
                # short of the goal: stop, unless still short of need and projected to reach it
                rescue = (s_all < need_logit) & (reach >= need_logit)
                active = active & ((reach >= goal_logit) | rescue)
            bar.update(int((~active).sum()) - bar.n)
            bar.set_postfix(iteration=it, refresh=False)
            if not bool(active.any()) or len(path) > self.max_iter:
                break
            (grad,) = torch.autograd.grad(score.sum(), zi)
            norm = grad.flatten(1).norm(dim=1).clamp_min(1e-12)
            step = self.eta * grad / norm.view(shape) * active[rows].view(shape)
            z = z.index_add(0, rows, step.detach())
            rows = torch.nonzero(active).flatten()
        bar.close()
        return torch.stack(path, 1), torch.stack(probs, 1)

    @staticmethod
    def spread_levels(probs: Tensor, levels: Tensor) -> Tensor:
        """Per-image levels ``(B, L)`` for a path with probabilities ``(B, K)``.

        An image that starts at or above its first ``k`` of ``levels`` ``(L,)`` gets those
        ``k`` levels spread evenly between ``p_0`` and the next level (or the highest
        probability its path recorded, if lower), so its frames still climb at every step
        however close to the margin it starts; the other levels stay where they are.
        """
        n_lv = levels.shape[0]
        p0, p_max = probs[:, :1], probs.amax(1, keepdim=True)  # (B, 1)
        k = (levels[None, :] <= p0).sum(1, keepdim=True)  # (B, 1): levels at or below the start
        ceiling = levels[k.clamp(max=n_lv - 1)]  # (B, 1): the first level above the start
        ceiling = torch.minimum(ceiling, p_max)
        t = torch.arange(1, n_lv + 1, device=probs.device)  # (L,)
        spread = p0 + (ceiling - p0).clamp_min(0.0) * t / (k + 1)  # (B, L)
        return torch.where(t[None, :] <= k, spread, levels[None, :])  # (B, L)

    def resample(
        self,
        path: Tensor,
        probs: Tensor,
        levels: Tensor,
        target: Tensor,
        *,
        decode: Callable[[Tensor, Tensor], Tensor] | None = None,
    ) -> Tensor:
        """Place a recorded path ``(B, K, d)`` with probabilities ``(B, K)`` at ``levels``
        ``(L,)`` (spread per image by :meth:`spread_levels`): latents ``(B, L, d)`` (models
        must already be frozen). ``decode(z, rows)`` as in :meth:`ascend`."""
        generator = self.generator
        latent_shape = generator.latent_shape
        n_lv = levels.shape[0]
        decode = decode or (lambda zs, rows: in_chunks(generator.decode, zs))
        levels = self.spread_levels(probs, levels)  # (B, L)

        def prob_fn(z: Tensor, index: Tensor) -> Tensor:
            frames = decode(z.view(-1, *latent_shape), index // n_lv)
            logits = in_chunks(lambda f: class_logits(self.classifier, f), frames)
            return target_prob(logits, target[index // n_lv])

        return resample_path(path, probs, levels, prob_fn=prob_fn, refine_iters=self.refine_iters)

    def explain(
        self, x: Tensor, target: Target, *, latents: Tensor | None = None
    ) -> TrajectoryResult:
        """Walk images ``x`` ``(B, C, H, W)`` in [-1, 1] into class ``target``.

        ``latents`` (optional, ``(B, *latent_shape)``) skips the inversion. Only the values of
        ``x`` and ``latents`` are used (not their autograd graphs); the work runs with
        gradients on under the caller's ``torch.no_grad()``, but not under
        ``torch.inference_mode()`` (an error).
        """
        self._check()
        t0 = time.perf_counter()
        x, latents = values_of(x), values_of(latents)  # their autograd graphs are not ours
        with frozen(self.generator, self.classifier, self.oracle), gradients_on():
            begin = start(self, x, target, latents)
            z0, tgt = begin.latents, begin.target
            path, probs = self.ascend(z0, tgt)  # (B, K, *latent), (B, K)
            levels = torch.arange(self.steps + 1, dtype=z0.dtype, device=z0.device) / self.steps
            flat = path.flatten(2)  # (B, K, d)
            zs = torch.cat([flat[:, :1], self.resample(flat, probs, levels[1:], tgt)], 1)
            zs = zs.view(z0.shape[0], self.steps + 1, *z0.shape[1:])  # (B, T+1, *latent)
            return finish(self, x, zs, levels, begin, t0, lambdas=None)


def _repaired(
    explainer: Finishes,
    zs: Tensor,
    frames: Tensor,
    logits: Tensor,
    probs: Tensor,
    stuck: Tensor,
    target: Tensor,
    decode: Callable[[Tensor, Tensor], Tensor],
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """:func:`~cfx.trajectory.repair.repair_steps` on the paths ``stuck`` ``(S,)``; the frames
    it moved are decoded and scored again, every other frame keeps its bits."""
    b, n = zs.shape[:2]
    latent_shape = zs.shape[2:]

    def prob_fn(z: Tensor, rows: Tensor) -> Tensor:
        images = decode(z.view(-1, *latent_shape), stuck[rows])
        scored = in_chunks(lambda f: class_logits(explainer.classifier, f), images)
        return target_prob(scored, target[stuck[rows]])

    before = zs[stuck].flatten(2)  # (S, n, d)
    fixed, _ = repair_steps(before, probs[stuck], prob_fn)
    path, frame = torch.nonzero((fixed != before).any(2), as_tuple=True)  # moved frames
    zs = zs.clone()
    probs = probs.clone()
    if len(path) > 0:
        rows = stuck[path]  # (M,) images of the moved frames
        flat = rows * n + frame  # their places in the (B * n) frames
        zs[rows, frame] = fixed[path, frame].view(-1, *latent_shape)
        again = decode(zs[rows, frame], rows)  # (M, C, H, W)
        again_logits = in_chunks(lambda f: class_logits(explainer.classifier, f), again)
        frames, logits = frames.clone(), logits.clone()
        frames[flat], logits[flat] = again, again_logits
        probs[rows, frame] = target_prob(again_logits, target[rows])
    left = int((probs[stuck].diff(dim=1) <= 0).any(1).sum())
    log.info(
        "%d of %d paths had a step that did not climb: %d frames re-placed between their "
        "neighbours, %d paths still have such a step",
        len(stuck),
        b,
        len(path),
        left,
    )
    return zs, frames, logits, probs


class Finishes(Protocol):
    """What :func:`finish` reads from an explainer."""

    generator: Generator
    classifier: Classifier
    oracle: Classifier | None


@torch.no_grad()
def finish(
    explainer: Finishes,
    x: Tensor,
    zs: Tensor,
    levels: Tensor,
    begin: Start,
    t0: float,
    *,
    lambdas: Tensor | None,
    decode: Callable[[Tensor, Tensor], Tensor] | None = None,
) -> TrajectoryResult:
    """Decode a latent path ``(B, T+1, *latent)`` and score it into a TrajectoryResult.

    ``decode(z, rows)`` maps the flattened path ``(B*(T+1), *latent)`` of images ``rows``
    to frames (as in :meth:`GradientAscent.ascend`); default: the explainer's generator, in
    chunks. ``begin`` holds the target and the inversion (:func:`~cfx.trajectory.start.start`).
    A path with a step that does not climb has its inner frames re-placed between their
    neighbours first (:func:`~cfx.trajectory.repair.repair_steps`).
    """
    target = begin.target
    generator, classifier, oracle = explainer.generator, explainer.classifier, explainer.oracle
    b, n = zs.shape[:2]
    flat = zs.reshape(b * n, *zs.shape[2:])
    decode = decode or (lambda z, rows: in_chunks(generator.decode, z))
    rows = torch.arange(b, device=zs.device).repeat_interleave(n)
    frames = decode(flat, rows)  # (B*(T+1), C, H, W)
    rep = target.repeat_interleave(n)
    logits = in_chunks(lambda f: class_logits(classifier, f), frames)  # (B*(T+1), K)
    probs = target_prob(logits, rep).view(b, n)
    stuck = torch.nonzero((probs.diff(dim=1) <= 0).any(1)).flatten()  # a step that does not climb
    if len(stuck) > 0 and n > 2:
        zs, frames, logits, probs = _repaired(
            explainer, zs, frames, logits, probs, stuck, target, decode
        )
    oracle_probs = None
    if oracle is not None:
        o_logits = in_chunks(lambda f: class_logits(oracle, f, name="oracle"), frames)
        oracle_probs = target_prob(o_logits, rep).view(b, n)
    frames = frames.view(b, n, *frames.shape[1:])
    in_target = logits.view(b, n, -1).argmax(2) == target[:, None]  # (B, T+1)
    notify_starts(explainer, in_target[:, 0], x, target, inverted=begin.inversion is not None)
    end_notice(in_target[:, -1], probs[:, -1], getattr(explainer, "margin", None))
    return TrajectoryResult(
        frames=frames,
        latents=zs,
        probs=probs,
        levels=levels,
        target=target,
        source=x.detach().clone(),  # the result's own: a caller zeroing x changed it
        in_target=in_target,
        oracle_probs=oracle_probs,
        lambdas=lambdas,
        seconds=time.perf_counter() - t0,
        inversion_seconds=begin.seconds,
        inversion=begin.inversion,
    )
