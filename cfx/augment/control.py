"""The control arm of an augmentation run: the same fine-tuning without the labels.

:meth:`~cfx.augment.ActiveLearner.augment` scores its fine-tuned copy against the classifier it
started from, so its gain mixes two things: what the labelled frames taught and what more
fine-tuning on the training set does by itself (on brain-cnn-tagged the second is most of it:
``python benchmarks/augment.py``, arm ``no_new_labels``). :func:`finetune_without_labels`
runs the second alone for one run: its rounds of fine-tuning (the learner's settings, seed
``seed + k`` in round ``k``, each round from the last), each on a set of the run's size in that
round, with training images drawn again (seeded) in place of the labelled frames, so that
both take the same optimiser steps and learning-rate schedule and differ only in the labels.
The difference between the two runs' scores is the labels' share.

Rounds are kept in ``out`` (``round_KK/model.safetensors`` once finished, the fine-tune's
resume point in ``round_KK/train`` while it runs), so an interrupted control resumes; a folder
holding another control (other settings, run, training set, classifier or seed) is refused.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import Tensor, nn

from cfx.augment._common import check_eval_fn, once_per_run, record_size, scored
from cfx.augment.active import DEFAULT_FINETUNE, ActiveLearner
from cfx.augment.claim import settings_adopted
from cfx.augment.result import AugmentResult
from cfx.errors import ForeignRunError, check_flag, check_seed
from cfx.files import path_argument, save_tensors_atomic, write_atomic
from cfx.images import check_images
from cfx.reprs import short_repr
from cfx.run_key import changes, module_sha256, same_but, tensors_sha256
from cfx.training.classifier import ClassifierTrainingConfig, train_classifier
from cfx.trajectory.identity import module_settings

log = logging.getLogger(__name__)
KEY_FILE = "key.json"
_KEY_NAMES = {
    "frames_per_round": "the run's labelled frames per round",
    "train_sha256": "the training images or labels",
    "classifier_sha256": "the classifier's weights",
    "classifier_settings": "the classifier's modules or their settings (e.g. TwoLogits' outputs)",
}


def _finished(done: Path) -> dict[str, Tensor] | None:
    """A finished round's weights, or None when the round is still to do: not finished, or
    its file cannot be read (outside damage: it is written whole), which is logged and the
    round fine-tuned again, as an augmentation round is (a damaged file stopped the control
    with safetensors' traceback)."""
    if not done.is_file():
        return None
    try:
        return load_file(str(done))
    except Exception as err:  # any damage: safetensors' or the file system's
        log.warning("%s cannot be read (%s); fine-tuning the round again", done, err)
        return None


@dataclass(frozen=True)
class ControlResult:
    """The classifier fine-tuned without new labels, and its scores after each round."""

    __repr__ = short_repr

    model: nn.Module  # a fine-tuned copy; the learner's classifier is unchanged
    metrics: tuple[dict[str, float], ...]  # eval_fn(model) after each round ({} without it)


def finetune_without_labels(
    learner: ActiveLearner,
    result: AugmentResult,
    train_images: Tensor,
    train_labels: Tensor,
    *,
    out: str | Path,
    seed: int | None = None,
    eval_fn: Callable[[nn.Module], dict[str, float]] | None = None,
    show_progress: bool = False,
) -> ControlResult:
    """Fine-tune a copy of ``learner.classifier`` as ``learner.augment`` did for ``result``,
    without its labels.

    Args:
        learner: the :class:`~cfx.augment.ActiveLearner` of the run (its classifier,
            ``finetune`` settings and ``repeat_new``; ``reset_parameters`` is forced False).
        result: what ``learner.augment`` returned: its rounds (as many as it ran; none when
            it stopped before the first) and how many frames each trained on.
        train_images, train_labels: the training set given to ``augment`` (other images or
            labels than ``result`` records are refused: fine-tuned on another set, the
            control would not be the run's).
        out: this control's folder (e.g. ``<augment's out>/control``); reused to resume.
        seed: round ``k`` fine-tunes with ``seed + k`` and draws the training images in place
            of the labelled frames with it; default ``augment``'s (``result.seed``; 0 for a
            result built by hand). Another seed gives an equally fair control, e.g. to see how
            much controls differ.
        eval_fn: scores the model after each round; finished rounds read back are scored
            again, as ``augment`` does.
        show_progress: tqdm bars of the fine-tunes.
    """
    check_flag("show_progress", show_progress)
    # swapped or missing, they failed with "'AugmentResult' object has no attribute '_check'"
    if not isinstance(learner, ActiveLearner):
        raise TypeError(
            f"`learner` must be the run's ActiveLearner, got {type(learner).__name__}"
            + (" (learner and result swapped?)" if isinstance(learner, AugmentResult) else "")
        )
    if not isinstance(result, AugmentResult):
        raise TypeError(
            "`result` must be the AugmentResult that learner.augment returned, got "
            f"{type(result).__name__}"
        )
    learner._check()
    if seed is None:  # augment's: seed=0 against a run at seed 3 drew other training images
        seed = 0 if result.seed is None else result.seed
    # an int before the key is written: a numpy seed failed in torch after writing "0"
    seed = int(check_seed("seed", seed, optional=False))  # type: ignore[arg-type]
    check_eval_fn(eval_fn)
    train_images = check_images(train_images, "train_images")
    # as augment checks its own, before the key is written: a refused call left a key that
    # refused the corrected one as "another control run"
    learner._check_train_set(train_images, train_labels)
    train_sha256 = tensors_sha256(train_images, train_labels)  # the key's, as given
    given = tensors_sha256(train_images.float(), train_labels.long())  # the values
    if result.train_sha256 is not None and given != result.train_sha256:
        # a test split or a subset passed by mistake gave a control of another fine-tuning,
        # compared with the run's as if it were its own
        raise ValueError(
            "`train_images`/`train_labels` must be the training set `result`'s augment run "
            f"was given ({train_images.shape[0]} images given, sha256 "
            f"{given[:12]}...; the run's {result.train_sha256[:12]}...)"
        )
    # per round, the frames augment trained on so far, each repeated repeat_new times
    trained, total = [], 0
    for r in result.rounds:
        total += r.labelled - r.unsure  # "can't tell" answers are not trained on
        trained.append(total * learner.repeat_new)
    cfg = replace(learner.finetune or DEFAULT_FINETUNE, reset_parameters=False)
    folder = path_argument(out, "out", "a folder path (str or Path)")
    _claim(folder, cfg, seed, trained, train_sha256, learner.classifier)
    model = copy.deepcopy(learner.classifier)  # the user's model is never touched
    for param in model.parameters():  # zoo models load frozen; the copy is trained
        param.requires_grad_(True)
    labels = train_labels.long()
    n = train_images.shape[0]
    scores: list[dict[str, float]] = []
    tuned = 0  # fine-tunes run by this call
    for k, extra in enumerate(trained):
        done = folder / f"round_{k:02d}" / "model.safetensors"
        state = _finished(done)
        if state is not None:  # finished earlier: reload instead of redoing
            model.load_state_dict(state)
        else:
            # training images in place of the labelled frames: the run's set size, its steps
            drawn = torch.randint(n, (extra,), generator=torch.Generator().manual_seed(seed + k))
            with once_per_run(tuned):  # an imbalance notice once, not every round
                model, _ = train_classifier(
                    model,
                    torch.cat([train_images, train_images[drawn]]),
                    torch.cat([labels, labels[drawn]]),
                    done.parent / "train",
                    replace(cfg, seed=seed + k),
                    show_progress=show_progress,
                )
            tuned += 1
            state = {name: v.detach().contiguous() for name, v in model.state_dict().items()}
            save_tensors_atomic(state, done)
            (done.parent / "train" / "checkpoint.safetensors").unlink(missing_ok=True)
        model.eval()
        scores.append(scored(eval_fn, model) if eval_fn is not None else {})
    record_size(model, tuple(train_images.shape[-2:]))
    return ControlResult(model=model, metrics=tuple(scores))


def _goes_on(earlier: dict, key: dict) -> bool:
    """Whether ``key`` is the control ``earlier`` describes for a run that went on with more
    rounds: every setting the same and the earlier rounds' set sizes a prefix of the new."""
    if not same_but(earlier, key, {"frames_per_round"}):
        return False
    before, now = earlier.get("frames_per_round"), key["frames_per_round"]
    return isinstance(before, list) and now[: len(before)] == before


def _claim(
    folder: Path,
    cfg: ClassifierTrainingConfig,
    seed: int,
    trained: list[int],
    train_sha256: str,
    classifier: nn.Module,
) -> None:
    """Make ``folder`` this control's: refuse one whose rounds another control computed."""
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"`out` must be a folder (created if missing), got the file {folder}")
    key = {
        "finetune": asdict(cfg),
        "seed": seed,
        "frames_per_round": trained,  # the run's: its set size in each round
        "train_sha256": train_sha256,
        "classifier_sha256": module_sha256(classifier),
        "classifier_settings": module_settings(classifier),
    }
    key = json.loads(json.dumps(key, default=str))  # as read back: lists, strings
    stored = folder / KEY_FILE
    if stored.is_file():
        try:
            earlier = json.loads(stored.read_text())
        except ValueError:
            earlier = None
        if isinstance(earlier, dict) and "pool_sha256" in earlier:  # augment's own key
            # not a ForeignRunError: the demo starts a foreign control afresh by deleting it
            raise ValueError(
                f"`out` {folder} is the augment run's folder, not a control's; give the "
                f"control a folder of its own, e.g. {folder / 'control'}"
            )
        if isinstance(earlier, dict):
            earlier = settings_adopted(earlier, key)
        if isinstance(earlier, dict) and _goes_on(earlier, key):
            earlier = key  # the run went on with more rounds: its first rounds are these
        if earlier != key:
            why = (
                changes(earlier, key, _KEY_NAMES)
                if isinstance(earlier, dict)
                else f"its {KEY_FILE} cannot be read"
            )
            raise ForeignRunError(
                f"`out` {folder} holds another control run ({why}); pass that run's "
                "arguments, or another folder"
            )
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(key, indent=1) + "\n"
    if not stored.is_file() or stored.read_text() != text:
        write_atomic(stored, text)
