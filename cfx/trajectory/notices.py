"""The notices a trajectory explainer gives about its paths and models, and how callers hold
them back: paths that start in the target class (:func:`start_notice`, with the sources'
own verdicts, :func:`notify_starts`), paths that end outside it or short of the margin
(:func:`end_notice`), and :func:`notices_held` / :func:`without_path_notices` for callers
that give them once for a whole input (:func:`~cfx.trajectory.explain_in_chunks`, active
learning) or report those paths themselves (the shortcut audit)."""

from __future__ import annotations

import logging
import math
from contextlib import AbstractContextManager
from numbers import Real

import torch
from torch import Tensor

from cfx.calls import class_logits, frozen, in_chunks
from cfx.errors import shown_rows
from cfx.inversion import log as inversion_log
from cfx.notices import held, is_held
from cfx.trajectory.start import log as start_log
from cfx.types import Classifier

log = logging.getLogger(__name__)


def notices_held(*tags: str) -> AbstractContextManager[None]:
    """Within this block the explainers do not log the notices tagged with any of ``tags``
    (``cfx_starts_in_target``, ``cfx_ends_short``, ``cfx_unit_range``, ``cfx_whole_image``,
    ``cfx_models``): for callers that report them themselves, once (the shortcut audit,
    :func:`~cfx.trajectory.explain_in_chunks`)."""
    return held((log, start_log, inversion_log), *tags)


def without_path_notices() -> AbstractContextManager[None]:
    """Within this block the explainers do not log the paths that start in the target class
    or end short of it (:func:`start_notice`, :func:`end_notice`): for callers that report
    those paths themselves (the shortcut audit)."""
    return notices_held("cfx_starts_in_target", "cfx_ends_short")


def start_notice(
    first_in_target: Tensor, source_in_target: Tensor | None = None, *, remedy: str = ""
) -> None:
    """Warn (tagged ``cfx_starts_in_target``) about the paths whose frame 0 the classifier
    already assigns to the target (``first_in_target`` ``(B,)`` bool), naming their rows.
    With ``source_in_target`` ``(B,)`` bool (the classifier's verdict on the sources
    themselves), the rows whose source is *not* in the target are named apart: there the
    inversion lost what the classifier saw; ``remedy`` (:func:`start_remedy`) says what to
    do about it."""
    already = torch.nonzero(first_in_target).flatten().tolist()
    if not already:
        return
    lost: list[int] = []
    if source_in_target is not None:
        lost = torch.nonzero(first_in_target & ~source_in_target).flatten().tolist()
    why = ""
    if source_in_target is not None and bool(source_in_target.all()):
        why = (
            "; the classifier puts every source image itself in the target class: either "
            "`target` names the images' own class (it is the class to walk into; CLI: "
            "--target), or the classifier misreads these images (images unlike those it was "
            "trained on?)"
        )
    elif lost:
        why = (
            f"; of these, the classifier does not put the source itself in the target on "
            f"rows {shown_rows(lost)}: the inversion lost what it saw there{remedy}"
        )
    log.warning(
        "%d of %d paths start in the target class (the classifier already assigns frame "
        "0, the reconstruction of the source, to it; rows %s): they exaggerate the target "
        "rather than cross into it, and their success flags are set%s",
        len(already),
        first_in_target.shape[0],
        shown_rows(already),
        why,
        extra={"cfx_starts_in_target": True},
    )


SHORT_OF_MARGIN = 0.25
"""Log-odds below ``margin`` a successful path's last frame may end before
:func:`end_notice` calls it short: the monotone path's end term and the resampling leave the
last frame a hair under the margin, which says nothing."""


def end_notice(last_in_target: Tensor, last_probs: Tensor, margin: object) -> None:
    """Warn (tagged ``cfx_ends_short``) about the paths whose last frame the classifier does
    not put in the target (``last_in_target`` ``(B,)`` bool), and, given ``margin``, about
    those that end in the target but clearly short of it (target probabilities
    ``last_probs`` ``(B,)`` more than :data:`SHORT_OF_MARGIN` log-odds below), naming their
    rows. A result's ``success`` flags say the first; only the probabilities say the
    second. A ``margin`` that is not a number strictly between 0 and 1 (None, or a custom
    explainer's setting of another meaning) skips the second."""
    missed = torch.nonzero(~last_in_target).flatten().tolist()
    b = last_in_target.shape[0]
    if missed:
        log.warning(
            "%d of %d paths end outside the target class (rows %s): the classifier's decision "
            "did not move far enough within the walk; check the target (CLI: --target), and "
            "that the classifier was trained on images like the generator's",
            len(missed),
            b,
            shown_rows(missed),
            extra={"cfx_ends_short": True},
        )
    if not isinstance(margin, Real) or not 0.0 < float(margin) < 1.0:
        return  # None, or a custom explainer's margin that is no probability
    bar = math.log(float(margin) / (1 - float(margin))) - SHORT_OF_MARGIN
    p = last_probs.detach().double().clamp(1e-12, 1 - 1e-12)
    short = torch.nonzero(last_in_target & (torch.log(p / (1 - p)) < bar)).flatten().tolist()
    if short:
        # a sigmoid's output taken for a logit: class 1's probability is sigmoid(p) <= 0.731,
        # and a walk pushing the sigmoid to 1 ends just under it
        ends = last_probs[short]
        ceiling = bool(((ends <= _SIGMOID_OF_ONE) & (ends >= 0.72)).all())
        log.warning(
            "%d of %d paths end in the target class but short of the margin %g (last-frame "
            "target probabilities down to %.3g; rows %s): %s",
            len(short),
            b,
            margin,
            float(last_probs[short].min()),
            shown_rows(short),
            _CEILING if ceiling else _SHORT,
            extra={"cfx_ends_short": True},
        )


_SIGMOID_OF_ONE = 1 / (1 + math.exp(-1)) + 1e-6
"""The highest class-1 probability of a [0, 1] output taken for a logit (0.731)."""
_SHORT = (
    "the walk stopped before the classifier was that sure; a longer walk (in Python, the "
    "explainer's `max_iter`, or `warm_start_iter` for the monotone path) goes further, or a "
    "lower margin (`margin`; CLI: --margin) asks less"
)
_CEILING = (
    "none passes 0.731 = sigmoid(1), the ceiling of a probability taken for a logit, which "
    "no longer walk passes: if the classifier ends in a softmax, give cfx the logits before "
    "it; if it ends in a sigmoid (one output), wrap it as `cfx.calls.TwoLogits(model, "
    "outputs='probability')`"
)
"""(A two-class softmax read as logits caps class 1 at sigmoid(1) too; TwoLogits refuses
a two-output model, and the advice once offered a longer walk.)"""


def region_notice(edit_masks: Tensor | None, give_up: object) -> None:
    """Warn (tagged ``cfx_whole_image``) about the localised paths whose region search found
    no candidate that reaches the goal, so their frames may change the whole image
    (``edit_masks`` ``(B, 1, H, W)`` all ones), naming their rows; ``give_up``: the
    explainer's setting, which the advice names when set. Nothing for None (no regions)."""
    if edit_masks is None:
        return
    whole = torch.nonzero((edit_masks.flatten(1) >= 1).all(1)).flatten().tolist()
    if not whole:
        return
    why = (
        f"; `give_up={give_up:g}` abandons a region whose target log-odds climb slowly at "
        "first (at its mean rate it would not reach the margin): in Python, `give_up=None` "
        "walks each region to its budget (slower)"
        if isinstance(give_up, Real)
        else ""
    )
    log.warning(
        "%d of %d localised paths change the whole image (rows %s): no candidate region "
        "reached the margin (or, from a start past it, climbed as far as the whole image "
        "did) within its budget (in Python: LocalisedAscent's `patience` and `max_iter`, "
        "MonotonePath's `warm_start_iter`; larger regions: `mask_fractions`)%s",
        len(whole),
        edit_masks.shape[0],
        shown_rows(whole),
        why,
        extra={"cfx_whole_image": True},
    )


def start_remedy(weight: float, inverted: bool) -> str:
    """What :func:`start_notice` advises for rows whose inversion lost the decision, given
    the explainer's ``inversion_classifier_weight`` and whether it inverted (False: the
    caller passed the latents)."""
    if not inverted:
        return (
            "; invert with `cfx.invert(generator, x, classifier=classifier)` and pass those "
            "latents, or let the explainer invert with `inversion_classifier_weight=0.01`"
        )
    if weight > 0:
        return f"; a larger `inversion_classifier_weight` (now {weight:g}) keeps more of it"
    return (
        "; `inversion_classifier_weight=0.01` (CLI: `--inversion-classifier-weight 0.01`) "
        "makes the inversion keep the source's decision"
    )


def notify_starts(
    explainer: object, first_in_target: Tensor, x: Tensor, target: Tensor, *, inverted: bool
) -> None:
    """:func:`start_notice` for the paths whose frame 0 is in the target
    (``first_in_target`` ``(B,)``), with the explainer's classifier's verdicts on the sources
    ``x`` and the advice that fits its ``inversion_classifier_weight`` (``inverted``: the
    explainer inverted the sources itself). Nothing is computed when no path starts there, or
    when the notice is held (:func:`without_path_notices`, or a caller that gives it once for
    a whole input): the sources' verdicts cost a classifier pass."""
    if not bool(first_in_target.any()) or is_held(log, "cfx_starts_in_target"):
        return
    classifier = getattr(explainer, "classifier", None)
    sources = None
    if callable(classifier):
        with frozen(classifier):
            sources = sources_in_target(classifier, x, target)
    weight = getattr(explainer, "inversion_classifier_weight", 0.0)
    start_notice(first_in_target, sources, remedy=start_remedy(weight, inverted))


def sources_in_target(classifier: Classifier, x: Tensor, target: Tensor) -> Tensor:
    """``(B,)`` bool: the classifier's most likely class for the source images ``x`` is
    ``target`` (models frozen by the caller)."""
    with torch.no_grad():
        logits = in_chunks(lambda f: class_logits(classifier, f, name="classifier"), x)
    return logits.argmax(1) == target
