"""``cfx augment``: label near-boundary frames, fine-tune, repeat (resumable, budgeted)."""

from __future__ import annotations

import argparse
import json
import logging
import math
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from cfx.cli.console import keeping_warnings
from cfx.cli.models import checked_source, load_model, size_notice
from cfx.cli.options import YES_NO, by_flag, card_settings, class_names_flag, given_flags
from cfx.cli.paths import add_output_options, not_a_file, out_folder
from cfx.errors import ForeignRunError, check_int, counted
from cfx.files import write_atomic

if TYPE_CHECKING:
    import torch

LABELLERS = ("oracle", "web", "csv")


log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "augment",
        help="augment a classifier's training data with labelled near-boundary frames",
        description="Rounds of active learning: walk the pool slices the classifier is least "
        "sure of across its boundary, have the frames near it labelled, fine-tune a copy on "
        "the training set plus every label so far, within --budget labels. With --labeller "
        "web or csv a person labels: the command writes OUT/round_KK/task, says how to label "
        "it and exits with code 3; label, then run the same command again to go on. Every "
        "round is kept in --out, so an interrupted run resumes.",
    )
    p.add_argument(
        "--classifier",
        default=None,
        help="classifier to improve: a zoo name, a model folder (DIR or DIR/model) or a hub id "
        "(default: brain-cnn-tagged, for the built-in slices; with your own images name it)",
    )
    p.add_argument(
        "--generator",
        default=None,
        help="generator with encoder: a zoo name, a model folder or a hub id (default: "
        "brain-gan, for the built-in slices; with your own --pool/--train-data name one, e.g. "
        "trained with `cfx train generator --data`)",
    )
    p.add_argument(
        "--labeller",
        default="oracle",
        choices=LABELLERS,
        help="oracle: automatic; web/csv: a person labels each round's task folder",
    )
    p.add_argument(
        "--oracle",
        default=None,
        help="classifier for --labeller oracle: a zoo name, a model folder or a hub id "
        "(default: brain-oracle, for the built-in slices; with your own images name it)",
    )
    p.add_argument("--budget", type=int, default=200, help="total labels, never exceeded")
    p.add_argument("--rounds", type=int, default=2, help="label-and-fine-tune rounds")
    p.add_argument("--epochs", type=int, default=2, help="fine-tuning epochs per round")
    p.add_argument(
        "--pool-n", type=int, default=None, help="built-in unlabelled pool size (default: 2000)"
    )
    p.add_argument(
        "--pool-seed", type=int, default=None, help="seed of the built-in pool (default: 12)"
    )
    p.add_argument(
        "--pool", type=Path, help="a .npy/.pt image batch or a folder of images as the pool"
    )
    p.add_argument(
        "--train-data", type=Path, help="training images (.npy/.pt, or a folder of images)"
    )
    p.add_argument(
        "--train-labels",
        type=Path,
        help="training labels (.npy/.pt, or .csv/.txt: one per line, or file name,label rows "
        "for a folder)",
    )
    p.add_argument(
        "--train-n",
        type=int,
        default=None,
        help="built-in training slices, biased like brain-cnn-tagged's (default: 8000)",
    )
    p.add_argument(
        "--test-data",
        type=Path,
        help="images the rounds are scored on (.npy/.pt or a folder; default: 2000 built-in "
        "tagged test "
        "slices, marker independent of the label)",
    )
    p.add_argument(
        "--test-n",
        type=int,
        default=None,
        help="built-in test slices the rounds are scored on (default: 2000; fewer score "
        "faster and coarser)",
    )
    p.add_argument(
        "--test-labels",
        type=Path,
        help="labels of --test-data (.npy/.pt, or .csv/.txt: one per line, or file name,label "
        "rows for a folder)",
    )
    p.add_argument(
        "--test-groups",
        type=Path,
        help="optional 0/1 attribute per --test-data image (e.g. a scanner marker; .npy/.pt, "
        "or .csv/.txt: one per line, 0/1, yes/no or y/n): adds the "
        "accuracy per class x attribute and the worst group",
    )
    p.add_argument(
        "--class-names",
        default=None,
        help="the two classes' names, comma-separated, class 0 first: what a person labels "
        "with (--labeller web/csv) and the report's groups (default: healthy,tumour for the "
        "built-in slices, class0,class1 with your own images)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the paths and the fine-tuning")
    p.add_argument(
        "--control",
        action="store_true",
        help="also fine-tune a copy the same way without the labels (OUT/control) and score "
        "it beside the run, so the labels' share of the gain is measured, not the gain of "
        "more fine-tuning (about doubles the fine-tuning time)",
    )
    add_output_options(p, "cfx-augment", "the rounds, labelling tasks, summary.json and the model")
    p.set_defaults(run=run_augment)


def _your_data_needs_your_models(args: argparse.Namespace) -> None:
    """With images of one's own, nothing built-in may fill in silently: the built-in brain
    generator would redraw a pool of other images as brain slices, brain-oracle would label
    them, and built-in slices would join the training or test set."""
    pool_or_train = [f for f, v in (("--pool", args.pool), ("--train-data", args.train_data)) if v]
    if pool_or_train:
        needed = {
            "--pool": args.pool,
            "--train-data": args.train_data,
            "--test-data": args.test_data,
            "--classifier": args.classifier,
            "--generator": args.generator,
        }
        if args.labeller == "oracle":
            needed["--oracle"] = args.oracle
        missing = [flag for flag, value in needed.items() if value is None]
        if missing:
            raise ValueError(
                f"with your own images ({', '.join(pool_or_train)}) give {', '.join(missing)} "
                "too (each data file with its labels): the defaults are the built-in brain "
                "slices and models (brain-gan redraws any pool as brain slices), which would "
                "be mixed with your images silently; name brain-gan, brain-cnn-tagged or "
                "brain-oracle to use them"
            )
    elif args.test_data is not None and args.classifier is None:
        raise ValueError(
            "with your own --test-data give --classifier too (the default, brain-cnn-tagged, "
            "is for the built-in brain slices; name it to use it)"
        )


def _images(
    path: str | Path, flag: str, shape: tuple[int, int, int]
) -> tuple[torch.Tensor, list[Path] | None]:
    """``--pool``/``--train-data``/``--test-data``: a .npy/.pt batch shaped like the
    generator's frames, or a folder of image files (name order; grey or colour and resized
    to the frames, as ``cfx trajectory --input`` reads them), with the files read (None for
    a batch), to which labels given as ``file name,label`` rows are matched."""
    from cfx.data.io import load_images

    if Path(path).is_dir():
        from cfx.data.image_files import image_files, read_images

        files = image_files(Path(path), flag)
        return read_images(files, shape[0], shape[1:], name=flag), files
    return load_images(path, name=flag, shape=shape), None


TEST_SEED = 2
"""Seed of the built-in test slices the command scores every round on."""

_AS_FLAGS = (
    ("`out` ", "`--out` "),
    ("`workdir` ", "the round's task folder "),  # OUT/round_KK/task: no flag of its own
    (", or label these in another folder", ""),
    ("finetune.epochs", "--epochs"),
    ("labeller.oracle_sha256", "--oracle (its weights)"),
    ("labeller.kind", "--labeller"),
    ('"person"', '"web" or "csv"'),  # both flags label through a person's task
    ("labeller.class_names", "--class-names (what a person labels with)"),
    ("the pool images", "the pool (--pool, or --pool-n / --pool-seed)"),
    ("the training images or labels", "the training set (--train-data/--train-labels, --train-n)"),
    ("the classifier's weights", "--classifier (its weights)"),
    ("the generator's weights", "--generator (its weights)"),
)
"""A refused resume's wording in the library (``out``, key paths) -> the command's flags."""


def _flag_names(text: str) -> str:
    """``ActiveLearner``'s refusal of another run's folder, naming the flags that were typed
    (``--epochs: 1 before, 2 now``, not ``finetune.epochs``)."""
    for old, new in _AS_FLAGS:
        text = text.replace(old, new)
    for name in ("budget", "rounds", "seed"):  # top-level settings named as their flags
        text = re.sub(rf"(?<![\w.-]){name}(?=: )", f"--{name}", text)
    return text


def _class_names(out: Path, k: int) -> tuple[str, ...]:
    """A person's class names for your own images: ``class0`` .. ``class{k-1}``, or those a
    paused run in ``out`` already shows its labeller (an older cfx showed healthy/tumour)."""
    from cfx.augment.claim import KEY_FILE

    try:
        earlier = json.loads((out / KEY_FILE).read_text())["labeller"]["class_names"]
    except (OSError, ValueError, KeyError, TypeError):
        earlier = None
    if isinstance(earlier, list) and len(earlier) == k and all(isinstance(c, str) for c in earlier):
        return tuple(earlier)
    return tuple(f"class{c}" for c in range(k))


def _draw_rounds(out: Path, names: list[str], levels: tuple[float, ...]) -> None:
    """``round_KK/labelled.png`` for each finished round in ``out``: its paths' labelled
    frames, their labels and what changed between them (an oracle's rounds left the frames in
    round.safetensors only, where no one would look). Drawn from the rounds on disk, so a
    run waiting for a person's labels shows the rounds it finished."""
    from safetensors import safe_open

    from cfx.viz import labelled_frames

    for done in sorted(out.glob("round_*/round.safetensors")):
        try:
            with safe_open(str(done), framework="pt") as f:
                images, labels = f.get_tensor("images"), f.get_tensor("labels")
        except Exception as err:  # the run itself redoes a round it cannot read
            log.warning("%s cannot be read (%s); its labelled.png is not drawn", done, err)
            continue
        if labels.numel():
            labelled_frames(
                images,
                labels,
                done.parent / "labelled.png",
                per_path=len(levels),
                class_names=names,
                levels=levels,
            )


def _nulls(metrics: dict[str, float]) -> dict[str, float | None]:
    """Scores for JSON: NaN (a group with no test image) as null."""
    return {k: None if math.isnan(v) else v for k, v in metrics.items()}


def _gain_line(
    start: dict[str, float],
    labelled: dict[str, float],
    without: dict[str, float] | None,
    labels: int,
) -> str:
    """What the labels bought, on the worst group (else overall accuracy): "test worst group:
    0.07 at the start, 0.66 fine-tuned with 200 labels, 0.43 fine-tuned the same way without
    them: the labels add +0.23"; without a control, that part may be the fine-tuning itself."""
    name = "worst_group" if "worst_group" in labelled else "accuracy"
    a, b = start.get(name, math.nan), labelled.get(name, math.nan)
    line = (
        f"test {name.replace('_', ' ')}: {a:.2f} at the start, {b:.2f} fine-tuned with "
        f"{labels} labels"
    )
    if without is None:
        return line + (
            " (part of the gain may be the fine-tuning itself: --control measures it without "
            "the labels)"
        )
    c = without.get(name, math.nan)
    line += f", {c:.2f} fine-tuned the same way without them: the labels add {b - c:+.2f}"
    if name == "worst_group":  # BENCHMARKS.md, "Augmentation": controls of other seeds
        line += " (one seed: a worst group moves by about 0.1 between equally fair controls)"
    return line


def _trained_on(summary: dict) -> int:
    """The labels the fine-tunes trained on: every one but those answered "unsure"."""
    return sum(r["labelled"] - r["unsure"] for r in summary["rounds"])


def _model_card(folder: Path, args: argparse.Namespace, summary: dict) -> None:
    """``OUT/model/README.md``: what made the weights (the command's settings), what they
    scored, and their SHA-256, which loading the folder checks."""
    from cfx.zoo.pretrained import AUGMENTED_CARD, sha256

    # --oracle is filled in by default, and used only by the oracle labeller
    settings = card_settings(args, leave_out=() if args.labeller == "oracle" else ("oracle",))
    rounds = summary["rounds"]
    lines = [
        f"# {args.classifier} {AUGMENTED_CARD}",
        "",
        f"Fine-tuned in {len(rounds)} round(s) on its training set plus "
        f"{_trained_on(summary)} labelled near-boundary frames ({args.labeller} labels; "
        f"{summary['labels_used'] - _trained_on(summary)} answered unsure, not trained on). "
        "Settings (the command's options):",
        "",
        "```json",
        json.dumps(settings, indent=1, default=str),
        "```",
        "",
        "Test scores at the start and after the last round (`../summary.json` has every "
        "round" + (", and the same fine-tuning without the labels" if args.control else "")
        + "):",
        "",
        "```json",
        json.dumps({"start": summary["start"], "last": rounds[-1]["test"] if rounds else None},
                   indent=1),
        "```",
        "",
        f"sha256 of model.safetensors: {sha256(folder / 'model.safetensors')}",
        "",
    ]  # fmt: skip
    write_atomic(folder / "README.md", "\n".join(lines))


def _label_names(labeller: object, classes: tuple[str, ...], outputs: int) -> list[str]:
    """The names a person labelled with, else those of the test scores (an oracle's)."""
    names = list(getattr(labeller, "class_names", None) or classes)
    return names + [f"class{c}" for c in range(len(names), outputs)]


@keeping_warnings  # summary.json repeats what the run warned
def run_augment(args: argparse.Namespace, notes: list[str]) -> int:
    from cfx.augment import ActiveLearner, LabelsPending, OracleLabeller, TaskLabeller
    from cfx.augment.labellers import Labeller
    from cfx.calls import call_named
    from cfx.data.brain import make_dataset
    from cfx.data.io import load_labels
    from cfx.inversion import unit_range_notice, zero_image
    from cfx.label.classes import check_class_names
    from cfx.metrics import group_accuracies
    from cfx.training.classifier import ClassifierTrainingConfig, predict

    if (args.train_data is None) != (args.train_labels is None):
        raise ValueError("`--train-data` and `--train-labels` must be given together")
    if (args.test_data is None) != (args.test_labels is None):
        raise ValueError("`--test-data` and `--test-labels` must be given together")
    if args.test_groups is not None and args.test_data is None:
        raise ValueError("`--test-groups` describes --test-data images: give those too")
    if args.pool is not None and given_flags(args, "pool_n", "pool_seed"):
        raise ValueError(
            "`--pool-n` and `--pool-seed` choose the built-in pool; drop them with --pool"
        )
    if args.train_data is not None and args.train_n is not None:
        raise ValueError("`--train-n` chooses built-in training slices; drop it with --train-data")
    if args.test_data is not None and args.test_n is not None:
        raise ValueError("`--test-n` chooses built-in test slices; drop it with --test-data")
    named: tuple[str, ...] | None = None
    if args.class_names is not None:
        named = class_names_flag(args.class_names)
        with by_flag(args):  # as a labelling task holds them (no "unsure", no numbers)
            check_class_names(named)
    for flag in ("pool", "train_data", "train_labels", "test_data", "test_labels", "test_groups"):
        given = getattr(args, flag)
        if given is not None and not Path(given).exists():  # before what else is missing
            raise FileNotFoundError(f"`--{flag.replace('_', '-')}` not found: {given}")
    _your_data_needs_your_models(args)
    pool_n = 2000 if args.pool_n is None else check_int("--pool-n", args.pool_n)
    train_n = 8000 if args.train_n is None else check_int("--train-n", args.train_n)
    test_n = 2000 if args.test_n is None else check_int("--test-n", args.test_n)
    pool_seed = 12 if args.pool_seed is None else args.pool_seed
    if args.pool is None and pool_seed == TEST_SEED:  # 1,118 of its 2,000 images are the test's
        raise ValueError(
            f"`--pool-seed` {TEST_SEED} draws the built-in test slices (seed {TEST_SEED}): frames "
            "labelled from them would be scored on the images they came from; pick another seed "
            "(the default pool is 12, the training slices 11)"
        )
    check_int("--budget", args.budget)
    check_int("--rounds", args.rounds)
    check_int("--epochs", args.epochs)
    if args.rounds > args.budget:  # each round labels at least one frame
        raise ValueError(
            f"`--rounds` must not exceed `--budget` ({args.budget}), got {args.rounds}"
        )
    args.generator = args.generator or "brain-gan"
    args.classifier = args.classifier or "brain-cnn-tagged"
    # the models are checked before any data is rendered or model loaded
    sources = {  # resolved once: loading them again would repeat any notice
        "generator": checked_source("--generator", args.generator, "generator"),
        "classifier": checked_source("--classifier", args.classifier, "classifier"),
    }
    if args.labeller != "oracle" and args.oracle is not None:  # a person labels: unused
        raise ValueError(
            f"`--oracle` labels for --labeller oracle; drop it with --labeller {args.labeller}"
        )
    args.oracle = args.oracle or "brain-oracle"
    if args.labeller == "oracle":
        sources["oracle"] = checked_source("--oracle", args.oracle, "classifier")
    for flag, name in (
        ("--classifier", args.classifier),
        ("--generator", args.generator),
        ("--oracle", args.oracle if args.labeller == "oracle" else None),
    ):
        if name is None or not Path(name).exists():  # a zoo name, a hub id
            continue
        folder = Path(name) / "model" if (Path(name) / "model").is_dir() else Path(name)
        # the fine-tuned copy is written to OUT/model: the input would be overwritten
        if folder.resolve().is_relative_to(Path(args.out).resolve()):
            raise ValueError(
                f"`--out` {args.out} holds the `{flag}` model ({name}); the run writes its "
                "rounds and fine-tuned copy there: choose another folder"
            )
    not_a_file(args.out)  # a file named by --out fails now, not after the first round
    bar = not args.no_progress  # rendering the built-in slices takes ~10 s
    generator = load_model("--generator", sources["generator"])
    c, h, w = zero_image(generator).shape[1:]  # what the image files must hold
    shape = (c, h, w)
    if args.train_data is not None:
        train_x, train_files = _images(args.train_data, "--train-data", shape)
        train_y = load_labels(
            args.train_labels, train_x.shape[0], name="--train-labels", files=train_files
        )
    else:
        train = make_dataset(train_n, seed=11, tagged=True, tag_correlation=0.95, show_progress=bar)
        train_x, train_y = train.images, train.labels
    if args.pool is not None:
        pool = _images(args.pool, "--pool", shape)[0]
    else:
        biased = make_dataset(
            pool_n, seed=pool_seed, tagged=True, tag_correlation=0.95, show_progress=bar
        )
        pool = biased.images
    probe = pool[:1]

    def class_count(model: torch.nn.Module, flag: str) -> int:
        """How many classes ``model`` tells apart, asked on a pool image (a model that fails
        on the pool's images is named by its flag)."""
        return call_named(
            lambda: predict(model, probe),
            {flag.removeprefix("--"): model},
            probe,
            f"`{flag}` failed on an image shaped {tuple(probe.shape[1:])}",
            name="--pool",
        ).shape[1]

    # a classifier trained at another size than the generator's frames: the explainer says so
    classifier = load_model("--classifier", sources["classifier"])
    outputs = class_count(classifier, "--classifier")  # the classes labels must name
    if outputs != 2:
        raise ValueError(
            f"`--classifier` must tell two classes apart (cfx augment walks frames across a "
            f"two-class boundary), got {outputs}"
        )
    labeller: Labeller
    if args.labeller == "oracle":
        oracle = load_model("--oracle", sources["oracle"])
        size_notice(
            oracle, (h, w), "--oracle", "frames to label (the generator's size)", frames=True
        )
        answers = class_count(oracle, "--oracle")
        if answers != outputs:  # a 2-class oracle never labels a third class
            raise ValueError(
                f"`--oracle` must tell the classifier's {outputs} classes apart (it labels "
                f"them), got {answers}"
            )
        labeller = OracleLabeller(oracle)
    elif args.labeller in ("web", "csv"):
        built_in = args.pool is None and args.train_data is None
        names = named or (
            ("healthy", "tumour") if built_in else _class_names(Path(args.out), outputs)
        )
        labeller = TaskLabeller(class_names=names)
    else:
        raise ValueError(f"`--labeller` must be one of {LABELLERS}, got {args.labeller!r}")
    learner = ActiveLearner(
        generator,
        classifier,
        labeller,
        budget=args.budget,
        rounds=args.rounds,
        finetune=ClassifierTrainingConfig(epochs=args.epochs, lr=5e-4),
        show_progress=not args.no_progress,
    )

    if pool.shape[0] < learner.pool_needed():  # named by its flags, before any round
        raise ValueError(
            f"the pool must hold at least {learner.pool_needed()} images for --budget "
            f"{args.budget} in --rounds {args.rounds} ({len(learner.frame_levels)} labelled "
            f"frames per path, one path per pool image), got {pool.shape[0]}"
            + (" in --pool" if args.pool is not None else ": raise --pool-n")
        )
    if args.test_data is not None:
        test_x, test_files = _images(args.test_data, "--test-data", shape)
        if test_files is None:  # image files are read into [-1, 1]; an array is as saved
            unit_range_notice(test_x, "--test-data")
        test_y = load_labels(
            args.test_labels, test_x.shape[0], name="--test-labels", files=test_files
        )
        groups = None
        if args.test_groups is not None:
            groups = load_labels(  # yes/no too, as cfx shortcuts' --marker-present takes
                args.test_groups,
                test_x.shape[0],
                name="--test-groups",
                files=test_files,
                words=YES_NO,
            )
            bad = ~((groups == 0) | (groups == 1))
            if bool(bad.any()):
                rows = bad.nonzero().flatten().tolist()
                raise ValueError(
                    f"`--test-groups` must hold 0 or 1 per image, got {int(groups[bad][0])} "
                    f"at row(s) {rows[:5]}{' ...' if len(rows) > 5 else ''}"
                )
        classes: tuple[str, ...] = ("healthy", "tumour")  # a brain classifier's classes
        if args.pool is not None or args.train_data is not None:
            classes = tuple(f"class{c}" for c in range(max(int(test_y.max()) + 1, 2)))
    else:
        # marker independent
        test = make_dataset(
            test_n, seed=TEST_SEED, tagged=True, tag_correlation=0.5, show_progress=bar
        )
        test_x, test_y, groups = test.images, test.labels, test.tags
        classes = ("healthy", "tumour")
    classes = named or classes

    for flag, y in (("--train-labels", train_y), ("--test-labels", test_y)):
        if not bool(((y >= 0) & (y < outputs)).all()):  # before a person labels a round
            raise ValueError(
                f"`{flag}` must be classes of the classifier, 0..{outputs - 1}, got "
                f"{int(y.min())}..{int(y.max())}"
            )

    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        pred = predict(model, test_x).argmax(1)
        if groups is None:
            return {"accuracy": float((pred == test_y).float().mean())}
        names = ("notag", "tag") if args.test_data is None else ("group0", "group1")
        return group_accuracies(
            pred, test_y, groups.bool(), class_names=classes, attribute_names=names
        )

    out_folder(args.out)  # every input checked: a refused run leaves no empty folder
    try:
        result = learner.augment(
            pool, train_x, train_y, out=args.out, seed=args.seed, eval_fn=evaluate
        )
    except LabelsPending as waiting:
        _draw_rounds(args.out, _label_names(labeller, classes, outputs), learner.frame_levels)
        print(waiting.message("the same command"), file=sys.stderr)
        return 3
    except (ForeignRunError, FileExistsError) as err:  # a folder of something else too
        raise type(err)(_flag_names(str(err))) from err
    except KeyboardInterrupt:  # it said only "interrupted", mid-walk
        done = sum((r / "round.safetensors").is_file() for r in args.out.glob("round_*"))
        log.warning(
            "%s of %d finished (kept in %s); the same command resumes after the last finished one",
            counted(done, "round"),
            args.rounds,
            args.out,
        )
        raise
    if not result.rounds:  # exit 0 with a "fine-tuned" model that was only a copy
        raise ValueError(
            "no round was labelled, so nothing was fine-tuned and no model is written: no pool "
            "image gave a path that crosses the classifier's decision boundary (see the warning "
            "above); a pool with images the classifier is less sure of gives paths that cross"
        )
    start = result.start_metrics  # evaluate(classifier), scored before the first walk
    control = None
    if args.control:
        from cfx.augment import finetune_without_labels

        try:
            control = finetune_without_labels(
                learner,
                result,
                train_x,
                train_y,
                out=args.out / "control",
                seed=args.seed,
                eval_fn=evaluate,
                show_progress=not args.no_progress,
            )
        except (ForeignRunError, FileExistsError) as err:
            raise type(err)(_flag_names(str(err))) from err
    model_dir = args.out / "model"
    save = getattr(result.model, "save_pretrained", None)
    if callable(save):
        save(model_dir)
    label_names = _label_names(labeller, classes, outputs)
    _draw_rounds(args.out, label_names, learner.frame_levels)
    summary = {
        "classifier": args.classifier,
        "labeller": args.labeller,
        "budget": args.budget,
        "labels_used": result.labels_used,
        "class_names": label_names,  # label_counts' order
        "test_images": int(test_x.shape[0]),  # every score's test set (--test-n, --test-data)
        "start": _nulls(start),
        "rounds": [
            {
                "round": r.index,
                "labelled": r.labelled,
                "label_counts": list(r.label_counts),
                "unsure": r.unsure,  # answered "can't tell": not trained on
                # NaN (no frame got a class) is no JSON number: null
                "disagreement": None if math.isnan(r.disagreement) else r.disagreement,
                "test": _nulls(r.metrics),
            }
            for r in result.rounds
        ],
        # the same fine-tuning without the labels, per round (--control), else null
        "without_labels": None
        if control is None
        else [{"round": k, "test": _nulls(m)} for k, m in enumerate(control.metrics)],
        "model": str(model_dir) if callable(save) else None,
        "warnings": list(notes),  # what the run printed to stderr, e.g. about its inputs
    }
    write_atomic(args.out / "summary.json", json.dumps(summary, indent=2) + "\n")
    if callable(save):
        _model_card(model_dir, args, summary)
    if result.rounds:
        last = result.rounds[-1].metrics
        without = None if control is None else control.metrics[-1]
        print(_gain_line(start, last, without, _trained_on(summary)), file=sys.stderr)
    print(json.dumps(summary, indent=2))
    return 0
