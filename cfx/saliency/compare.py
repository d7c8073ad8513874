"""Run several saliency methods on the same images and score them against ground-truth masks.

Used by ``cfx saliency compare``, the demo report, the notebook and ``benchmarks/saliency.py``.
Every method sees the same images, targets and generator seed. Maps are scored by their
positive part (evidence *for* the target class; gradient magnitudes are already non-negative),
with the metrics of :mod:`cfx.saliency.metrics` and :mod:`cfx.saliency.faithfulness`, plus the
wall-clock seconds per image measured here.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from cfx.errors import (
    UnknownNameError,
    check,
    check_flag,
    check_int,
    check_integer,
    shape_or_type,
    shown_rows,
)
from cfx.images import binary_masks
from cfx.reprs import short_repr
from cfx.saliency import metrics as M
from cfx.saliency._common import SaliencyMethod, check_input, notices_given, takes_generator
from cfx.saliency.faithfulness import deletion_auc, insertion_auc
from cfx.saliency.gradcam import GradCAM
from cfx.saliency.gradient import Gradient
from cfx.saliency.gradient_x_input import GradientXInput
from cfx.saliency.integrated_gradients import IntegratedGradients
from cfx.saliency.kernel_shap import KernelSHAP
from cfx.saliency.lime import LIME
from cfx.saliency.occlusion import Occlusion
from cfx.saliency.rex import CausalResponsibility
from cfx.saliency.rise import RISE
from cfx.saliency.smoothgrad import SmoothGrad
from cfx.types import Classifier, Target

log = logging.getLogger(__name__)

#: method name -> (full settings, fast settings) builders; all share the model.
#: Settings that differ from the methods' defaults were chosen on validation slices (brain
#: seed 1, never the test seed) for ``brain-cnn``: that classifier calls almost any heavily
#: masked slice "tumour" with probability ~1 (masked images are out of distribution), so RISE
#: keeps 90% of each image and the perturbation methods score logits / log-odds, which still
#: discriminate where probabilities saturate.
_BUILDERS: dict[str, tuple[Callable[..., SaliencyMethod], Callable[..., SaliencyMethod]]] = {
    "gradient": (lambda m, layer: Gradient(m), lambda m, layer: Gradient(m)),
    "gradient_x_input": (lambda m, layer: GradientXInput(m), lambda m, layer: GradientXInput(m)),
    "smoothgrad": (
        lambda m, layer: SmoothGrad(m, n_samples=32),
        lambda m, layer: SmoothGrad(m, n_samples=8),
    ),
    # 128 quadrature points, fast too: on 16 validation slices brain-cnn's maps missed
    # completeness by up to 34 % at 32 points, 12 % at 64 and 4 % at 128 (session 42)
    "integrated_gradients": (
        lambda m, layer: IntegratedGradients(m, n_steps=128),
        lambda m, layer: IntegratedGradients(m, n_steps=128),
    ),
    "gradcam": (lambda m, layer: GradCAM(m, layer=layer), lambda m, layer: GradCAM(m, layer=layer)),
    "occlusion": (
        lambda m, layer: Occlusion(m, window=8, stride=4),
        lambda m, layer: Occlusion(m, window=8, stride=8),
    ),
    "rise": (
        lambda m, layer: RISE(m, n_masks=1000, p=0.9, output="logit"),
        lambda m, layer: RISE(m, n_masks=200, p=0.9, output="logit"),
    ),
    "lime": (
        lambda m, layer: LIME(m, n_samples=1000, output="logit"),
        lambda m, layer: LIME(m, n_samples=200, output="logit"),
    ),
    "kernel_shap": (
        lambda m, layer: KernelSHAP(m, n_samples=1000, output="logit"),
        lambda m, layer: KernelSHAP(m, n_samples=200, output="logit"),
    ),
    "rex": (
        lambda m, layer: CausalResponsibility(m, runs=16, depth=5, confidence=0.75),
        lambda m, layer: CausalResponsibility(m, runs=4, depth=4, confidence=0.75),
    ),
}
METHODS: tuple[str, ...] = tuple(_BUILDERS)
METRICS: tuple[str, ...] = (
    "pointing_game",
    "relevance_mass",
    "relevance_rank",
    "energy_pointing_game",
    "dice",
    "iou",
    "deletion_auc",
    "insertion_auc",
)


def method_key(name: str) -> str:
    """A saliency method's name as cfx spells it: lower case, underscores (``GradCAM`` ->
    ``gradcam``, ``Integrated-Gradients`` -> ``integrated_gradients``), in Python as on the
    command line."""
    return name.strip().lower().replace("-", "_") if isinstance(name, str) else name


def build_method(
    name: str,
    model: Classifier,
    *,
    fast: bool = False,
    gradcam_layer: nn.Module | str | None = None,
) -> SaliencyMethod:
    """A configured method by its name (see :data:`METHODS`; :func:`method_key` spellings
    too); ``fast`` = small budgets."""
    check_flag("fast", fast)
    key = method_key(name)
    if key not in _BUILDERS:
        raise UnknownNameError(f"unknown saliency method {name!r}; expected one of {METHODS}")
    return _BUILDERS[key][1 if fast else 0](model, gradcam_layer)


@dataclass(frozen=True)
class ComparisonResult:
    """Scores ``(methods, metrics, B)`` of every method on the same images, and their maps."""

    __repr__ = short_repr  # shapes and counts, not every field in full

    methods: tuple[str, ...]
    metrics: tuple[str, ...]
    scores: Tensor  # (M, K, B); NaN where a metric is undefined (empty mask)
    maps: Tensor  # (M, B, 1, H, W) raw maps
    seconds_per_image: Tensor  # (M,)

    def summary(self) -> list[dict[str, float | str]]:
        """One row per method: ``mean`` and 95% CI half-width (:func:`mean_ci`, over examples
        with a defined score) for every metric, and the seconds per image."""
        rows: list[dict[str, float | str]] = []
        for i, name in enumerate(self.methods):
            row: dict[str, float | str] = {"method": name}
            for j, metric in enumerate(self.metrics):
                mean, half = mean_ci(self.scores[i, j])
                row[metric] = mean
                row[f"{metric}_ci95"] = half
            row["seconds_per_image"] = float(self.seconds_per_image[i])
            rows.append(row)
        return rows

    def to_csv(self) -> str:
        """The :meth:`summary` rows as CSV text: a header, then one line per method (numbers
        to six significant digits; an interval over one image is an empty cell)."""
        rows = self.summary()
        header = list(rows[0])
        lines = [",".join(header)]
        for row in rows:
            lines.append(",".join(_cell(row[h]) for h in header))
        return "\n".join(lines) + "\n"

    def to_markdown(self) -> str:
        """Method x metric table, ``mean +- ci95`` in each cell, plus seconds per image, and
        notes under it: what a cell holds, and (with both ``relevance_rank`` and ``dice``) why
        those columns are equal (both are the share of the ``|mask|`` top-ranked pixels inside
        the mask)."""
        head = ["method", *self.metrics, "s / image"]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for row in self.summary():
            cells = [str(row["method"])]
            for metric in self.metrics:
                cells.append(_mean_pm(float(row[metric]), float(row[metric + "_ci95"])))
            cells.append(f"{row['seconds_per_image']:.4f}")
            lines.append("| " + " | ".join(cells) + " |")
        lines += [
            "",
            "Cells: mean ± half-width of the 95% confidence interval over the images (Student's "
            "t: few images give wide intervals, and ± 0.000 says every image scored alike, not "
            "that the mean is certain). Higher is better"
            + (
                " but for deletion_auc (the model's probability as the top pixels are removed)"
                if "deletion_auc" in self.metrics
                else ""
            )
            + "; s / image is the method's attribution time alone."
            + (
                " pointing_game counts a hit when the map's maximum lies in the mask, ties at "
                "the maximum in expectation, so it can be fractional."
                if "pointing_game" in self.metrics
                else ""
            ),
        ]
        if {"relevance_rank", "dice"} <= set(self.metrics):
            lines.append(
                "relevance_rank and dice are equal by construction: with K = |mask| top pixels, "
                "Dice 2|top ∩ mask| / (K + |mask|) is the share of the top K inside the mask."
            )
        return "\n".join(lines) + "\n"

    def best(self, metric: str = "dice") -> tuple[str, float]:
        """The method with the highest mean ``metric`` (lowest for ``deletion_auc``) and that
        mean. Methods tied at it (e.g. several at a pointing game of 1.0) are named together,
        in table order: ``("gradient = occlusion", 1.0)``. A method whose mean is undefined
        (NaN) never comes first; ``("", nan)`` when none is defined."""
        if metric not in self.metrics:
            raise ValueError(f"`metric` must be one of {list(self.metrics)}, got {metric!r}")
        j = self.metrics.index(metric)
        means = torch.stack([self.scores[i, j].nanmean() for i in range(len(self.methods))])
        if bool(means.isnan().all()):  # no method has a defined score (e.g. empty masks)
            return "", math.nan
        lowest = metric == "deletion_auc"
        ranked = means.nan_to_num(math.inf if lowest else -math.inf)  # undefined: never best
        i = int(ranked.argmin() if lowest else ranked.argmax())
        tied = [name for name, m in zip(self.methods, means.tolist(), strict=True) if m == means[i]]
        return " = ".join(tied), float(means[i])


def mean_ci(values: Tensor) -> tuple[float, float]:
    """Mean and 95% CI half-width (Student's t, ``t_{0.975, n-1} * sd / sqrt(n)``: 1.96 for
    many images, 3.18 for 4, 12.7 for 2) over the finite entries of ``values``; the
    half-width is NaN for fewer than two entries (one value has no spread to estimate it
    from). Near the ends of a bounded score (a pointing game of 0.875 over 8 images) the
    interval can reach past them, and scores alike on every image give a half-width of 0,
    which with few images is no certainty."""
    from scipy.stats import t as student

    v = values[torch.isfinite(values)].double()
    n = v.numel()
    if n == 0:
        return math.nan, math.nan
    if n == 1:
        return float(v.mean()), math.nan
    half = float(student.ppf(0.975, n - 1)) * float(v.std(unbiased=True)) / math.sqrt(n)
    return float(v.mean()), half


def _mean_pm(mean: float, half: float) -> str:
    """``mean ± half`` to three decimals; ``n/a`` for what is undefined (no defined score;
    one image gives no interval)."""
    if math.isnan(mean):
        return "n/a"
    return f"{mean:.3f} ± " + ("n/a" if math.isnan(half) else f"{half:.3f}")


def _cell(value: float | str) -> str:
    """A CSV cell: six significant digits; an undefined number (the interval of one image)
    is left empty, as spreadsheets and pandas read a missing value."""
    if isinstance(value, str):
        return value
    return "" if math.isnan(value) else f"{value:.6g}"


def score_maps(
    model: Classifier,
    x: Tensor,
    masks: Tensor,
    maps: Tensor,
    target: Target,
    *,
    faithfulness_steps: int = 32,
    batch_size: int = 32,
) -> Tensor:
    """All :data:`METRICS` for one method's maps: ``(K, B)``. Maps are scored by their
    positive part. Deletion fills with black (-1); insertion starts from black too, not from
    RISE's blurred copy, because ``brain-cnn`` calls blurred slices "tumour" (even a 1-pixel
    blur of a healthy slice gets p ~ 0.9 on validation slices), which makes every insertion
    curve flat at 1."""
    relevance = maps.clamp(min=0)
    rows = [
        M.pointing_game(relevance, masks),
        M.relevance_mass_accuracy(relevance, masks),
        M.relevance_rank_accuracy(relevance, masks),
        M.energy_pointing_game(relevance, masks),
        M.top_k_dice(relevance, masks),
        M.top_k_iou(relevance, masks),
        deletion_auc(model, x, relevance, target, steps=faithfulness_steps, batch_size=batch_size),
        insertion_auc(
            model,
            x,
            relevance,
            target,
            steps=faithfulness_steps,
            blur_sigma=None,
            batch_size=batch_size,
        ),
    ]
    return torch.stack(rows)


def compare_methods(
    model: Classifier,
    x: Tensor,
    masks: Tensor,
    target: Target,
    methods: dict[str, SaliencyMethod] | Iterable[str] = METHODS,
    *,
    fast: bool = False,
    gradcam_layer: nn.Module | str | None = None,
    seed: int = 0,
    faithfulness_steps: int = 32,
    batch_size: int = 32,
    show_progress: bool = False,
) -> ComparisonResult:
    """Run and score every method on images ``x`` ``(B, C, H, W)`` in [-1, 1].

    Args:
        model: the classifier (images -> logits).
        masks: ground truth ``(B, 1, H, W)`` (bool), e.g. lesion masks; all empty is an
            error, some empty a warning (those images get NaN localisation scores).
        target: class explained (int or ``(B,)``), e.g. the true labels.
        methods: names from :data:`METHODS` (built with :func:`build_method`) or a dict of
            ready methods by display name.
        fast: small budgets for the perturbation methods (demo, notebook, smoke tests).
        gradcam_layer: Grad-CAM's layer (None = the model's last ``nn.Conv2d``).
        seed: every stochastic method gets a fresh ``torch.Generator`` seeded with it.
        faithfulness_steps: chunks of the deletion/insertion curves.
        batch_size: images per forward pass of the deletion/insertion scoring.
        show_progress: tqdm bar over methods.
    """
    check_flag("show_progress", show_progress)
    check_flag("fast", fast)
    x = check_input(x, model)  # the probe's notices come once, here
    # an int: a numpy int passed a bare Integral check and failed in manual_seed
    seed = check_integer("seed", seed)
    # checked before any method runs, not by the first score after minutes of RISE or LIME
    faithfulness_steps = check_int("faithfulness_steps", faithfulness_steps)
    batch_size = check_int("batch_size", batch_size)
    check(
        isinstance(masks, Tensor) and masks.shape == (x.shape[0], 1, *x.shape[2:]),
        ValueError,
        f"`masks` must have shape {(x.shape[0], 1, *x.shape[2:])}, got {shape_or_type(masks)}",
    )
    masks = binary_masks(masks)  # before any method runs, not after the first one
    empty = torch.nonzero(~masks.flatten(1).any(1)).flatten().tolist()
    if len(empty) == x.shape[0]:  # every localisation score would be NaN, and best() too
        raise ValueError(
            "`masks` are all empty: there is nothing to score the maps against (a mask marks "
            "the pixels that should carry the evidence, e.g. the lesion)"
        )
    if empty:
        log.warning(
            "%d of %d masks are empty (rows %s): their images count in the faithfulness "
            "scores only, not in the localisation means",
            len(empty),
            x.shape[0],
            shown_rows(empty),
            extra={"cfx_empty_masks": True},  # a caller naming files holds this one
        )
    if isinstance(methods, str):  # would be read letter by letter
        raise TypeError(
            f"`methods` must be a list of method names or a dict of methods, got the string "
            f"{methods!r}; for one method pass [{methods!r}]"
        )
    if isinstance(methods, dict):
        bad = [k for k, m in methods.items() if not callable(getattr(m, "attribute", None))]
        check(
            not bad,
            TypeError,
            f"`methods` values must be saliency methods (with an `attribute(x, target)` "
            f"method, e.g. cfx.saliency.Gradient(model)), got {bad[:3]} as "
            f"{[type(methods[k]).__name__ for k in bad[:3]]}",
        )
        built = dict(methods)
    else:
        built = {  # GradCAM, integrated-gradients: as the command line spells them
            method_key(name): build_method(name, model, fast=fast, gradcam_layer=gradcam_layer)
            for name in methods
        }
    check(len(built) > 0, ValueError, "`methods` must name at least one method")
    names = list(built)
    items: Iterable[str] = names
    if show_progress:
        from cfx.progress import tqdm

        items = tqdm(names, desc="saliency methods", unit="method")
    all_maps, all_scores, seconds = [], [], []
    with notices_given():  # every method and score would repeat them
        for name in items:
            method = built[name]
            kwargs = {}
            if takes_generator(method):
                kwargs["generator"] = torch.Generator().manual_seed(seed)
            t0 = time.perf_counter()
            maps = method.attribute(x, target, **kwargs)
            seconds.append((time.perf_counter() - t0) / x.shape[0])
            want = (x.shape[0], 1, *x.shape[2:])
            check(  # a method of your own: its name, not a bare AttributeError later
                isinstance(maps, Tensor) and maps.is_floating_point() and maps.shape == want,
                TypeError if not isinstance(maps, Tensor) else ValueError,
                f"`methods[{name!r}].attribute` must return a float tensor {want}, got "
                f"{shape_or_type(maps)}"
                + ("" if not isinstance(maps, Tensor) else f" of dtype {maps.dtype}"),
            )
            maps = maps.detach()
            log.info("%s: %.4f s/image", name, seconds[-1])
            all_maps.append(maps)
            all_scores.append(
                score_maps(
                    model,
                    x,
                    masks,
                    maps,
                    target,
                    faithfulness_steps=faithfulness_steps,
                    batch_size=batch_size,
                )
            )
    return ComparisonResult(
        methods=tuple(names),
        metrics=METRICS,
        scores=torch.stack(all_scores),
        maps=torch.stack(all_maps),
        seconds_per_image=torch.tensor(seconds, dtype=torch.float64),
    )


def tumour_slices(n: int, seed: int = 2) -> tuple[Tensor, Tensor]:
    """``n`` tumour slices of the built-in brain data with ``seed`` (2 = the test split):
    images ``(n, 1, 64, 64)`` in [-1, 1] and lesion masks ``(n, 1, 64, 64)`` bool, the first
    ``n`` tumours of ``make_dataset(2 n + 16, seed=seed)``. That draw depends on its size, so
    another ``n`` gives other slices, not a prefix or extension of these: runs compared image
    by image need the same ``n`` (or saved slices, ``--input``)."""
    from cfx.data.brain import make_dataset

    n = check_int("n", n)
    data = make_dataset(2 * n + 16, seed=seed)
    pick = torch.nonzero(data.labels == 1).flatten()[:n]
    return data.images[pick], data.masks[pick]
