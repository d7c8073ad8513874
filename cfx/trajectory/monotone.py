"""Option 2: a jointly optimised, calibrated, monotone latent path with identity preservation.

``T`` latents ``z_1..z_T`` are optimised together (``z_0`` is the inverted source, fixed):

    L = sum_t |f(G(z_t)) - t/T|                    (calibration: the path climbs through t/T)
        + relu(logit(margin) - s(G(z_T)))              (the last frame stays past ``margin``)
        + relu(logit(margin) - s(blur(G(z_T))))        (... and still does when blurred)
        + sum_t relu(f(G(z_{t-1})) + gap - f(G(z_t)))   (every step climbs)
        + lambda_b * mean_t |G(z_t) - G(z_0)|_1      (identity: change as little as possible)
        + mu * sum_t ||z_t - z_{t-1}||^2 / d          (smooth path)

Identity is measured in image space against the reconstruction ``G(z_0)`` rather than the
input ``x``: the draft formula mixes ``G^{-1}(x)`` and ``G(z_t)``, but inversion error is
constant along the path, so charging it would only blur the trade-off; L1 in image space
favours local changes, which is what "keeping the subject" means for a lesion. A latent-space
distance is implicit in the smoothness term, which keeps consecutive latents close.

``lambda`` is chosen by the method, per image: it starts at ``lambda_init``; every
``adapt_every`` iterations it is halved if the path is not valid (final probability below
``margin`` with or without a 1-px blur, calibration error above ``calibration_tol``, or a
non-increasing step) and grown by
``lambda_growth`` if it is (up to ``lambda_max``). The result is the valid path with the
smallest identity loss seen, so each image gets (close to) the largest lambda that still
reaches the target; an image with no valid iterate keeps the warm start. The path starts from
Option 1's resampled path (:class:`~cfx.trajectory.gradient_ascent.GradientAscent`), which is
usually valid already.

Related: the "regularised monotone path" of the cfx method draft; calibrated progressive
exaggeration (Singla et al., ICLR 2020); Latent Shift (Cohen et al., MIDL 2021).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import torch
from torch import Tensor

from cfx.calls import (
    class_logits,
    frozen,
    gradients_on,
    target_margin,
    target_prob,
    values_of,
)
from cfx.errors import check_flag, check_int, check_real
from cfx.filters import gaussian_blur
from cfx.progress import tqdm
from cfx.reprs import settings_repr
from cfx.trajectory.gradient_ascent import GradientAscent, finish
from cfx.trajectory.localised import MASK_FRACTIONS, Background, LocalisedAscent
from cfx.trajectory.losses import (
    calibration_loss,
    end_margin_loss,
    identity_loss,
    monotonicity_loss,
    smoothness_loss,
)
from cfx.trajectory.result import TrajectoryResult
from cfx.trajectory.start import check_inversion, start
from cfx.types import Classifier, Generator, Target


class MonotonePath:
    """Option 2: jointly optimised monotone path; ``explain(x, target)`` like Option 1.

    Args:
        generator, classifier, steps, margin, oracle, inversion_steps,
            inversion_classifier_weight, show_progress: as in
            :class:`~cfx.trajectory.gradient_ascent.GradientAscent`.
        iterations: Adam iterations on the joint path; 0 returns the warm start (placed at
            the probability levels and repaired, as any path), with ``lambdas`` all NaN.
        lr: Adam learning rate on the latents. Small on purpose: Adam's first steps move every
            coordinate by about ``lr``, and with a confident classifier a move of norm
            ``lr * sqrt(d)`` beyond ~0.1 already jumps frames across whole probability levels.
        lambda_init: starting identity weight; adapted per image.
        lambda_growth: factor applied to lambda after a valid check.
        lambda_max: cap on lambda.
        smooth_weight: weight ``mu`` of the smoothness term.
        gap: minimum probability climb per step demanded by the monotonicity term (a soft
            hinge; validity only asks every step to climb), in ``[0, 1)``.
        calibration_tol: largest ``max_t |p_t - t/T|`` that still counts as valid.
        adapt_every: iterations between lambda updates.
        blur_check: a path is valid only if its last frame, blurred with a Gaussian of this
            width (px), still reaches ``margin`` (and the end-margin term holds it there): the
            identity weight shrinks the edit for as long as the classifier is fooled, and an
            edit that only works at the highest spatial frequencies is an adversarial
            perturbation, not a change of class. 0 turns the check off. On 128 validation
            tumour slices (seed 1, localised) it raised the oracle's agreement from 0.93 to
            0.97 at a localisation of 0.67 instead of 0.69.
        stall: an image whose best valid path has not improved for this many iterations
            stops (its path is final; the batch stops when every image has); ``None``: a
            valid image runs all ``iterations``. Images never valid are stopped by
            ``hopeless_after`` instead. On the 128 validation slices, 24 iterations with
            ``stall=8`` gave the same oracle agreement as 40 with ``stall=12`` (localised
            0.977, plain 0.938), localisation
            0.686 vs 0.687 (plain 0.443 vs 0.457), in 2.25 vs 2.90 s per path (plain 1.18 vs
            2.02); 16 with ``stall=6`` again the same agreement (localised with the input as
            background: 0.969; plain 0.938) and localisation (0.724 vs 0.723; plain 0.436 vs
            0.443) in 1.75 vs 2.21 s per path (plain 1.02 vs 1.21), with final frames a
            little further from real ones in the plain case (Fréchet 2.11 vs 1.88).
        hopeless_after: an image with no valid iterate after this many iterations stops and
            keeps its warm start (``None``: it runs all ``iterations``). Localised warm starts
            end at the margin and most fail the blur check by a hair, which the joint
            optimisation rarely makes up: on 128 validation tumour slices per seed (1 / 6),
            localised paths with ``None`` / 8 / 4 took 1.37 / 1.10 / 0.98 s per path (1.51 /
            1.17 / 0.98) at the same oracle agreement (0.938; 0.969, the same rejected
            slices), localisation (0.681-0.682; 0.632) and realism (Fréchet 1.41 / 1.45 / 1.45;
            0.92 / 0.91 / 0.91). Whole-image paths, whose robust end makes most warm starts
            valid, saved nothing and kept their figures (seed 1: agreement 0.969, Fréchet 0.77).
            BENCHMARKS.md, session 15.
        warm_start_eta, warm_start_iter: step length and cap of the Option 1 warm start.
        robust_end: walk the warm start's last latent on until its blurred frame passes the
            blur check too (:meth:`blur_robust_end`; no effect with ``blur_check=0``).
            ``None`` (default): on for whole-image paths, off for localised ones. On 128
            validation tumour slices per seed (1 / 6), whole-image paths: the oracle agreed
            with more final frames (0.938 -> 0.969 / 0.945 -> 0.969) and they were nearer real
            healthy slices (Fréchet 1.71 -> 0.77 / 1.27 -> 0.71; floors 0.064 / 0.021), at
            lower localisation (0.437 -> 0.367 / 0.417 -> 0.356) and ~20 % more time per
            path. Localised paths gained less (seed 1: agreement 0.938 -> 0.945, Fréchet
            1.41 -> 1.17) and lost localisation (0.681 -> 0.674), the measure they are chosen
            for, so they leave it off unless asked. BENCHMARKS.md, sessions 12 and 13.
        localise: confine the path to the smallest region that still flips the classifier
            (:class:`~cfx.trajectory.localised.LocalisedAscent`: the warm start is its path,
            and every frame is ``mask * G(z_t) + (1 - mask) * background``); the result's
            ``edit_masks`` hold the regions.
        background: what localised frames show outside the region, ``"reconstruction"``
            (``G(z_0)``) or ``"source"`` (the input); see
            :class:`~cfx.trajectory.localised.LocalisedAscent`.
        mask_fractions: candidate region sizes when ``localise`` is on.
        give_up: stop an ascent that cannot reach ``margin`` within its budget at its mean
            rate times this (``None``: run to the budget): a candidate region's when
            ``localise`` is on (see :class:`~cfx.trajectory.localised.LocalisedAscent`), and
            the blur-robust end's (``robust_end``) in either case.
    """

    __repr__ = settings_repr  # the arguments given, defaults left out

    def __init__(
        self,
        generator: Generator,
        classifier: Classifier,
        *,
        steps: int = 10,
        iterations: int = 16,
        lr: float = 0.003,
        lambda_init: float = 10.0,
        lambda_growth: float = 2.0,
        lambda_max: float = 1e4,
        smooth_weight: float = 0.05,
        gap: float = 0.02,
        margin: float = 0.99,
        calibration_tol: float = 0.08,
        adapt_every: int = 4,
        stall: int | None = 6,
        hopeless_after: int | None = 4,
        blur_check: float = 1.0,
        warm_start_eta: float = 0.25,
        warm_start_iter: int = 120,
        robust_end: bool | None = None,
        localise: bool = False,
        background: Background = "reconstruction",
        mask_fractions: tuple[float, ...] = MASK_FRACTIONS,
        give_up: float | None = 1.0,
        oracle: Classifier | None = None,
        inversion_steps: int = 100,
        inversion_classifier_weight: float = 0.0,
        show_progress: bool = False,
    ) -> None:
        self.generator = generator
        self.classifier = classifier
        self.steps = steps
        self.iterations = iterations
        self.lr = lr
        self.lambda_init = lambda_init
        self.lambda_growth = lambda_growth
        self.lambda_max = lambda_max
        self.smooth_weight = smooth_weight
        self.gap = gap
        self.margin = margin
        self.calibration_tol = calibration_tol
        self.adapt_every = adapt_every
        self.stall = stall
        self.hopeless_after = hopeless_after
        self.blur_check = blur_check
        self.warm_start_eta = warm_start_eta
        self.warm_start_iter = warm_start_iter
        self.robust_end = robust_end
        self.localise = localise
        self.background = background
        self.mask_fractions = mask_fractions
        self.give_up = give_up
        self.oracle = oracle
        self.inversion_steps = inversion_steps
        self.inversion_classifier_weight = inversion_classifier_weight
        self.show_progress = check_flag("show_progress", show_progress)

    def _check(self) -> None:
        check_int("steps", self.steps)
        check_int("iterations", self.iterations, minimum=0)
        check_int("adapt_every", self.adapt_every)
        if self.stall is not None:
            check_int("stall", self.stall)
        if self.hopeless_after is not None:
            check_int("hopeless_after", self.hopeless_after, minimum=0)
        check_real("blur_check", self.blur_check, low=0.0)
        check_inversion(self.inversion_steps, self.inversion_classifier_weight)
        check_real("lr", self.lr, low=0.0, open_low=True)
        check_real("lambda_init", self.lambda_init, low=0.0, open_low=True)
        check_real("lambda_max", self.lambda_max, low=0.0, open_low=True)
        check_real("lambda_growth", self.lambda_growth, low=1.0)
        if self.lambda_init > self.lambda_max:
            raise ValueError(
                f"`lambda_init` must not exceed `lambda_max` ({self.lambda_max}), "
                f"got {self.lambda_init}"
            )
        check_real("smooth_weight", self.smooth_weight, low=0.0)
        check_real("gap", self.gap, low=0.0, high=1.0, open_high=True)  # a soft hinge
        check_real("warm_start_eta", self.warm_start_eta, low=0.0, open_low=True)
        check_int("warm_start_iter", self.warm_start_iter)
        check_real("margin", self.margin, low=0.5, high=1.0, open_low=True, open_high=True)
        check_real("calibration_tol", self.calibration_tol, low=0.0, open_low=True)
        check_flag("localise", self.localise)
        if self.robust_end is not None and not isinstance(self.robust_end, bool):
            raise TypeError(f"`robust_end` must be a bool or None, got {self.robust_end!r}")
        # the region options are checked even with localise off: a typo should not wait
        # until the user turns it on
        self._localised()._check()

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
        n_steps = self.steps
        x, latents = values_of(x), values_of(latents)  # their autograd graphs are not ours
        with frozen(self.generator, self.classifier, self.oracle), gradients_on():
            begin = start(self, x, target, latents)
            z0, tgt, b = begin.latents, begin.target, begin.latents.shape[0]
            levels = torch.arange(n_steps + 1, dtype=z0.dtype, device=z0.device) / n_steps
            mask = decode = None
            if self.localise:
                region = self._localised().region_path(x, z0, tgt, levels[1:])
                z_init, p_start = region.latents, region.p_start
                mask, decode = region.mask, region.decode
            else:
                z_init, p_start = self.warm_start(z0, tgt, levels)
            robust_end = not self.localise if self.robust_end is None else self.robust_end
            if robust_end:
                z_init = self.blur_robust_end(z_init, tgt, decode=decode)
            final, lambdas = self.optimise(z0, z_init, p_start, tgt, levels, decode=decode)
            zpath = torch.cat([z0.flatten(1)[:, None], final], 1)
            zpath = zpath.view(b, n_steps + 1, *z0.shape[1:])  # (B, T+1, *latent)
            result = finish(self, x, zpath, levels, begin, t0, lambdas=lambdas, decode=decode)
        return result if mask is None else replace(result, edit_masks=mask)

    def _localised(self) -> LocalisedAscent:
        return LocalisedAscent(
            self.generator,
            self.classifier,
            steps=self.steps,
            eta=self.warm_start_eta,
            max_iter=self.warm_start_iter,
            margin=self.margin,
            mask_fractions=self.mask_fractions,
            background=self.background,
            give_up=self.give_up,
            show_progress=self.show_progress,
        )

    def _ascent(self) -> GradientAscent:
        return GradientAscent(
            self.generator,
            self.classifier,
            steps=self.steps,
            eta=self.warm_start_eta,
            max_iter=self.warm_start_iter,
            margin=self.margin,
            # the warm start and the robust end keep walking a saturated image to the end of
            # their budget: with the stall stop, whole-image paths on 128 validation slices
            # (seed 1) ended further from real healthy slices (Fréchet 0.77 -> 1.11, agreement
            # 0.969 -> 0.961), BENCHMARKS.md session 14
            stall_window=None,
            show_progress=self.show_progress,
        )

    def warm_start(self, z0: Tensor, target: Tensor, levels: Tensor) -> tuple[Tensor, Tensor]:
        """Option 1's path from ``z0`` resampled at ``levels[1:]``: latents ``(B, T, d)`` and
        the start probability ``(B,)``."""
        ascent = self._ascent()
        path, probs = ascent.ascend(z0, target, label="warm start")
        return ascent.resample(path.flatten(2), probs, levels[1:], target), probs[:, 0]

    def blur_robust_end(
        self,
        latents: Tensor,
        target: Tensor,
        *,
        decode: Callable[[Tensor, Tensor], Tensor] | None = None,
    ) -> Tensor:
        """The warm start's last latent walked on until its frame, blurred by ``blur_check``,
        also reaches ``margin`` (``latents`` ``(B, T, d)`` -> ``(B, T, d)``).

        Option 1 stops where the unblurred frame crosses ``margin``, so its last frame fails
        the blur check by a hair and the joint optimisation, moving ``lr`` per step, rarely
        makes up for it: on 128 validation tumour slices (seed 1, localised) 91 warm starts
        were never valid in 16 iterations and came back unchanged. The same ascent (steps of
        ``warm_start_eta``) continues on the blurred frame instead, for at most
        ``warm_start_iter`` iterations (with ``give_up``). An image keeps its last latent if its
        blurred frame cannot reach ``margin`` or its unblurred frame would lose probability
        on the way (the blurred frame's gradient need not raise the unblurred one).
        ``decode(z, rows)`` as in :meth:`optimise`.
        """
        if self.blur_check <= 0:
            return latents
        b = latents.shape[0]
        generator = self.generator
        base = decode or (lambda z, rows: generator.decode(z))
        end = latents[:, -1].reshape(b, *generator.latent_shape)
        with torch.no_grad():
            frames = base(end, torch.arange(b, device=end.device))  # (B, C, H, W)
            p_end = target_prob(class_logits(self.classifier, frames), target)
            soft = gaussian_blur(frames, self.blur_check)
            short = target_prob(class_logits(self.classifier, soft), target) < self.margin
        idx = torch.nonzero(short).flatten()  # the images whose blurred last frame falls short
        if idx.numel() == 0:
            return latents

        def blurred(z: Tensor, rows: Tensor) -> Tensor:
            return gaussian_blur(base(z, idx[rows]), self.blur_check)

        path, probs = self._ascent().ascend(
            end[idx], target[idx], decode=blurred, give_up=self.give_up, label="blur-robust end"
        )
        new_end = path[:, -1]  # (N, *latent)
        with torch.no_grad():  # the unblurred frame must still pass and climb from frame T-1
            p_new = target_prob(class_logits(self.classifier, base(new_end, idx)), target[idx])
        keep = (probs[:, -1] >= self.margin) & (p_new >= p_end[idx].clamp(min=self.margin))
        out = latents.clone()
        out[idx[keep], -1] = new_end[keep].flatten(1)
        return out

    def optimise(
        self,
        z0: Tensor,
        z_init: Tensor,
        p_start: Tensor,
        target: Tensor,
        levels: Tensor,
        *,
        decode: Callable[[Tensor, Tensor], Tensor] | None = None,
    ) -> tuple[Tensor, Tensor]:
        """The joint optimisation of the path (models must already be frozen).

        ``z0`` ``(B, *latent)``, ``z_init`` ``(B, T, d)``; ``decode(z, rows)`` maps latents
        ``(N, *latent)`` of images ``rows`` ``(N,)`` to frames (default ``G(z)``; e.g. a
        :func:`~cfx.trajectory._common.composite_decoder`). Returns the chosen path
        ``(B, T, d)`` (the best valid iterate, else the warm start ``z_init``) and each
        image's lambda ``(B,)``: the identity weight its path was found at, NaN where the
        warm start is returned (no iterate was valid, or none beat a valid warm start).
        """
        b, n_steps = z_init.shape[:2]
        latent_shape = z0.shape[1:]
        device = z_init.device
        generator = self.generator
        decode = decode or (lambda z, rows: generator.decode(z))
        with torch.no_grad():
            start_img = decode(z0, torch.arange(b, device=device))  # (B, C, H, W), frame 0
        z0_flat = z0.flatten(1)  # (B, d)
        # Adam keeps float32 latents at least: in half precision its eps (1e-8) is 0 and its
        # steps NaN; the models still see their own dtype
        work = torch.promote_types(z_init.dtype, torch.float32)
        zs = z_init.to(work, copy=True).requires_grad_(True)
        opt = torch.optim.Adam([zs], lr=self.lr)
        lam = torch.full((b,), float(self.lambda_init), dtype=work, device=device)
        best = z_init.clone()
        best_id = torch.full_like(lam, float("inf"))
        best_lam = torch.full_like(lam, float("nan"))  # stays NaN until a path is valid
        last_gain = torch.zeros(b, dtype=torch.long, device=device)  # iteration of best's update
        # a path can only be valid if frame 1 climbs above the start and stays within
        # calibration_tol of the first level: images that start higher (e.g. already in the
        # target class) keep the warm start without a single iteration
        running = p_start < levels[1] + self.calibration_tol  # (B,)
        # every loss term belongs to one image, so the gradient of the sum can be accumulated
        # over chunks of whole paths: ~32 frames per chunk run about twice as fast per frame on
        # CPU as all B*T frames at once, and give the same gradient
        per_chunk = max(1, 32 // n_steps)
        bar = tqdm(
            total=self.iterations, desc="monotone path", unit="it", disable=not self.show_progress
        )
        for it in range(self.iterations + 1):
            if not bool(running.any()):  # only when no image could ever be valid
                bar.total = bar.n
                break
            opt.zero_grad(set_to_none=True)
            live = torch.nonzero(running).flatten()
            for c in live.split(per_chunk):  # image indices of one chunk
                zc = zs[c].to(z_init.dtype)  # (b_c, T, d)
                bc = zc.shape[0]
                flat = zc.reshape(bc * n_steps, *latent_shape)
                frames = decode(flat, c.repeat_interleave(n_steps))  # (b_c*T, C, H, W)
                logits = class_logits(self.classifier, frames)  # (b_c*T, K)
                rep = target[c].repeat_interleave(n_steps)
                p = target_prob(logits, rep).view(bc, n_steps)
                s_end = target_margin(logits, rep).view(bc, n_steps)[:, -1]  # (b_c,)
                frames = frames.view(bc, n_steps, *frames.shape[1:])  # (b_c, T, C, H, W)
                l_cal = calibration_loss(p, levels[1:]) + end_margin_loss(s_end, self.margin)
                if self.blur_check > 0:  # the last frame, blurred, must stay past the margin too
                    soft = gaussian_blur(frames[:, -1], self.blur_check)  # (b_c, C, H, W)
                    s_soft = target_margin(class_logits(self.classifier, soft), target[c])
                    l_cal = l_cal + end_margin_loss(s_soft, self.margin)
                l_mono = monotonicity_loss(p, p_start[c], self.gap)
                l_id = identity_loss(frames, start_img[c])
                l_smooth = smoothness_loss(zc, z0_flat[c])
                with torch.no_grad():  # validity of the current path, per image
                    valid = path_is_valid(p, p_start[c], levels, self.margin, self.calibration_tol)
                    if self.blur_check > 0:
                        valid = valid & (torch.sigmoid(s_soft) >= self.margin)
                    improve = valid & (l_id < best_id[c])
                    best[c[improve]] = zc.detach()[improve]
                    best_id[c] = torch.where(improve, l_id.detach(), best_id[c])
                    best_lam[c] = torch.where(improve, lam[c], best_lam[c])
                    last_gain[c[improve]] = it
                    if it > 0 and it % self.adapt_every == 0:
                        lam[c] = adapt_lambda(lam[c], valid, self.lambda_growth, self.lambda_max)
                if it < self.iterations:
                    loss = l_cal + l_mono + lam[c] * l_id + self.smooth_weight * l_smooth
                    # the latents' gradient alone, summed over the chunks as backward() did:
                    # backward() left .grad on weights the freezing could not reach
                    (grad,) = torch.autograd.grad(loss.sum(), zs)
                    zs.grad = grad if zs.grad is None else zs.grad + grad
            if it == self.iterations:
                break
            if self.stall is not None:  # a valid path that stopped improving is done
                running &= ~(torch.isfinite(best_id) & (it - last_gain >= self.stall))
            if self.hopeless_after is not None and it >= self.hopeless_after:
                running &= torch.isfinite(best_id)  # never valid so far: keep the warm start
            if not bool(running.any()):
                bar.total = bar.n  # every image stopped early: the bar ends here, full
                break
            opt.step()
            bar.update(1)
        bar.close()
        # images never valid keep the warm start: it is placed at climbing levels (a frame the
        # placement lands at or below its predecessor is re-placed by `finish`), while the
        # last iterate may have traded climbing away for identity
        final = torch.where(torch.isfinite(best_id)[:, None, None], best, z_init)
        # a best found at iteration 0 is the warm start itself: no lambda shaped it
        best_lam = torch.where(last_gain == 0, torch.nan, best_lam)
        return final, best_lam.to(z_init.dtype)  # the result's dtype (float32 for half ones)


def path_is_valid(
    probs: Tensor, p_start: Tensor, levels: Tensor, margin: float, tol: float
) -> Tensor:
    """Whether each path is one Option 2 may return, ``(B,)`` bool: target probabilities
    ``probs`` ``(B, T)`` of frames 1..T end at or past ``margin``, each within ``tol`` of its
    level ``levels[1:]`` (``levels`` ``(T+1,)``, the largest deviation counts) and every step
    from ``p_start`` ``(B,)`` (frame 0) strictly climbs."""
    steps_up = torch.cat([p_start[:, None], probs], 1).diff(dim=1) > 0  # (B, T)
    calibrated = (probs - levels[None, 1:]).abs().amax(1) <= tol
    return (probs[:, -1] >= margin) & calibrated & steps_up.all(1)


def adapt_lambda(lam: Tensor, valid: Tensor, growth: float, lam_max: float) -> Tensor:
    """The identity weights after a check, ``(B,)``: grown by ``growth`` where the path is
    valid (it can afford more identity), halved where it is not, never above ``lam_max``."""
    return torch.where(valid, lam * growth, lam * 0.5).clamp(max=lam_max)
