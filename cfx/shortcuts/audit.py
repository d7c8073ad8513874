"""The shortcut audit: where do a classifier's counterfactual paths change the image?

A classifier that learned a shortcut (a scanner marker that happened to correlate with the label
in its training set, the Clever-Hans effect of Lapuschkin et al., "Unmasking Clever Hans
predictors and assessing what machines really learn", Nat. Commun. 2019) can be flipped by
editing the shortcut instead of the real evidence. Counterfactual paths through a fixed
generator make that visible (Singla et al., "Explaining the black-box smoothly", MedIA 2023,
find shortcuts this way): walk each image across the boundary, then ask where the pixels
changed. :class:`ShortcutAudit` does this for a batch and scores, per path:

* the **change** ``|G(z_T) - G(z_0)|`` (last frame minus the reconstruction, so inversion
  error does not count), summed over channels;
* its **share** inside the lesion mask (dilated by ``lesion_dilation`` px, as in
  :func:`cfx.metrics.trajectory.localisation`), inside the marker region, and elsewhere;
  the lesion claims pixels first, the marker next, ``elsewhere`` is the rest
  (:func:`cfx.shortcuts.regions.region_shares`), so the three sum to 1;
* its **enrichment**, share / area fraction: the marker box is ~3% of a 64x64 slice, so a raw
  share hides how concentrated the change is; enrichment 1 is what a uniform change gives;
* the same shares and enrichments for the **saliency** mass ``|attribute(x, source class)|``
  of the input (the classifier's own evidence for its current decision);
* **restoring** the marker: the last frame with the reconstruction's marker region pasted
  back, re-scored (``restored_probs``). Out of the target class (with two classes, below
  0.5; with more, another class's arg-max), the marker region alone undoes the flip:
  interventional evidence, independent of how the change is spread. Only the marker pixels
  the dilated lesion does not claim are restored (as for the shares), so a region drawn over
  a lesion cannot take the lesion's part in the flip.

A path goes **via the marker** when the marker's enrichment is at least ``min_enrichment``
(default 4: the box holds at least ~12% of the change; the paths of a classifier blind to the
box get 0.1-1x from the generator alone). Nothing is asked of the lesion: a path that removes
the lesion *and* the marker still shows that the marker moves the decision, and restoring the
marker undoes those flips. (Asking the marker to out-share the lesion, which with its halo is
larger than the box, or to out-enrich it, misses most such paths of a marker-trained
classifier whose flips restoring the marker undoes.)

Only paths that **count** enter the verdict: the classifier did not already put the input (or
its reconstruction ``G(z_0)``) in the target class, and the path flipped it. Counted paths are
split into **cells** by target class and by whether the *source* slice carries the marker
(:class:`MarkerCell`): a shortcut can only be removed from slices that have it, or added to
slices that do not, so pooling all paths dilutes it with paths where the marker cannot be the
way across. The classifier is **flagged** when any cell with at least ``min_paths`` counted
paths goes via the marker in at least ``flag_rate`` of them, or when restoring the marker
undoes at least ``flag_rate`` of its flips: the two tests ask the same question, and a path
that also changes the lesion a lot can leave the marker under ``min_enrichment`` although the
marker alone carries its flip (a user audit found "no shortcut found" beside 3 of 3 flips
undone). The pooled rate is kept too.

Healthy -> tumour paths start from slices without a lesion, so their lesion share is 0 and a
lesion the path paints in counts as ``elsewhere``; the marker criterion still applies.
"""

from __future__ import annotations

import inspect
import logging
import math
import time
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from cfx.calls import call_named, class_logits, frozen, resolve_target, target_prob
from cfx.data.brain import SIZE, marker_mask
from cfx.errors import check, check_flag, shown_rows
from cfx.images import binary_masks, check_images
from cfx.inversion import generator_probe
from cfx.reprs import settings_repr
from cfx.saliency import Gradient, SaliencyMethod
from cfx.saliency._common import notices_given
from cfx.shortcuts.regions import claimed_regions, region_enrichment, region_shares
from cfx.shortcuts.report import MARKER_NAME, ByRegion, PathExplainer, ShortcutReport
from cfx.trajectory import GradientAscent, MonotonePath
from cfx.trajectory.notices import notices_held, without_path_notices
from cfx.types import Classifier, Generator, Target

logger = logging.getLogger(__name__)

# The audit's paths stop once past this (not the explainers' default 0.99): a shortcut shows most
# plainly in the smallest change that crosses the boundary. A monotone path's last frame must
# stay past it also when blurred, so it lands further (summary.json: p_target_end_median).
CROSSING_MARGIN = 0.95

ExplainerName = Literal["gradient", "monotone"]
# The brain slices' marker (cfx.data.brain) is an L-shaped glyph of 22 pixels at 0.5-0.9 in the
# 11x11 box; the box is background (below -0.8) without it. At least 10 box pixels above 0.4
# tells the two apart on every one of 6,000 test slices (19-22 pixels with it, 0 without).
_GLYPH_LEVEL, _GLYPH_PIXELS = 0.4, 10


def _check_masks(masks: object, name: str, b: int, h: int, w: int, *, shared: bool) -> Tensor:
    if not isinstance(masks, Tensor) or masks.is_complex():
        got = f"dtype {masks.dtype}" if isinstance(masks, Tensor) else type(masks).__name__
        shape = "(B, 1, H, W), (1, 1, H, W) or (H, W)" if shared else "(B, 1, H, W)"
        raise TypeError(f"`{name}` must be a bool tensor {shape}, got {got}")
    masks = binary_masks(masks, name)  # 0/1 masks, as cfx.metrics and the saliency metrics take
    if shared and tuple(masks.shape) == (h, w):  # one region for every image
        return masks[None, None]
    batches = (1, b) if shared else (b,)
    check(
        masks.ndim == 4 and masks.shape[0] in batches and tuple(masks.shape[1:]) == (1, h, w),
        ValueError,
        f"`{name}` must have shape ({b}, 1, {h}, {w})"
        + (f", (1, 1, {h}, {w}) or ({h}, {w})" if shared else "")
        + f" to match `x`, got {tuple(masks.shape)}",
    )
    return masks


def _check_present(present: object, b: int) -> Tensor:
    """``present`` as a bool ``(b,)`` tensor: bool, or numbers of 0 and 1 (as masks take); a
    numpy array or a list of them too (as ``target`` is taken)."""
    if isinstance(present, list | tuple):
        present = np.asarray(present)
    if isinstance(present, np.ndarray) and present.dtype.kind in "biuf":  # numbers or bools
        present = torch.from_numpy(present)
    if not isinstance(present, Tensor) or present.is_complex():
        got = f"dtype {present.dtype}" if isinstance(present, Tensor) else type(present).__name__
        raise TypeError(f"`marker_present` must be a bool or 0/1 tensor (B,), got {got}")
    check(
        tuple(present.shape) == (b,),
        ValueError,
        f"`marker_present` must have shape ({b},) to match `x`, got {tuple(present.shape)}",
    )
    return binary_masks(present, "marker_present")


def _check_marker_region(marker: Tensor) -> None:
    """A marker region must mark some pixels and leave others: an empty one can carry no
    change, and a full one makes every change 'via the marker'."""
    flat = marker.flatten(1)  # (B or 1, H * W)
    empty = torch.nonzero(~flat.any(1)).flatten().tolist()
    full = torch.nonzero(flat.all(1)).flatten().tolist()
    which = "the mask marks" if marker.shape[0] == 1 else "masks {} mark"
    check(
        not empty,
        ValueError,
        f"`marker_masks`: {which.format(empty[:5])} no pixel; a marker region must mark the "
        "suspected region",
    )
    check(
        not full,
        ValueError,
        f"`marker_masks`: {which.format(full[:5])} every pixel, so every change would count "
        "as via the marker; mark the suspected region only (inverted, 0 = region?)",
    )


def _brain_marker_present(x: Tensor) -> Tensor:
    """``(B,)`` bool: the 64x64 brain slices ``x`` ``(B, 1, 64, 64)`` in [-1, 1] carry the
    scanner marker of :mod:`cfx.data.brain` (at least 10 pixels of its box above 0.4)."""
    box = x[:, 0][:, marker_mask(SIZE)[0, 0].to(x.device)]  # (B, 121)
    return (box > _GLYPH_LEVEL).sum(1) >= _GLYPH_PIXELS


class ShortcutAudit:
    """Run counterfactual paths on a batch and report whether they flip through the marker.

    Each path's change ``|G(z_T) - G(z_0)|`` and the input's saliency are split between the
    lesion, the marker box and the rest; the classifier is flagged when, in some cell (target
    class x marker on the source), enough counted paths go via the marker (see the module
    docstring for the rules).

    Reference: Singla et al., "Explaining the black-box smoothly", MedIA 2023 (shortcuts found
    by counterfactual paths); the shortcut itself is the Clever-Hans effect of Lapuschkin et
    al., "Unmasking Clever Hans predictors and assessing what machines really learn",
    Nat. Commun. 2019.

    Args:
        generator: a :class:`~cfx.types.Generator` (``Invertible`` unless latents are given).
        classifier: images in [-1, 1] -> logits ``(B, K)``; the model being audited.
        explainer: ``"gradient"`` (Option 1, :class:`~cfx.trajectory.GradientAscent`),
            ``"monotone"`` (Option 2, :class:`~cfx.trajectory.MonotonePath`), both built with
            their defaults, ``steps`` and a margin of 0.95 (the paths stop just past the
            boundary, where the shortcut shows plainest); or a configured explainer object for
            ``classifier``, which keeps its own steps, margin and progress bars (``steps``
            and ``show_progress`` are then not used; a warning says so when set).
        saliency: a saliency method for ``classifier`` (``attribute(x, target) ->
            (B, 1, H, W)``), or its name as ``cfx saliency`` spells it (``"gradcam"``,
            :data:`cfx.saliency.compare.METHODS`); None uses :class:`~cfx.saliency.Gradient`.
        steps: frames ``T`` of the paths built from a name.
        lesion_dilation: px grown around the lesion masks (as in ``localisation``).
        min_enrichment: a path goes via the marker when the marker's share of the change is
            at least this many times its area fraction.
        flag_rate: flag the classifier when, in some cell (target class x marker on the
            source), at least this share of the counted paths go via the marker, or have their
            flip undone by restoring the marker region; in (0, 1].
        min_paths: counted paths a cell needs before it can flag the classifier (>= 1).
        class_names: a name per class, for the verdict (the brain classifiers' by default).
        marker_name: what the verdict calls the marker region ("removing the scanner
            marker"); name your own suspected region (e.g. ``"ruler"``, ``"hospital tag"``).
        show_progress: tqdm bars of the explainer built from a name.
    """

    __repr__ = settings_repr  # the arguments given, defaults left out

    def __init__(
        self,
        generator: Generator,
        classifier: Classifier,
        *,
        explainer: ExplainerName | PathExplainer = "gradient",
        saliency: SaliencyMethod | str | None = None,
        steps: int = 10,
        lesion_dilation: int = 3,
        min_enrichment: float = 4.0,
        flag_rate: float = 0.5,
        min_paths: int = 3,
        class_names: Sequence[str] = ("healthy", "tumour"),
        marker_name: str = MARKER_NAME,
        show_progress: bool = False,
    ) -> None:
        self.generator = generator
        self.classifier = classifier
        self.explainer = explainer
        self.saliency = saliency
        self.steps = steps
        self.lesion_dilation = lesion_dilation
        self.min_enrichment = min_enrichment
        self.flag_rate = flag_rate
        self.min_paths = min_paths
        self.class_names = class_names
        self.marker_name = marker_name
        self.show_progress = check_flag("show_progress", show_progress)

    def _check(self) -> None:
        # numpy numbers too (a config file, a sweep): np.int64(3) was "must be an int >= 1"
        ok = isinstance(self.min_enrichment, Real) and not isinstance(self.min_enrichment, bool)
        check(  # inf: no path could ever go via the marker, and every model read clean
            ok and 0 < self.min_enrichment < math.inf,
            ValueError,
            f"`min_enrichment` must be a positive finite number, got {self.min_enrichment!r}",
        )
        ok = isinstance(self.flag_rate, Real) and not isinstance(self.flag_rate, bool)
        check(
            ok and 0 < self.flag_rate <= 1,
            ValueError,
            f"`flag_rate` must be a number in (0, 1], got {self.flag_rate!r}",
        )
        ok = isinstance(self.min_paths, Integral) and not isinstance(self.min_paths, bool)
        check(
            ok and self.min_paths >= 1,
            ValueError,
            f"`min_paths` must be an int >= 1, got {self.min_paths!r}",
        )
        ok = isinstance(self.lesion_dilation, Integral) and not isinstance(
            self.lesion_dilation, bool
        )
        check(
            ok and self.lesion_dilation >= 0,
            ValueError,
            f"`lesion_dilation` must be an int >= 0, got {self.lesion_dilation!r}",
        )
        names = self.class_names
        check(
            not isinstance(names, str)
            and isinstance(names, Sequence)
            and len(names) >= 2
            and all(isinstance(n, str) and n for n in names),
            ValueError,
            f"`class_names` must be a sequence of at least two non-empty strings, got {names!r}",
        )
        check(
            isinstance(self.marker_name, str) and self.marker_name.strip() != "",
            ValueError,
            f"`marker_name` must be a non-empty string, got {self.marker_name!r}",
        )

    def _explainer(self) -> PathExplainer:
        g, f = self.generator, self.classifier
        steps, margin, progress = self.steps, CROSSING_MARGIN, self.show_progress
        if isinstance(self.explainer, str):
            if self.explainer == "gradient":
                return GradientAscent(g, f, steps=steps, margin=margin, show_progress=progress)
            elif self.explainer == "monotone":
                return MonotonePath(g, f, steps=steps, margin=margin, show_progress=progress)
            else:
                raise ValueError(
                    "`explainer` must be 'gradient', 'monotone' or an object with "
                    f"explain(x, target), got {self.explainer!r}"
                )
        if not callable(getattr(self.explainer, "explain", None)):
            raise TypeError(
                "`explainer` must be 'gradient', 'monotone' or an object with "
                f"explain(x, target), got {type(self.explainer).__name__}"
            )
        unset = inspect.signature(ShortcutAudit).parameters["steps"].default
        if self.steps != unset or self.show_progress:  # set for the named explainers only
            logger.warning(
                "`steps` and `show_progress` apply to an explainer built from its name; the "
                "given %s keeps its own settings (and margin: the named ones stop at %.2f)",
                type(self.explainer).__name__,
                margin,
            )
        own = getattr(self.explainer, "classifier", self.classifier)
        check(
            own is self.classifier,
            ValueError,
            "`explainer` explains a different classifier than `classifier`; build it for "
            "the audited classifier",
        )
        return self.explainer

    def _saliency(self) -> SaliencyMethod:
        if self.saliency is None:
            return Gradient(self.classifier)
        if isinstance(self.saliency, str):  # as the command line names them
            from cfx.saliency.compare import build_method

            try:
                method = build_method(self.saliency, self.classifier)
                if getattr(method, "layer", False) is None:  # Grad-CAM's layer: found now,
                    from cfx.saliency.gradcam import resolve_layer  # not after the paths

                    resolve_layer(self.classifier, None)
                return method
            except (ValueError, TypeError) as err:  # e.g. Grad-CAM's "pass `layer`"
                raise type(err)(
                    f"`saliency`={self.saliency!r} cannot be built for `classifier` ({err}); "
                    "build the method yourself and pass it, e.g. "
                    "saliency=GradCAM(classifier, layer=...)"
                ) from err
        if not callable(getattr(self.saliency, "attribute", None)):
            raise TypeError(
                "`saliency` must be None, a method name or an object with attribute(x, "
                f"target), got {type(self.saliency).__name__}"
            )
        return self.saliency

    def audit(
        self,
        x: Tensor,
        target: Target,
        *,
        lesion_masks: Tensor | None = None,
        marker_masks: Tensor | None = None,
        marker_present: Tensor | np.ndarray | Sequence[int | bool] | None = None,
        latents: Tensor | None = None,
    ) -> ShortcutReport:
        """Walk ``x`` ``(B, C, H, W)`` in [-1, 1] into ``target`` (an int or ``(B,)``
        classes) and report where the paths changed the image.

        ``lesion_masks`` bool ``(B, 1, H, W)`` (all False for healthy slices), where the real
        evidence lies; None: not known, so change outside the marker counts as elsewhere;
        ``marker_masks`` bool ``(B, 1, H, W)``, or one region for every image ``(1, 1, H, W)``
        or ``(H, W)`` (marking some pixels, not all), by default the
        :data:`cfx.data.brain.MARKER_BOX` of 64x64 slices;
        ``marker_present`` bool or 0/1 ``(B,)`` (a tensor, numpy array or list), which inputs
        carry the marker (e.g. a dataset's ``tags``), by default read off the brain slices'
        marker box (with a warning: images of your own need both; flags given without
        ``marker_masks`` that contradict the box are warned about too), and required with
        ``marker_masks``; ``latents`` skip the inversion. ``target`` is the class each path
        walks into (``1 - labels`` walks every image into the other of two classes).
        """
        self._check()
        x = check_images(x, "x")
        b, _, h, w = x.shape
        if lesion_masks is None:  # no lesion region: its share is 0, its enrichment NaN
            lesion = torch.zeros(b, 1, h, w, dtype=torch.bool, device=x.device)
        else:
            lesion = _check_masks(lesion_masks, "lesion_masks", b, h, w, shared=False)
            lesion = lesion.to(x.device).clone()  # the report's own, not the caller's
        if marker_masks is None:
            check(
                (h, w) == (SIZE, SIZE),
                ValueError,
                f"`marker_masks` is required for images that are not {SIZE}x{SIZE} brain "
                f"slices, got size {h}x{w}",
            )
            marker = marker_mask(SIZE).to(x.device)
            if marker_present is not None:  # given: does the box agree? (own 64x64 images)
                marker_present = given = _check_present(marker_present, b).to(x.device)
                differ = int((given != _brain_marker_present(x)).sum())
                if differ:
                    logger.warning(
                        "`marker_present` says otherwise than the scanner-marker box of cfx's "
                        "brain slices for %d of the %d images: without `marker_masks` that box "
                        "is the region audited; for images of your own, pass `marker_masks`",
                        differ,
                        b,
                    )
            if marker_present is None:
                logger.warning(
                    "`marker_masks` and `marker_present` not given: the %d images are read "
                    "as cfx's 64x64 brain slices, whose scanner-marker box is the region "
                    "audited and tells which images carry it; for images of your own, pass "
                    "both",
                    b,
                )
                marker_present = _brain_marker_present(x)
        else:
            marker = _check_masks(marker_masks, "marker_masks", b, h, w, shared=True)
            _check_marker_region(marker)
            marker = marker.to(x.device).clone()  # the report's own, not the caller's
            check(
                marker_present is not None,
                ValueError,
                "`marker_present` is required with `marker_masks` (which inputs carry the "
                "marker), got None",
            )
        # the report's own: editing a reused tags buffer rewrote a kept report's verdict
        present = _check_present(marker_present, b).to(x.device).clone()
        if not bool(present.any()):  # said before the walk: the verdict cannot be clean
            logger.warning(
                "`marker_present` marks none of the %d images as carrying the %s: no path "
                "from a marked image can be judged, so the verdict can be no better than "
                "inconclusive; check which images carry it",
                b,
                self.marker_name,
            )
        names = tuple(self.class_names)
        explainer, saliency = self._explainer(), self._saliency()
        t0 = time.perf_counter()

        # the images against the generator first: a grey classifier given colour images
        # failed inside torch ("expected input[4, 3, 64, 64] to have 1 channels")
        with frozen(self.generator), torch.no_grad(), notices_held("cfx_models"):
            generator_probe(self.generator, x, name="x")
        with frozen(self.classifier), torch.no_grad():  # checked before the paths are walked
            logits = call_named(  # a colour classifier of grey images failed inside torch
                lambda: class_logits(self.classifier, x),
                {"classifier": self.classifier},
                x,
                f"`classifier` cannot read `x` of shape {tuple(x.shape)}, the generator's "
                "frames' shape, which the paths are made of",
            )  # (B, K)
        check(
            logits.shape[1] == len(names),
            ValueError,
            f"`class_names` must name each of the classifier's {logits.shape[1]} classes, "
            f"got {len(names)}: {names}",
        )
        # the target before the maps: a class out of range was named after them (seconds
        # per image for RISE), by the explainer
        wanted = resolve_target(target, b, logits.shape[1], x.device)  # (B,)
        source_class = logits.argmax(1)  # (B,)
        already = int((source_class == wanted).sum())
        if 2 * already > b:  # the labels passed as the target: said before minutes of walking
            logger.warning(
                "%d of %d inputs are already in their target class for the classifier: their "
                "paths do not count. `target` is the class each path walks into%s, not the "
                "images' labels",
                already,
                b,
                " (1 - labels walks every image into the other class)"
                if logits.shape[1] == 2
                else "",
            )
        # the maps before the paths: a method that fails or returns NaN is named before
        # minutes of walking, not as "`change` must be finite" after them
        with notices_given():  # the paths' start gives these notices
            maps = saliency.attribute(x, source_class).detach().abs()
        check(
            tuple(maps.shape) == (b, 1, h, w),
            ValueError,
            f"`saliency` must return maps of shape {(b, 1, h, w)}, got {tuple(maps.shape)}",
        )
        bad = torch.nonzero(~torch.isfinite(maps).flatten(1).all(1)).flatten().tolist()
        check(
            not bad,
            ValueError,
            f"`saliency` returned maps holding NaN or inf for the images {shown_rows(bad)} "
            "(a map divided by its maximum, which is 0 for a blank map?)",
        )

        with without_path_notices():  # the report counts the paths that start in the target
            paths = explainer.explain(x, target, latents=latents)
        start, final = paths.frames[:, 0], paths.frames[:, -1]  # (B, C, H, W)
        change = (final - start).abs().sum(1, keepdim=True)  # (B, 1, H, W)
        regions = {"lesion": lesion, "marker": marker}
        dilation = {"lesion": int(self.lesion_dilation)}  # numpy ints too; settings kept as given
        claimed = claimed_regions(regions, change, dilation=dilation)
        # the marker's pixels the (dilated) lesion does not claim: restoring a marker region
        # that overlaps a lesion would put lesion back too, and blame the marker for its flip
        own_marker = claimed["marker"] > 0.5  # (B, 1, H, W)
        with frozen(self.classifier), torch.no_grad():
            restored = torch.where(own_marker, start, final)  # (B, C, H, W)
            restored_logits = class_logits(self.classifier, restored)  # (B, K)
            restored_probs = target_prob(restored_logits, paths.target)
            restored_in = restored_logits.argmax(1) == paths.target  # (B,)

        shares = ByRegion.of(region_shares(change, regions, dilation=dilation))
        enrich = ByRegion.of(region_enrichment(change, regions, dilation=dilation))
        in_marker = claimed["marker"].flatten(1)  # (B, H*W) float
        signed = (final - start).mean(1).flatten(1)  # (B, H*W)
        marker_delta = (signed * in_marker).sum(1) / in_marker.sum(1).clamp_min(1.0)  # (B,)
        via = enrich.marker >= float(self.min_enrichment)  # NaN (no change) is False
        # neither x nor G(z_0) in the target class (the classifier's arg-max, any K)
        outside = (source_class != paths.target) & ~paths.already_in_target

        report = ShortcutReport(
            paths=paths,
            source_class=source_class,
            started_outside=outside,
            marker_present=present,
            change=shares,
            change_enrichment=enrich,
            saliency=ByRegion.of(region_shares(maps, regions, dilation=dilation)),
            saliency_enrichment=ByRegion.of(region_enrichment(maps, regions, dilation=dilation)),
            area=ByRegion.of({k: v.mean(dim=(1, 2, 3)) for k, v in claimed.items()}),
            via_marker=via,
            marker_delta=marker_delta,
            restored_probs=restored_probs,
            restored_in_target=restored_in,
            saliency_maps=maps,
            lesion_masks=lesion,
            marker_masks=marker,
            class_names=names,
            min_enrichment=float(self.min_enrichment),
            flag_rate=float(self.flag_rate),
            min_paths=int(self.min_paths),
            marker_name=self.marker_name.strip(),
        )
        logger.info(
            "shortcut audit of %d paths in %.1fs (explainer %.1fs): %s",
            b,
            time.perf_counter() - t0,
            paths.seconds,
            report.verdict,
        )
        return report
