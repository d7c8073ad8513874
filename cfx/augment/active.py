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
(its labels may be a person's work). A run goes on with a larger ``budget`` in more
``rounds`` when each round it has keeps its labels (``budget=200, rounds=2`` as ``400, 4``).
The run folder is claimed in :mod:`cfx.augment.claim`; a round's files are read and written in
:mod:`cfx.augment.rounds`.
"""

from __future__ import annotations

import copy
import inspect
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, replace
from numbers import Real
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from cfx.augment._common import (
    check_eval_fn,
    class_indices,
    once_per_run,
    record_size,
    round_quotas,
    scored,
)
from cfx.augment.claim import claim, labeller_key, walk_key
from cfx.augment.labellers import Labeller, OracleLabeller
from cfx.augment.result import AugmentResult, AugmentRound
from cfx.augment.rounds import (
    read_candidates,
    read_round,
    restart_if_relabelled,
    save_candidates,
    save_round,
    warn_relabelled,
)
from cfx.calls import call_named, class_logits, frozen, not_whole, to_model
from cfx.errors import check, check_flag, check_int, check_seed, counted
from cfx.images import check_images
from cfx.inversion import generator_probe, unit_range_notice
from cfx.label.classes import UNSURE
from cfx.progress import tqdm
from cfx.reprs import settings_repr
from cfx.run_key import module_sha256, tensors_sha256
from cfx.training.classifier import ClassifierTrainingConfig, predict, train_classifier
from cfx.trajectory import GradientAscent
from cfx.trajectory.identity import module_digest, module_settings
from cfx.trajectory.notices import notices_held
from cfx.types import Generator

log = logging.getLogger(__name__)

DEFAULT_FINETUNE = ClassifierTrainingConfig(epochs=2, lr=5e-4)
"""Each round's fine-tuning when ``finetune`` is not given: 2 epochs at a learning rate of
5e-4, a quarter of training from scratch's (``ClassifierTrainingConfig()``'s 2e-3). To change
one setting keep the others: ``replace(DEFAULT_FINETUNE, epochs=1)``."""


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
        self.show_progress = check_flag("show_progress", show_progress)

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
                f"`labeller` must offer the classifier's {outputs} classes, got "
                f"{len(names)} ({', '.join(map(str, names))}): give it class_names for the "
                f"classifier's {outputs} classes"
            )
        oracle = getattr(self.labeller, "classifier", None)
        # cfx's oracle labels by its classifier's argmax (a subclass labelling its own way
        # is left to itself)
        asks_oracle = type(self.labeller).label is OracleLabeller.label
        if isinstance(self.labeller, OracleLabeller) and asks_oracle and oracle is not None:

            def logits_of_oracle() -> Tensor:  # as label() calls it: a function too
                with frozen(oracle), torch.no_grad():
                    return class_logits(oracle, to_model(probe, oracle))

            answers = call_named(  # predict() took modules only: a lambda's AttributeError
                logits_of_oracle,
                {"labeller.classifier": oracle},
                probe,
                f"the labeller's oracle failed on a pool image shaped {tuple(probe.shape[1:])}",
                name="pool",
            ).shape[1]
            if answers != outputs:
                raise ValueError(
                    f"`labeller`'s oracle must tell the classifier's {outputs} classes apart, "
                    f"got {answers} (the oracle labels the classifier's classes)"
                )
            # the same model, or a copy: equal weights alone also matched two models of other
            # classes whose weights have the same names and values (they disagreed on half
            # the pool, and were said to agree)
            if oracle is self.classifier or (
                isinstance(oracle, nn.Module)
                and isinstance(self.classifier, nn.Module)
                and module_digest(oracle) == module_digest(self.classifier)
            ):
                log.warning(
                    "`labeller`'s oracle is the classifier being fine-tuned: its labels are the "
                    "classifier's own predictions, so the rounds teach it nothing new (their "
                    "disagreement is 0); label with an independent model or a person"
                )

    def pool_needed(self) -> int:
        """The fewest pool images :meth:`augment` takes: each path gives one labelled frame
        per ``frame_levels`` entry, and no pool image starts two paths."""
        self._check()  # rounds=0 divided by zero, budget=2.5 answered 2.0
        per_round = self._per_round()
        return -(-max(per_round) // len(self.frame_levels)) * self.rounds

    def _per_round(self) -> list[int]:
        """Labels per round: ``budget`` split evenly, the remainder in the last round."""
        return round_quotas(self.budget, self.rounds)

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
            eval_fn: scores a model (e.g. worst-group accuracy): the classifier before any
                round (``result.start_metrics``, scored before the first walk, so an
                ``eval_fn`` that returns no scores fails at once) and the model after each
                round; rounds read back from ``out`` are scored again, so a resumed run
                reports one test set.
        """
        pool, train_images, out = self._check_inputs(
            pool, train_images, train_labels, out, seed, eval_fn
        )
        seed = int(seed)  # a numpy int (a sweep) failed in torch's manual_seed, naming nothing
        cfg = replace(self.finetune or DEFAULT_FINETUNE, reset_parameters=False)
        if cfg.seed not in (ClassifierTrainingConfig().seed, seed):  # set, and then unused
            log.warning(
                "`finetune.seed` (%d) is not used: round k fine-tunes with augment's `seed` "
                "+ k (%d + k); pass that seed to augment instead",
                cfg.seed,
                seed,
            )
        key = claim(out, self._run_key(pool, train_images, train_labels, cfg, seed), self.rounds)
        model = copy.deepcopy(self.classifier)  # the user's model is never touched
        # the start's scores, before any walk: an eval_fn that returns no scores failed only
        # after the first round's walk and fine-tune (minutes), and a baseline had to be
        # scored by hand
        model.eval()
        start = scored(eval_fn, model) if eval_fn is not None else {}
        for param in model.parameters():  # zoo models load frozen; the copy is trained
            param.requires_grad_(True)
        used = torch.zeros(pool.shape[0], dtype=torch.bool)
        new_x: list[Tensor] = []  # each round's labelled frames (N_k, C, H, W), on the CPU
        new_y: list[Tensor] = []  # and their labels (N_k,)
        history: list[AugmentRound] = []
        noticed = False  # have the notices about the models (tagged cfx_models) been given?
        relabelled = False  # has a finished round's changed label been warned about?
        tuned = 0  # fine-tunes run by this call
        run_key = walk_key(key)  # what made a saved walk: this run, and the model
        for k, quota in enumerate(self._per_round()):
            folder = out / f"round_{k:02d}"
            finished = read_round(folder)
            if finished is not None:  # finished earlier: reload instead of redoing
                record, frames, y_k, weights = finished
                model.load_state_dict(weights)
                if not relabelled:  # the first changed round's advice is the one to follow
                    relabelled = warn_relabelled(folder / "task", y_k)
                if eval_fn is not None:  # scored again: the rerun's eval_fn may differ
                    model.eval()
                    record = replace(record, metrics=scored(eval_fn, model))
            else:
                # the walk is this run's (key.json) from this model: another round k-1
                # (redone after its file was lost) walks again
                made_by = {"key": run_key, "model": str(module_sha256(model))}
                walked = read_candidates(folder, made_by, len(self.frame_levels))
                if walked is None:
                    walked = self._candidates(
                        model, pool, used, quota, seed + k, models_noticed=noticed, round_index=k
                    )
                    noticed = True
                    if walked[1].shape[0]:  # kept until the round is done: a person may be asked
                        folder.mkdir(parents=True, exist_ok=True)
                        save_candidates(walked, folder, made_by, len(self.frame_levels))
                starts, frames, context, suggested = walked
                if frames.shape[0] == 0:  # no labeller is asked about nothing
                    log.warning(
                        "round %d: no pool image left gives a path that crosses the boundary "
                        "from its near side; the run stops after %s",
                        k,
                        counted(k, "round"),
                    )
                    break
                y_k = self._ask(frames, context, suggested, folder / "task")
                restart_if_relabelled(folder / "train", y_k, k)
                # an imbalance notice once, not every round; the range noticed already
                with once_per_run(tuned, "cfx_unit_range"):
                    model, _ = train_classifier(
                        model,
                        *self._finetune_set(
                            train_images, train_labels, [*new_x, frames], [*new_y, y_k]
                        ),
                        folder / "train",
                        replace(cfg, seed=seed + k),
                        show_progress=self.show_progress,
                    )
                tuned += 1
                model.eval()
                record = _round_record(k, starts, y_k, suggested, model, eval_fn)
                save_round(folder, record, frames, y_k, model)
                log.info(
                    "round %d: %d labels, disagreement %.2f",
                    k,
                    record.labelled,
                    record.disagreement,
                )
            used[record.starts] = True
            new_x.append(frames)
            new_y.append(y_k)
            history.append(record)
        images = torch.cat(new_x) if new_x else pool[:0].cpu()  # as every round's
        labels = torch.cat(new_y) if new_y else torch.zeros(0, dtype=torch.long)
        record_size(model, tuple(pool.shape[-2:]))
        return AugmentResult(
            model=model,
            images=images,
            labels=labels,
            rounds=tuple(history),
            start_metrics=start,
            seed=seed,
            # of the values: int32 labels here and int64 to the control are one training set
            train_sha256=tensors_sha256(train_images.float(), train_labels.long()),
        )

    def _check_inputs(
        self,
        pool: Tensor,
        train_images: Tensor,
        train_labels: Tensor,
        out: object,
        seed: object,
        eval_fn: object,
    ) -> tuple[Tensor, Tensor, Path]:
        """Every argument of :meth:`augment` checked before ``out`` is claimed, a frame
        rendered or a person asked; the pool and training images as tensors, ``out`` a Path."""
        self._check()
        check_seed("seed", seed, optional=False)
        check_eval_fn(eval_fn)
        check(
            isinstance(out, str | os.PathLike),
            TypeError,
            f"`out` must be a folder path (str or Path), got {type(out).__name__}",
        )
        check(  # before the run key's digests are taken, or a labeller's run_key() asked
            not Path(out).exists() or Path(out).is_dir(),  # type: ignore[arg-type]
            ValueError,
            f"`out` must be a folder (created if missing), got the file {out}",
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
        need = self.pool_needed()
        check(
            pool.shape[0] >= need,
            ValueError,
            f"`pool` must hold at least {need} images for this budget, got {pool.shape[0]}",
        )
        return pool, train_images, Path(out)  # type: ignore[arg-type]

    def _run_key(
        self,
        pool: Tensor,
        train_images: Tensor,
        train_labels: Tensor,
        cfg: ClassifierTrainingConfig,
        seed: int,
    ) -> dict[str, Any]:
        """What decides this run's rounds, as ``out/key.json`` records it."""
        # Python numbers: json.dumps(default=str) wrote np.int64(4) as "4", and a rerun with
        # budget=4 was refused as another run ("budget: "4" before, 4 now")
        return {
            "budget": int(self.budget),
            "rounds": int(self.rounds),
            "frame_levels": [float(v) for v in self.frame_levels],
            "steps": int(self.steps),
            "selection": self.selection,
            "repeat_new": int(self.repeat_new),
            "finetune": asdict(cfg),
            "inversion_steps": int(self.inversion_steps),
            "batch_size": int(self.batch_size),
            "seed": int(seed),
            "pool_sha256": tensors_sha256(pool),
            "train_sha256": tensors_sha256(train_images, train_labels),
            "classifier_sha256": module_sha256(self.classifier),
            "generator_sha256": module_sha256(self.generator),
            # the weights alone: a wrapper's settings (TwoLogits' outputs) changed nothing
            "classifier_settings": module_settings(self.classifier),
            "generator_settings": module_settings(self.generator),
            "labeller": labeller_key(self.labeller),
        }

    def _ask(self, frames: Tensor, context: Tensor, suggested: Tensor, task: Path) -> Tensor:
        """The labeller's labels of a round's ``frames`` ``(Q, C, H, W)``: ``(Q,)`` int64,
        classes 0/1 or :data:`~cfx.label.UNSURE`, on the CPU."""
        labels = class_indices(
            self.labeller.label(frames, context=context, suggested=suggested, workdir=task),
            frames.shape[0],
        )
        check(  # the classifier's two classes (checked before any round)
            bool((((labels >= 0) & (labels < 2)) | (labels == UNSURE)).all()),
            ValueError,
            f"`labeller` must return class indices 0 or 1, or {UNSURE} for an image it "
            f"cannot call, got {sorted(set(labels.tolist()))}",
        )
        return labels

    def _finetune_set(
        self,
        train_images: Tensor,
        train_labels: Tensor,
        new_x: list[Tensor],
        new_y: list[Tensor],
    ) -> tuple[Tensor, Tensor]:
        """The training set plus every labelled frame so far, each ``repeat_new`` times, on
        the training set's device; frames the labeller could not call are left out."""
        sure = [(x[y != UNSURE], y[y != UNSURE]) for x, y in zip(new_x, new_y, strict=True)]
        at, at_y = train_images.device, train_labels.device  # new frames are on the CPU
        xs = torch.cat(
            [train_images, *[x.repeat(self.repeat_new, 1, 1, 1).to(at) for x, _ in sure]]
        )  # (N + repeat_new * sure, C, H, W)
        ys = torch.cat(
            [train_labels.long(), *[y.repeat(self.repeat_new).to(at_y) for _, y in sure]]
        )
        return xs, ys

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


def _round_record(
    k: int,
    starts: Tensor,
    labels: Tensor,
    suggested: Tensor,
    model: nn.Module,
    eval_fn: Callable[[nn.Module], Mapping[str, Any]] | None,
) -> AugmentRound:
    """Round ``k``'s record: its labels counted, how often the classifier before the round
    (``suggested``) disagreed with them, and the fine-tuned ``model``'s scores."""
    called = labels != UNSURE
    return AugmentRound(
        index=k,
        starts=starts,
        labelled=int(labels.shape[0]),
        label_counts=tuple(int((labels == c).sum()) for c in range(2)),  # 0/1 checked
        # undefined (NaN; null in summary.json) when no frame got a class
        disagreement=float((suggested[called] != labels[called]).float().mean())
        if bool(called.any())
        else float("nan"),
        metrics=scored(eval_fn, model) if eval_fn is not None else {},
        unsure=int((~called).sum()),
    )
