"""Active learning from boundary-crossing paths: label near-boundary images, fine-tune, repeat.

Each round (the method draft of cfx, seed 003, and uncertainty sampling as Lewis & Gale
introduced it and Settles' survey describes it):

1. **Starting points**: the unlabelled pool images where the current classifier is least sure
   (smallest ``|p - 1/2|``; ``selection="random"`` for a control), never the same image twice.
2. **Paths**: each start is walked across the classifier's boundary into the other class with
   Option 1 (:class:`~cfx.trajectory.GradientAscent`); frames are resampled at probability
   levels ``t / T``. A start whose reconstruction the classifier already puts in the other
   class gives no frames on both sides of the boundary: it is skipped for the next one.
3. **Near-boundary frames**: each path's frames closest to ``frame_levels`` (default 0.4 and
   0.6 in the target class's probability, each taken on its side of 0.5) go to the
   labeller. A classifier that learned a shortcut crosses its boundary by changing the
   shortcut (a scanner marker), so these frames are exactly the counter-examples it lacks:
   the lesion unchanged, the marker flipped.
4. **Fine-tune** a copy of the classifier on its training set plus every labelled frame so far
   (repeated ``repeat_new`` times so a few hundred images weigh against thousands).

The loop never spends more than ``budget`` labels (split evenly over ``rounds``). Every round
is saved under ``out/round_KK/`` (labelled frames, the fine-tuned weights, the labelling
task), so an interrupted run, or a run waiting for a person's labels
(:class:`~cfx.errors.LabelsPending`), continues where it stopped when called again
with the same arguments. ``out/key.json`` records what decides the rounds (settings, seed, a
digest of the pool, the training set and each model's weights, who labels): a folder holding
rounds of another run is an error that names what changed, never resumed and never deleted
(its labels may be a person's work).
"""

from __future__ import annotations

import copy
import inspect
import json
import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, is_dataclass, replace
from numbers import Real
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors.torch import load_file
from torch import Tensor, nn

from cfx.augment.labellers import Labeller, OracleLabeller
from cfx.calls import call_named, frozen, not_whole
from cfx.errors import ForeignRunError, check, check_int, check_seed, counted
from cfx.files import save_tensors_atomic, write_atomic
from cfx.images import check_images
from cfx.inversion import generator_probe, unit_range_notice
from cfx.label.store import UNSURE
from cfx.progress import tqdm
from cfx.reprs import settings_repr, short_repr
from cfx.run_key import changes, module_sha256, tensors_sha256
from cfx.training.classifier import ClassifierTrainingConfig, predict, train_classifier
from cfx.trajectory import GradientAscent
from cfx.trajectory.notices import notices_held
from cfx.types import Generator
from cfx.zoo.pretrained import sha256

log = logging.getLogger(__name__)
KEY_FILE = "key.json"
"""What a run folder's rounds were computed from; resuming needs the same."""

DEFAULT_FINETUNE = ClassifierTrainingConfig(epochs=2, lr=5e-4)
"""Each round's fine-tuning when ``finetune`` is not given: 2 epochs at a learning rate of
5e-4, a quarter of training from scratch's (``ClassifierTrainingConfig()``'s 2e-3). To change
one setting keep the others: ``replace(DEFAULT_FINETUNE, epochs=1)``."""
_KEY_NAMES = {
    "pool_sha256": "the pool images",
    "train_sha256": "the training images or labels",
    "classifier_sha256": "the classifier's weights",
    "generator_sha256": "the generator's weights",
}


@dataclass(frozen=True)
class AugmentRound:
    """What one round did: labels spent and what the fine-tuned model scored."""

    __repr__ = short_repr  # shapes and counts, not every field in full

    index: int
    starts: Tensor  # (S,) pool indices used as starting points
    labelled: int  # labels spent in this round (unsure answers included)
    label_counts: tuple[int, ...]  # labels per class
    disagreement: float  # of the frames labelled with a class, the share the classifier got
    # wrong before this round; NaN when none got one
    metrics: dict[str, float]  # eval_fn(model) after fine-tuning ({} without eval_fn)
    unsure: int = 0  # frames the labeller could not call (label -1): not trained on


@dataclass(frozen=True)
class AugmentResult:
    """The fine-tuned model, every labelled image, and the per-round history."""

    __repr__ = short_repr  # shapes and counts, not every field in full

    model: nn.Module  # a fine-tuned copy; the user's classifier is unchanged
    images: Tensor  # (N, C, H, W) in [-1, 1], all labelled frames
    labels: Tensor  # (N,) int64; -1 (cfx.label.UNSURE) where the labeller could not call one
    rounds: tuple[AugmentRound, ...]

    @property
    def labels_used(self) -> int:
        """Labels spent over all rounds: the number of labelled images ``N``."""
        return int(self.labels.shape[0])


class ActiveLearner:
    """Augment a classifier's training data with labelled near-boundary frames.

    Each round picks the pool images the classifier is least sure of, walks them across its
    boundary (Option 1), has the frames near the boundary labelled, and fine-tunes a copy of
    the classifier on its training set plus every labelled frame so far; rounds are saved
    under ``out/`` and resumed (see the module docstring).

    Reference: the starts are chosen by uncertainty sampling (Lewis & Gale, "A sequential
    algorithm for training text classifiers", SIGIR 1994; surveyed in Settles, "Active
    learning literature survey", Computer Sciences Technical Report 1648, University of
    Wisconsin-Madison, 2009).

    Args:
        generator: an ``Invertible`` generator (``encode``/``decode``, images in [-1, 1]).
        classifier: images in [-1, 1] -> logits ``(B, 2)``; copied, never modified.
        labeller: a :class:`~cfx.augment.labellers.Labeller` (oracle, or a person via a task).
        budget: total labels, never exceeded.
        rounds: rounds of select -> label -> fine-tune (the budget is split evenly).
        frame_levels: probability levels (in ``(0, 1)``) whose frames are labelled per path
            (the walk stops past the highest: at 0.95, or halfway from it to 1).
        steps: frames per path ``T``.
        selection: ``"margin"`` (least certain pool images first) or ``"random"``.
        repeat_new: how often each labelled frame appears in the fine-tuning set.
        finetune: training settings of each round (default :data:`DEFAULT_FINETUNE`, 2 epochs
            at lr 5e-4; a ``ClassifierTrainingConfig`` of your own starts from training's
            defaults, lr 2e-3, so change one setting with
            ``replace(DEFAULT_FINETUNE, epochs=1)``). ``reset_parameters`` is forced False,
            ``seed`` is replaced by :meth:`augment`'s ``seed`` plus the round's index, and
            every parameter of the copy is trained, layers frozen in ``classifier``
            (``requires_grad`` False) included.
        inversion_steps: latent optimisation steps when inverting the starts (0 = encoder).
        batch_size: paths per batch.
        show_progress: tqdm bars.
    """

    __repr__ = settings_repr  # the arguments given, defaults left out

    def __init__(
        self,
        generator: Generator,
        classifier: nn.Module,
        labeller: Labeller,
        *,
        budget: int = 200,
        rounds: int = 2,
        frame_levels: tuple[float, ...] = (0.4, 0.6),
        steps: int = 10,
        selection: Literal["margin", "random"] = "margin",
        repeat_new: int = 4,
        finetune: ClassifierTrainingConfig | None = None,
        inversion_steps: int = 0,
        batch_size: int = 64,
        show_progress: bool = False,
    ) -> None:
        self.generator = generator
        self.classifier = classifier
        self.labeller = labeller
        self.budget = budget
        self.rounds = rounds
        self.frame_levels = frame_levels
        self.steps = steps
        self.selection = selection
        self.repeat_new = repeat_new
        self.finetune = finetune
        self.inversion_steps = inversion_steps
        self.batch_size = batch_size
        self.show_progress = show_progress

    def _check(self) -> None:
        for name in ("budget", "rounds", "steps", "repeat_new", "batch_size"):
            check_int(name, getattr(self, name))
        check(
            self.rounds <= self.budget,
            ValueError,
            f"`rounds` must not exceed `budget` ({self.budget}), got {self.rounds}",
        )
        check_int("inversion_steps", self.inversion_steps, minimum=0)  # before `out` is claimed
        levels = self.frame_levels
        check(  # "0.4" failed as "'<' not supported between 'float' and 'str'"
            (isinstance(levels, Sequence) or getattr(levels, "ndim", None) == 1)  # numpy too
            and not isinstance(levels, str)
            and all(isinstance(lv, Real) and not isinstance(lv, bool) for lv in levels),
            TypeError,
            f"`frame_levels` must be a sequence of numbers in (0, 1), got {levels!r}",
        )
        check(
            len(self.frame_levels) > 0
            and all(0.0 < lv < 1.0 for lv in self.frame_levels)
            and len(set(self.frame_levels)) == len(self.frame_levels),
            ValueError,
            f"`frame_levels` must be distinct levels in (0, 1), got {self.frame_levels!r}",
        )
        check(
            self.selection in ("margin", "random"),
            ValueError,
            f"`selection` must be 'margin' or 'random', got {self.selection!r}",
        )
        check(
            isinstance(self.classifier, nn.Module),
            TypeError,
            f"`classifier` must be an nn.Module (it is fine-tuned), "
            f"got {type(self.classifier).__name__}",
        )
        check(
            self.finetune is None or isinstance(self.finetune, ClassifierTrainingConfig),
            TypeError,
            "`finetune` must be None or a ClassifierTrainingConfig (e.g. "
            f"replace(DEFAULT_FINETUNE, epochs=1)), got {type(self.finetune).__name__}",
        )
        check(
            not isinstance(self.labeller, type),
            TypeError,
            f"`labeller` must be a labeller object, got the class {self.labeller!r}: make one, "
            "e.g. OracleLabeller(model)",
        )
        check(
            callable(getattr(self.labeller, "label", None)),
            TypeError,
            "`labeller` must have a `label(images)` method (cfx.augment.OracleLabeller(model) "
            f"wraps a classifier), got {type(self.labeller).__name__}",
        )
        try:  # the walk takes minutes before the labeller is first asked
            inspect.signature(self.labeller.label).bind(
                None, context=None, suggested=None, workdir=None
            )
        except TypeError:
            raise TypeError(
                f"`labeller`'s label method must take (images, *, context=None, "
                "suggested=None, workdir=None), as cfx.augment.Labeller says; got "
                f"label{inspect.signature(self.labeller.label)}"
            ) from None
        except ValueError:  # a builtin without a signature: trusted
            pass

    def _check_train_set(self, train_images: Tensor, train_labels: Tensor) -> int:
        """The classifier's number of outputs (two), once ``train_labels`` are known to be
        its classes: before any frame is rendered or a person asked, since a bad label would
        stop the first fine-tune after the labelling, with the run's key naming these labels
        (:func:`~cfx.augment.finetune_without_labels` checks its own the same way)."""
        check(
            isinstance(train_labels, Tensor),
            TypeError,
            f"`train_labels` must be a torch tensor of class indices (torch.as_tensor converts "
            f"a numpy array), got {type(train_labels).__name__}",
        )
        check(
            train_labels.shape == (train_images.shape[0],),
            ValueError,
            f"`train_labels` must have shape ({train_images.shape[0]},), "
            f"got {tuple(train_labels.shape)}",
        )
        check(
            train_labels.dtype != torch.bool and not train_labels.is_complex(),
            TypeError,
            f"`train_labels` must be class indices (integers), got dtype {train_labels.dtype}",
        )
        one = train_images[:1]
        outputs = call_named(
            lambda: predict(self.classifier, one),
            {"classifier": self.classifier},
            one,
            f"`classifier` failed on `train_images` shaped {tuple(one.shape[1:])} per image",
            name="train_images",
        ).shape[1]
        check(
            outputs == 2,
            ValueError,
            f"`classifier` must tell two classes apart (logits (B, 2)): the paths cross a "
            f"two-class boundary, got {outputs} outputs",
        )
        check(
            not bool(not_whole(train_labels).any())  # whole numbers (floats too)
            and bool(((train_labels >= 0) & (train_labels < outputs)).all()),
            ValueError,
            f"`train_labels` must be classes of the classifier, whole numbers 0..{outputs - 1}, "
            f"got {train_labels.min().item()}..{train_labels.max().item()}",
        )
        return int(outputs)

    def _check_labeller(self, outputs: int, probe: Tensor) -> None:
        """The labeller's classes are the classifier's, before any frame is rendered or a
        person labels one (a third class stopped the first fine-tune, after the labelling,
        as "`targets` must be class indices below the model's 2 outputs")."""
        names = getattr(self.labeller, "class_names", None)
        if isinstance(names, tuple | list) and len(names) != outputs:
            raise ValueError(
                f"`labeller` offers {len(names)} classes ({', '.join(map(str, names))}) and "
                f"the classifier tells {outputs} apart: give it class_names for the "
                f"classifier's {outputs} classes"
            )
        oracle = getattr(self.labeller, "classifier", None)
        # cfx's oracle labels by its classifier's argmax (a subclass labelling its own way
        # is left to itself)
        asks_oracle = type(self.labeller).label is OracleLabeller.label
        if isinstance(self.labeller, OracleLabeller) and asks_oracle and oracle is not None:
            answers = call_named(
                lambda: predict(oracle, probe),
                {"labeller.classifier": oracle},
                probe,
                f"the labeller's oracle failed on a pool image shaped {tuple(probe.shape[1:])}",
                name="pool",
            ).shape[1]
            if answers != outputs:
                raise ValueError(
                    f"`labeller`'s oracle tells {answers} classes apart and the classifier "
                    f"{outputs}: the oracle must label the classifier's classes"
                )
            if module_sha256(oracle) == module_sha256(self.classifier):
                log.warning(
                    "`labeller`'s oracle is the classifier being fine-tuned: its labels are the "
                    "classifier's own predictions, so the rounds teach it nothing new (their "
                    "disagreement is 0); label with an independent model or a person"
                )

    def pool_needed(self) -> int:
        """The fewest pool images :meth:`augment` takes: each path gives one labelled frame
        per ``frame_levels`` entry, and no pool image starts two paths."""
        per_round = self._per_round()
        return -(-max(per_round) // len(self.frame_levels)) * self.rounds

    def _per_round(self) -> list[int]:
        """Labels per round: ``budget`` split evenly, the remainder in the last round."""
        per_round = [self.budget // self.rounds] * self.rounds
        per_round[-1] += self.budget - sum(per_round)
        return per_round

    def augment(
        self,
        pool: Tensor,
        train_images: Tensor,
        train_labels: Tensor,
        *,
        out: str | Path,
        seed: int = 0,
        eval_fn: Callable[[nn.Module], dict[str, float]] | None = None,
    ) -> AugmentResult:
        """Run (or resume) the loop.

        Args:
            pool: unlabelled images ``(P, C, H, W)`` in [-1, 1], the candidate starts.
            train_images, train_labels: the classifier's own training set ``(N, C, H, W)``,
                ``(N,)``; kept in every fine-tuning round.
            out: run folder (one ``round_KK`` subfolder per round; reused to resume).
            seed: seeds start selection (``"random"``) and fine-tuning, per round (round
                ``k`` fine-tunes with ``seed + k``; ``finetune.seed`` is not used).
            eval_fn: scores a model after each round (e.g. worst-group accuracy); rounds read
                back from ``out`` are scored again, so a resumed run reports one test set.
        """
        self._check()
        check_seed("seed", seed, optional=False)
        check_eval_fn(eval_fn)
        check(
            isinstance(out, str | os.PathLike),
            TypeError,
            f"`out` must be a folder path (str or Path), got {type(out).__name__}",
        )
        pool = check_images(pool, "pool")
        train_images = check_images(train_images, "train_images")
        check(
            pool.shape[1:] == train_images.shape[1:],
            ValueError,
            f"`pool` and `train_images` must hold images of one shape (C, H, W), got "
            f"{tuple(pool.shape[1:])} and {tuple(train_images.shape[1:])}",
        )
        outputs = self._check_train_set(train_images, train_labels)
        self._check_labeller(outputs, pool[:1])
        # the pool is what the paths start from; its notice about the generator's range
        # (tagged cfx_models) is left to the first path, which gives the models' notices once
        with frozen(self.generator), torch.no_grad(), notices_held("cfx_models"):
            generator_probe(self.generator, pool, name="pool")  # its shape, not a probe's
        unit_range_notice(pool, "pool")  # once for the pool, not once per chunk of a round
        # the fine-tunes train on these beside the [-1, 1] frames: [0, 1] ones would teach
        # the classifier two brightness scales
        unit_range_notice(train_images, "training")
        per_round = self._per_round()
        need = self.pool_needed()
        check(
            pool.shape[0] >= need,
            ValueError,
            f"`pool` must hold at least {need} images for this budget, got {pool.shape[0]}",
        )
        out = Path(out)
        cfg = replace(self.finetune or DEFAULT_FINETUNE, reset_parameters=False)
        if cfg.seed not in (ClassifierTrainingConfig().seed, seed):  # set, and then unused
            log.warning(
                "`finetune.seed` (%d) is not used: round k fine-tunes with augment's `seed` "
                "+ k (%d + k); pass that seed to augment instead",
                cfg.seed,
                seed,
            )
        self._claim(out, pool, train_images, train_labels, cfg, seed)
        model = copy.deepcopy(self.classifier)  # the user's model is never touched
        for param in model.parameters():  # zoo models load frozen; the copy is trained
            param.requires_grad_(True)
        used = torch.zeros(pool.shape[0], dtype=torch.bool)
        new_x: list[Tensor] = []
        new_y: list[Tensor] = []
        history: list[AugmentRound] = []
        noticed = False  # have the notices about the models (tagged cfx_models) been given?
        relabelled = False  # has a finished round's changed label been warned about?
        run_key = sha256(out / KEY_FILE)  # what made a saved walk: this run, and the model
        for k, quota in enumerate(per_round):
            folder = out / f"round_{k:02d}"
            done = folder / "round.safetensors"
            finished = _read_round(folder)
            if finished is not None:  # finished earlier: reload instead of redoing
                # a kill between saving the round and tidying up left these behind
                (folder / CANDIDATES_FILE).unlink(missing_ok=True)
                saved, meta = finished
                model.load_state_dict(
                    {n[len("model.") :]: v for n, v in saved.items() if n.startswith("model.")}
                )
                starts, x_k, y_k = saved["starts"], saved["images"], saved["labels"]
                if not relabelled:  # the first changed round's advice is the one to follow
                    relabelled = _warn_relabelled(folder / "task", y_k)
                used[starts] = True
                new_x.append(x_k)
                new_y.append(y_k)
                record = _round_from_json(meta, starts)
                if eval_fn is not None:  # scored again: the rerun's eval_fn may differ
                    model.eval()
                    record = replace(record, metrics=scored(eval_fn, model))
                history.append(record)
                continue
            # the walk is this run's (key.json) from this model: another round k-1 (redone
            # after its file was lost) walks again
            made_by = {"key": run_key, "model": str(module_sha256(model))}
            walked = _read_candidates(folder, made_by, len(self.frame_levels))
            if walked is None:
                walked = self._candidates(
                    model, pool, used, quota, seed + k, models_noticed=noticed, round_index=k
                )
                noticed = True
                if walked[1].shape[0]:  # kept until the round is done: a person may be asked
                    folder.mkdir(parents=True, exist_ok=True)
                    _save_candidates(walked, folder, made_by, len(self.frame_levels))
            starts, frames, context, suggested = walked
            if frames.shape[0] == 0:  # no labeller is asked about nothing
                log.warning(
                    "round %d: no pool image left gives a path that crosses the boundary from "
                    "its near side; the run stops after %s",
                    k,
                    counted(k, "round"),
                )
                break
            y_k = _class_indices(
                self.labeller.label(
                    frames, context=context, suggested=suggested, workdir=folder / "task"
                ),
                frames.shape[0],
            )
            check(  # the classifier's two classes (checked before any round)
                bool((((y_k >= 0) & (y_k < 2)) | (y_k == UNSURE)).all()),
                ValueError,
                f"`labeller` must return class indices 0 or 1, or {UNSURE} for an image it "
                f"cannot call, got {sorted(set(y_k.tolist()))}",
            )
            used[starts] = True
            new_x.append(frames)
            new_y.append(y_k)
            # frames the labeller could not call are kept with the round, not trained on
            sure = [(x[y != UNSURE], y[y != UNSURE]) for x, y in zip(new_x, new_y, strict=True)]
            at, at_y = train_images.device, train_labels.device  # new frames are on the CPU
            xs = torch.cat(
                [train_images, *[x.repeat(self.repeat_new, 1, 1, 1).to(at) for x, _ in sure]]
            )
            ys = torch.cat(
                [train_labels.long(), *[y.repeat(self.repeat_new).to(at_y) for _, y in sure]]
            )
            _restart_if_relabelled(folder / "train", y_k, k)
            model, _ = train_classifier(
                model,
                xs,
                ys,
                folder / "train",
                replace(cfg, seed=seed + k),
                show_progress=self.show_progress,
            )
            model.eval()
            metrics = scored(eval_fn, model) if eval_fn is not None else {}
            called = y_k != UNSURE
            record = AugmentRound(
                index=k,
                starts=starts,
                labelled=int(y_k.shape[0]),
                label_counts=tuple(int((y_k == c).sum()) for c in range(2)),  # 0/1 checked
                # undefined (NaN; null in summary.json) when no frame got a class
                disagreement=float((suggested[called] != y_k[called]).float().mean())
                if bool(called.any())
                else float("nan"),
                metrics=metrics,
                unsure=int((~called).sum()),
            )
            tensors = {"starts": starts, "images": frames.contiguous(), "labels": y_k}
            tensors |= {
                f"model.{n}": v.detach().contiguous() for n, v in model.state_dict().items()
            }
            # round.json first: round.safetensors marks the round done, and each file is on
            # disk whole or not at all (a kill between them leaves the round to redo)
            write_atomic(folder / "round.json", json.dumps(_round_to_json(record), indent=1))
            save_tensors_atomic(tensors, done)
            # the fine-tune's resume point (model and optimiser, ~3x the model) and the walk's
            # frames are spent now that round.safetensors holds the round's weights and frames
            (folder / "train" / "checkpoint.safetensors").unlink(missing_ok=True)
            (folder / CANDIDATES_FILE).unlink(missing_ok=True)
            history.append(record)
            log.info(
                "round %d: %d labels, disagreement %.2f", k, record.labelled, record.disagreement
            )
        images = torch.cat(new_x) if new_x else pool[:0].cpu()  # as every round's
        labels = torch.cat(new_y) if new_y else torch.zeros(0, dtype=torch.long)
        _record_size(model, tuple(pool.shape[-2:]))
        return AugmentResult(model=model, images=images, labels=labels, rounds=tuple(history))

    def _claim(
        self,
        out: Path,
        pool: Tensor,
        train_images: Tensor,
        train_labels: Tensor,
        cfg: ClassifierTrainingConfig,
        seed: int,
    ) -> None:
        """Make ``out`` this run's folder: resume its rounds if the same key computed them,
        refuse it (naming what changed) if another run's rounds are there."""
        if out.exists() and not out.is_dir():
            raise ValueError(f"`out` must be a folder (created if missing), got the file {out}")
        key = {
            "budget": self.budget,
            "rounds": self.rounds,
            "frame_levels": list(self.frame_levels),
            "steps": self.steps,
            "selection": self.selection,
            "repeat_new": self.repeat_new,
            "finetune": asdict(cfg),
            "inversion_steps": self.inversion_steps,
            "batch_size": self.batch_size,
            "seed": seed,
            "pool_sha256": tensors_sha256(pool),
            "train_sha256": tensors_sha256(train_images, train_labels),
            "classifier_sha256": module_sha256(self.classifier),
            "generator_sha256": module_sha256(self.generator),
            "labeller": _labeller_key(self.labeller),
        }
        key = json.loads(json.dumps(key, default=str))  # as read back: lists, strings
        stored = out / KEY_FILE
        folders = sorted(out.glob("round_*")) if out.is_dir() else []
        rounds = len(folders)
        # without a key: rounds an older cfx worked on, unless the folders hold only
        # labelling tasks (copied in, as the relabel warning advises: a person's labels)
        worked = any(
            (r / name).exists()
            for r in folders
            for name in ("round.safetensors", "train", CANDIDATES_FILE)
        )
        if rounds and not stored.exists() and not worked:
            rounds = 0  # a fresh run, which reads the copied tasks' labels
        other = (  # a folder of something else: its model/ and summary.json were overwritten
            sorted(
                p.name
                for p in out.iterdir()
                if not p.name.startswith((".", "round_")) and p.name != KEY_FILE
            )
            if out.is_dir() and not stored.exists() and not rounds
            else []
        )
        if other:  # not a ForeignRunError: the demo deletes another run's folder on one
            raise FileExistsError(
                f"`out` {out} holds files that are not a cfx augment run's "
                f"({', '.join(other[:5])}{', ...' if len(other) > 5 else ''}), which the run "
                f"would overwrite; expected a new or empty folder, or a run's own (with its "
                f"{KEY_FILE})"
            )
        done = sum((r / "round.safetensors").exists() for r in folders) if rounds else 0
        if rounds and not stored.exists():  # rounds from before run keys: adopt them
            log.warning(
                "%s holds %d round(s) without a %s (an older cfx wrote them); resuming them "
                "as this run's, so pass the same arguments as the run that wrote them",
                out,
                rounds,
                KEY_FILE,
            )
        elif rounds:
            try:
                earlier = json.loads(stored.read_text())
            except (OSError, ValueError):
                earlier = None
            if isinstance(earlier, dict) and "labeller" not in earlier:
                log.warning(
                    "%s: rounds from a cfx that did not record who labels them; resuming them "
                    "as labelled by %s, so pass the same labeller as the run that wrote them",
                    out,
                    (key["labeller"] or {}).get("kind", "this labeller"),
                )
                earlier = {**earlier, "labeller": key["labeller"]}
            if earlier != key:
                if isinstance(earlier, dict):
                    before, now = earlier.get("labeller"), key["labeller"]
                    if (
                        isinstance(before, dict)
                        and isinstance(now, dict)
                        and before.get("kind") != now.get("kind")
                    ):  # another kind of labeller: its own settings follow from that
                        earlier = {**earlier, "labeller": {"kind": before.get("kind")}}
                        now = {"kind": now.get("kind")}
                    why = changes(earlier, {**key, "labeller": now}, _KEY_NAMES)
                else:
                    why = f"its {KEY_FILE} cannot be read"
                raise ForeignRunError(
                    f"`out` {out} holds {rounds} round(s) of another run ({done} "
                    f"finished; {why}); pass the "
                    "arguments of the run that wrote them, or another folder (labels a person "
                    "gave stay in its round_*/task folders)"
                )
        if rounds and done >= self.rounds:  # the same run's rounds: say so, as training does
            log.warning("the run in %s already finished (%s)", out, counted(done, "round"))
        elif rounds:
            log.warning("resuming the run in %s: %d of %d rounds done", out, done, self.rounds)
        out.mkdir(parents=True, exist_ok=True)
        text = json.dumps(key, indent=1) + "\n"
        if not stored.is_file() or stored.read_text() != text:  # rewritten only when new
            write_atomic(stored, text)

    def _candidates(
        self,
        model: nn.Module,
        pool: Tensor,
        used: Tensor,
        quota: int,
        seed: int,
        *,
        models_noticed: bool,
        round_index: int,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Starts ``(S,)``, frames ``(Q, C, H, W)``, their paths ``(Q, T+1, C, H, W)`` and the
        current model's predictions on the frames ``(Q,)``, all on the CPU; ``Q`` is
        ``quota``, or fewer when the pool runs out of paths that cross. ``models_noticed``:
        an earlier round gave the notices about the models (the generator is the same, the
        classifier's architecture too), which are then held. With ``show_progress``, a bar
        counts the paths found for round ``round_index`` (the walks took minutes with no
        sign of life but the fine-tune's bars)."""
        n_levels = len(self.frame_levels)
        n_starts = -(-quota // n_levels)
        # bookkeeping (scores, used starts) on the CPU, where predict returns and `used` lives
        p = torch.softmax(predict(model, pool), 1)[:, 1]  # (P,)
        if self.selection == "margin":
            score = (p - 0.5).abs()
        elif self.selection == "random":
            score = torch.rand(p.shape, generator=torch.Generator().manual_seed(seed))
        else:
            raise ValueError(f"`selection` must be 'margin' or 'random', got {self.selection!r}")
        score = torch.where(used, torch.full_like(score, float("inf")), score)
        order = score.argsort()[: int((~used).sum())]  # unused pool images, best first
        explainer = GradientAscent(  # frames are taken at p ~ 0.4 / 0.6: no need to go deep
            self.generator,
            model,
            steps=self.steps,
            # past the highest level asked for: a 0.99 frame was silently one at ~0.95
            margin=max(0.95, min((1 + max(self.frame_levels)) / 2, 0.999)),
            inversion_steps=self.inversion_steps,
        )
        levels = torch.tensor(self.frame_levels, dtype=torch.float64)  # (L,)
        frames, context, suggested, spent = [], [], [], []
        kept = skipped = i = 0
        bar = tqdm(
            total=n_starts,
            desc=f"round {round_index}: paths across the boundary",
            unit="path",
            disable=not self.show_progress,
            leave=False,
        )
        while kept < n_starts and i < len(order):
            # a whole batch at a time (skipped starts are replaced by the next ones); the
            # starts past the paths needed are walked but not spent: later rounds may use them
            chunk = order[i : i + self.batch_size]
            target = (p[chunk] < 0.5).long()  # walk into the other class
            # the least certain slices are chosen on purpose, so their reconstructions often
            # start past the boundary already: that is expected here, not worth a warning
            # the notices about the models (tagged cfx_models) once a run, not once a chunk
            once = i > 0 or models_noticed
            i += len(chunk)
            held: tuple[str, ...] = ("cfx_starts_in_target", "cfx_ends_short", "cfx_unit_range")
            held += ("cfx_models",) if once else ()
            # a batch's walk takes tens of seconds: the bar says what it is doing meanwhile
            bar.set_postfix_str(f"walking starts {i - len(chunk) + 1}-{i} of {len(order)}")
            with notices_held(*held):
                res = explainer.explain(pool[chunk], target)
            probs = res.probs.detach().double().cpu()  # (b, T+1) target probabilities
            # a path gives frames on both sides of the boundary only if it starts below 0.5
            # and ends above it; one whose reconstruction is already in the target class gave
            # near-duplicates on one side (0.76 and 0.78 for "0.4" and "0.6"): the next start
            ok = (probs[:, 0] < 0.5) & (probs[:, -1] > 0.5)
            for b in range(len(chunk)):
                if kept >= n_starts:
                    break
                spent.append(int(chunk[b]))  # labelled or skipped: not started again
                if not bool(ok[b]):
                    skipped += 1
                    continue
                idx = _level_frames(probs[b], levels)  # (L,)
                # on the CPU, as the rounds read back and `suggested` are: pool and models
                # on a GPU mixed devices in the bookkeeping
                path = res.frames[b].detach().cpu()  # (T+1, C, H, W)
                frames.append(path[idx])  # (L, C, H, W)
                context.append(path[None].repeat(n_levels, 1, 1, 1, 1))
                past = probs[b, idx] > 0.5
                t = int(target[b])
                suggested.append(torch.where(past, t, 1 - t).long())
                kept += 1
                bar.update(1)
            bar.set_postfix_str(f"{skipped} start(s) skipped" if skipped else "")
        bar.close()
        if skipped:
            log.info(
                "%d start(s) skipped: the classifier already puts their reconstruction past "
                "the boundary (or the path never crossed it), so they give no frames on both "
                "sides",
                skipped,
            )
        if 0 < kept < n_starts:  # none at all: the round says so
            log.warning(
                "only %d of the %d paths this round needs cross the boundary from its near "
                "side (the pool ran out): the round labels %d frames, not %d",
                kept,
                n_starts,
                kept * n_levels,
                quota,
            )
        starts = torch.tensor(spent, dtype=order.dtype, device=order.device)
        if not frames:
            empty = pool[:0].cpu()
            return starts, empty, empty[:, None], torch.zeros(0, dtype=torch.long)
        x = torch.cat(frames)[:quota]
        ctx = torch.cat(context)[:quota]
        return starts, x, ctx, torch.cat(suggested)[:quota]


CANDIDATES_FILE = "candidates.safetensors"
"""In a round's folder while it waits for labels: the walk's starts, frames, paths and
suggestions, so that a rerun after a person labelled asks about the same frames without
walking again (minutes per round, and frames a GPU's kernels might not give bit for bit)."""


def _save_candidates(
    walked: tuple[Tensor, Tensor, Tensor, Tensor],
    folder: Path,
    made_by: dict[str, str],
    per_path: int,
) -> None:
    """Save a round's walk with what made it (``made_by``: the run key's and the model's
    digests), each path once (the context holds it once per frame level)."""
    starts, frames, context, suggested = walked
    tensors = {
        "starts": starts,
        "frames": frames.contiguous(),
        "paths": context[::per_path].contiguous(),
        "suggested": suggested,
    }
    save_tensors_atomic(tensors, folder / CANDIDATES_FILE, metadata=made_by)


def _read_candidates(
    folder: Path, made_by: dict[str, str], per_path: int
) -> tuple[Tensor, Tensor, Tensor, Tensor] | None:
    """The round's saved walk (:data:`CANDIDATES_FILE`) when ``made_by`` made it; None when
    there is none, it no longer reads or something else made it (then the walk is done
    again)."""
    from safetensors import safe_open

    path = folder / CANDIDATES_FILE
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            if (f.metadata() or {}) != made_by:
                log.info("%s: a walk of another run or model; walked again", path)
                return None
            saved = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118
        frames = saved["frames"]
        context = saved["paths"].repeat_interleave(per_path, 0)[: frames.shape[0]]
        return saved["starts"], frames, context, saved["suggested"]
    except Exception:  # any damage (safetensors' own error included): walk again
        log.warning("%s does not read; the round's paths are walked again", path)
        return None


def _level_frames(probs: Tensor, levels: Tensor) -> list[int]:
    """For one path's target probabilities ``(T+1,)`` (below 0.5 at its start, above at its
    end), the frame closest to each level, taken on the level's side of 0.5: a frame for 0.4
    is one the classifier does not yet put in the target class, one for 0.6 one it does."""
    out = []
    for level in levels.tolist():
        side = probs < 0.5 if level < 0.5 else probs >= 0.5
        gap = torch.where(side, (probs - level).abs(), torch.full_like(probs, float("inf")))
        out.append(int(gap.argmin()))
    return out


def _record_size(model: nn.Module, size: tuple[int, ...]) -> None:
    """The fine-tuned copy's config says it was tuned on images of ``size`` ``(H, W)`` (a
    copy of a 32x32 classifier kept ``image_size`` [32, 32], and every later use warned of a
    size mismatch); a model without a dataclass config with ``image_size`` is left alone."""
    config = getattr(model, "config", None)
    if (
        is_dataclass(config)
        and not isinstance(config, type)
        and getattr(config, "image_size", None) is not None
        and tuple(config.image_size) != size  # type: ignore[attr-defined]
    ):
        tuned: Any = model
        tuned.config = replace(config, image_size=tuple(int(v) for v in size))


LABELS_STAMP = "labels_sha256"
"""In a round's ``train`` folder: the digest of the labels its fine-tune trains on."""


def _restart_if_relabelled(train: Path, labels: Tensor, k: int) -> None:
    """Start round ``k``'s fine-tune afresh when its labels changed since an interrupted
    attempt (a person corrected one with ``cfx label``): that checkpoint belongs to this run
    but to labels no longer given, and resuming refused it as "a different run; use a new
    folder", which would have cost every other round. Records the labels' digest."""
    digest = tensors_sha256(labels)
    stamp = train / LABELS_STAMP
    checkpoint = train / "checkpoint.safetensors"
    if checkpoint.exists() and stamp.is_file() and stamp.read_text().strip() != digest:
        log.warning(
            "round %d's labels changed since its fine-tune was interrupted: fine-tuning it "
            "again from the start of the round",
            k,
        )
        checkpoint.unlink()
    train.mkdir(parents=True, exist_ok=True)
    write_atomic(stamp, digest + "\n")


def _warn_relabelled(task: Path, trained: Tensor) -> bool:
    """A warning naming the items of a finished round's labelling task whose label now
    differs from the one the round trained on (a correction made after the round finished,
    with ``cfx label``, is not used: the round is not redone); True when there were any."""
    if not task.is_dir():
        return False
    from cfx.label.store import read_labels, read_task

    try:
        ids, labels = read_task(task).ids, read_labels(task)
    except (OSError, ValueError):
        return False
    changed = [
        i for i, y in zip(ids, trained.tolist(), strict=False) if i in labels and labels[i] != y
    ]
    if changed:
        log.warning(
            "%s: %s now %s from the labels %s was given (ids %s): a finished round is "
            "not redone; to train on them, copy the task folders of %s into a new output "
            "folder (as OUT/round_KK/task) and run the same command there: those rounds read "
            "every label from them, and the later rounds, whose frames change with the "
            "corrected labels, are labelled again",
            task,
            counted(len(changed), "label"),
            "differs" if len(changed) == 1 else "differ",
            task.parent.name,
            ", ".join(changed[:5]) + (", ..." if len(changed) > 5 else ""),
            "round_00" if task.parent.name == "round_00" else f"round_00 to {task.parent.name}",
        )
    return bool(changed)


def _labeller_key(labeller: object) -> object:
    """Who labels a run's rounds, for its key: the labeller's own ``run_key()`` (cfx's
    labellers: an oracle's weights, or a person), else its type's name."""
    own = getattr(labeller, "run_key", None)
    if callable(own):
        return own()
    kind = type(labeller)
    return {"kind": f"{kind.__module__}.{kind.__qualname__}"}


def _read_round(folder: Path) -> tuple[dict[str, Tensor], dict] | None:
    """A finished round's tensors and its ``round.json``, or None when the round is still to
    do: not finished, or
    its files cannot be read (a kill or a full disk under an older cfx, which wrote them in
    place), which is logged and the round computed again; its labelling task is kept, so a
    person's labels are read again, not asked for twice."""
    done = folder / "round.safetensors"
    if not done.is_file():
        return None
    try:
        meta = json.loads((folder / "round.json").read_text())
        return load_file(str(done)), meta
    except Exception as err:  # any damage: safetensors', JSON's or the file system's
        log.warning("%s cannot be read (%s); computing the round again", folder, err)
        return None


def _round_to_json(r: AugmentRound) -> dict:
    return {
        "index": r.index,
        "labelled": r.labelled,
        "label_counts": list(r.label_counts),
        # NaN (no frame got a class) is no JSON number: null, as summary.json writes it
        "disagreement": None if math.isnan(r.disagreement) else r.disagreement,
        "metrics": {k: None if math.isnan(v) else v for k, v in r.metrics.items()},
        "unsure": r.unsure,
    }


def _round_from_json(meta: dict, starts: Tensor) -> AugmentRound:
    return AugmentRound(
        index=int(meta["index"]),
        starts=starts,
        labelled=int(meta["labelled"]),
        label_counts=tuple(meta["label_counts"]),
        disagreement=math.nan if meta["disagreement"] is None else float(meta["disagreement"]),
        metrics={k: math.nan if v is None else float(v) for k, v in meta["metrics"].items()},
        unsure=int(meta.get("unsure", 0)),  # rounds of an older cfx had none
    )


def check_eval_fn(eval_fn: object) -> None:
    """A ``TypeError`` unless ``eval_fn`` is None or callable."""
    check(
        eval_fn is None or callable(eval_fn),
        TypeError,
        f"`eval_fn` must be None or a function model -> {{name: score}}, got "
        f"{type(eval_fn).__name__}",
    )


def scored(eval_fn: Callable[[nn.Module], Mapping[str, Any]], model: nn.Module) -> dict[str, float]:
    """``eval_fn(model)`` as ``{name: float}``; an error naming ``eval_fn`` when it returns
    anything else (it failed as "'float' object has no attribute 'items'", after the walk and
    the fine-tune)."""
    scores = eval_fn(model)
    wanted = "`eval_fn` must return a dict of metric name -> number (e.g. {'accuracy': 0.9})"
    check(isinstance(scores, Mapping), TypeError, f"{wanted}, got {type(scores).__name__}")
    out = {}
    for name, value in scores.items():
        if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):  # a 0-d tensor/array
            value = value.item()
        number = isinstance(value, Real) and not isinstance(value, bool)
        check(isinstance(name, str) and number, TypeError, f"{wanted}, got {name!r}: {value!r}")
        out[name] = float(value)
    return out


def _class_indices(answer: object, n: int) -> Tensor:
    """A labeller's answer as ``(n,)`` int64 class indices; an error naming the labeller when
    it is not whole numbers, one per image (a probability of 0.9 became class 0)."""
    if not isinstance(answer, Tensor):
        try:
            answer = torch.as_tensor(answer)  # a numpy array or a list
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(
                "`labeller` must return class indices as a tensor (int64), got "
                f"{type(answer).__name__}"
            ) from None
    check(
        answer.shape == (n,),
        ValueError,
        f"`labeller` must return one label per image ({n}), got shape {tuple(answer.shape)}",
    )
    if answer.dtype == torch.bool:  # `p > 0.5`: class 1 where True
        return answer.to(torch.long).cpu()
    bad = not_whole(answer)
    check(
        not bool(bad.any()),
        ValueError,
        "`labeller` must return class indices (whole numbers), got "
        f"{answer.dtype} values such as {answer[bad][:3].tolist()}",
    )
    return answer.to(torch.long).cpu()  # beside the CPU bookkeeping of the rounds
