"""``cfx train generator|classifier``: train zoo architectures on built-in or user data."""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cfx.cli.options import by_flag, card_settings, given_flags
from cfx.cli.paths import built_in_named, not_the_input_folder, out_path, writable_later
from cfx.errors import ForeignRunError, UnknownNameError, check_int, check_real, counted
from cfx.files import write_atomic
from cfx.notices import held

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    import torch

    from cfx.data.brain import BrainSlices
    from cfx.models.classifiers import BrainCNN, BrainOracle, BrainSegmenter

ARCHS = ("brain-cnn", "brain-oracle", "brain-segmenter")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a generator or classifier (resumable)")
    tsub = p.add_subparsers(dest="train_command", required=True, metavar="WHAT")

    g = tsub.add_parser(
        "generator",
        help="train a BrainGAN (VAE-GAN) generator + encoder",
        description="Train a BrainGAN (VAE-GAN: generator, encoder, discriminator) on the "
        "built-in brain slices or your images. Checkpoints go to --out; Ctrl-C saves the step "
        "in progress, and the same command resumes (with more --steps it trains on). A rerun "
        "with other data or settings is refused, naming what changed.",
    )
    _data_args(g, labels=False)
    g.add_argument(
        "--steps",
        type=int,
        default=6000,
        help="training steps; a rerun may raise it to go on (the learning-rate decay is then "
        "spread over the new total, so the rate rises again: not the same as one longer run)",
    )
    g.add_argument("--batch-size", type=int, default=64, help="images per step")
    g.add_argument("--latent-dim", type=int, default=128, help="size of the latent code")
    g.add_argument(
        "--width",
        type=int,
        default=32,
        help="base channel width of the networks: 2, 4, 8 or a multiple of 16",
    )
    g.add_argument(
        "--adv-factor",
        type=float,
        default=0.1,
        help="adversarial gradient at the decoder's last layer, as a share of the "
        "reconstruction's (the adaptive weight of Esser et al. 2021 times this)",
    )
    g.add_argument(
        "--adv-start", type=int, default=500, help="step at which the adversarial loss starts"
    )
    g.add_argument("--seed", type=int, default=0, help="seed of initialisation and batches")
    g.add_argument("--out", type=out_path, required=True, help="run folder (checkpoint, model)")
    g.add_argument("--no-progress", action="store_true", help="no progress bars")
    g.set_defaults(run=run_generator)

    c = tsub.add_parser(
        "classifier",
        help="train a BrainCNN, BrainOracle (classify) or BrainSegmenter (segment)",
        description="Train a classifier or the lesion segmenter on the built-in brain slices "
        "or your images with --labels (or --masks). Checkpoints go to --out; Ctrl-C saves the "
        "step in progress and the same command resumes. A rerun with other data or settings "
        "is refused, naming what changed.",
    )
    c.add_argument("--arch", choices=ARCHS, required=True, help="architecture to train")
    _data_args(c)
    c.add_argument(
        "--masks",
        type=Path,
        help="brain-segmenter on user data: masks (.npy/.pt, or a folder of mask files named "
        "like the images of a --data folder)",
    )
    c.add_argument(
        "--val-n", type=int, default=None, help="brain: validation slices, 0: none (default: 2000)"
    )
    c.add_argument(
        "--val-seed", type=int, default=None, help="brain: seed of the validation set (default: 1)"
    )
    c.add_argument(
        "--val-data", help="user data: validation images (.npy/.pt or a folder, as --data)"
    )
    c.add_argument("--val-targets", type=Path, help="user data: validation labels or masks")
    c.add_argument("--epochs", type=int, default=10, help="passes over the training images")
    c.add_argument("--batch-size", type=int, default=64, help="images per step")
    c.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (AdamW)")
    c.add_argument("--width", type=int, help="base width (default: the architecture's)")
    c.add_argument(
        "--no-augment",
        action="store_true",
        help="no augmentation at all (by default each batch is shifted by up to 3 px per axis, "
        "padded with black, -1, and its intensity scaled by 0.9-1.1: turn it off for images "
        "whose background is not black)",
    )
    c.add_argument(
        "--blur", type=float, default=0.0, help="augment: Gaussian blur up to this sigma (px)"
    )
    c.add_argument(
        "--noise", type=float, default=0.0, help="augment: extra Gaussian noise up to this std"
    )
    c.add_argument(
        "--balanced",
        action="store_true",
        help="weight each class in the loss by N / (K n_k), so a rare class counts as much "
        "as a common one (for imbalanced --labels; classifiers only)",
    )
    c.add_argument("--seed", type=int, default=0, help="seed of initialisation, order, augment")
    c.add_argument("--out", type=out_path, required=True, help="run folder (checkpoint, model)")
    c.add_argument("--no-progress", action="store_true", help="no progress bars")
    c.set_defaults(run=run_classifier)


def _data_args(p: argparse.ArgumentParser, *, labels: bool = True) -> None:
    p.add_argument(
        "--data",
        default="brain",
        help="'brain' (built-in), a .npy/.pt file of images (N, C, H, W) in [-1, 1] or uint8, "
        "or a folder of image files (read in name order, grey or colour as the first file)"
        + ("" if labels else "; 64x64, the size the generator's architecture makes"),
    )
    p.add_argument(  # hidden for a generator, whose run names it as refused
        "--labels",
        type=Path,
        help="user data: class labels 0..K-1, one per image (.npy/.pt, or .csv/.txt: one per "
        "line, or file name,label rows for a folder of images)"
        if labels
        else argparse.SUPPRESS,
    )
    p.add_argument(
        "--n",
        type=int,
        default=None,
        help="brain: number of slices to render (default: 60000 for a generator, 20000 for a "
        "classifier)",
    )
    p.add_argument(
        "--data-seed", type=int, default=None, help="brain: seed of the rendered set (default: 100)"
    )
    p.add_argument("--tagged", action="store_true", help="brain: add scanner markers")
    p.add_argument(
        "--tag-correlation", type=float, default=None, help="brain: P(tag == label) (default: 0.5)"
    )


BRAIN_DEFAULTS = {"n": None, "data_seed": 100, "tag_correlation": 0.5, "val_n": 2000, "val_seed": 1}
"""The built-in slices' options (None: per command); each is None on the parsed arguments
until given, so that one given with a --data file is refused, not ignored."""


def _shared_options(args: argparse.Namespace, n: int) -> None:
    """The options both commands share, checked under their flags' names: the built-in
    slices' (refused with a --data file, which they do not describe; else their defaults, ``n``
    slices, filled in on ``args``) and --batch-size."""
    if args.data != "brain":
        given = given_flags(args, *BRAIN_DEFAULTS, "tagged")
        if given:
            flags = ", ".join(given)
            verb = "describes" if len(given) == 1 else "describe"
            raise ValueError(
                f"{flags} {verb} the built-in brain slices; drop "
                f"{'it' if len(given) == 1 else 'them'} with --data {args.data}"
            )
    if args.data == "brain":
        built_in_named("brain", "--data")
    if args.tag_correlation is not None and not args.tagged:  # it shapes the marker only
        raise ValueError(
            "`--tag-correlation` sets how often the marker goes with the label: add --tagged"
        )
    if getattr(args, "val_n", None) == 0 and getattr(args, "val_seed", None) is not None:
        raise ValueError(  # it was ignored without a word
            "`--val-seed` chooses the validation slices, and --val-n 0 asks for none: drop one"
        )
    for key, default in (BRAIN_DEFAULTS | {"n": n}).items():
        if key == "tag_correlation" and not args.tagged:  # no marker: no correlation (the
            continue  # card listed 0.5 beside "tagged": false)
        if hasattr(args, key) and getattr(args, key) is None:
            setattr(args, key, default)
    check_int("--n", args.n)
    if args.tag_correlation is not None:
        check_real("--tag-correlation", args.tag_correlation, low=0.0, high=1.0)
    check_int("--batch-size", args.batch_size)
    if hasattr(args, "val_n"):
        check_int("--val-n", args.val_n, minimum=0)


DATA_FLAGS = "data_flags.json"
"""Written in a run folder next to its checkpoint: the flags that chose the built-in training
slices, so that a rerun on other slices is refused naming the flag (the checkpoint's data
digest can only say that the images differ)."""


def _same_data(args: argparse.Namespace) -> dict[str, Any]:
    """Refuse, before any slice is rendered, a rerun into a folder whose checkpoint was
    trained on slices that other data flags choose; return this run's flags, for
    :func:`_record_data`. Only the built-in slices' flags are kept: a user file may move
    without its content changing, and its content is checked by the checkpoint's digest."""
    from cfx.run_key import changes

    kind = args.train_command  # "generator" or "classifier"
    now: dict[str, Any] = {"--data": "brain" if args.data == "brain" else "a file"}
    if args.data == "brain":
        now |= {"--n": args.n, "--data-seed": args.data_seed, "--tagged": args.tagged}
        if args.tagged:
            now["--tag-correlation"] = args.tag_correlation
    out = Path(args.out)
    record = out / DATA_FLAGS
    if not (out / "checkpoint.safetensors").exists():  # a new run (or one not yet saved)
        return now | {"kind": kind}
    try:  # none, or unreadable: the checkpoint's own digest decides alone
        before = json.loads(record.read_text()) if record.exists() else None
    except (OSError, ValueError):
        before = None
    if isinstance(before, dict) and before.get("kind", kind) != kind:  # older records: no kind
        raise ForeignRunError(
            f"`--out` ({out}) holds a {before['kind']}'s training run, not a {kind}'s; use a "
            "new folder"
        )
    if isinstance(before, dict):
        before.pop("kind", None)
    if isinstance(before, dict) and before != now:
        # flags that follow from others are left out: a file for the built-in slices made
        # every slice flag "unset now", --tagged its --tag-correlation (neither given)
        shown_before, shown_now = before, now
        if before.get("--data") != now["--data"]:
            shown_before, shown_now = {"--data": before.get("--data")}, {"--data": now["--data"]}
        elif before.get("--tagged") != now.get("--tagged"):
            shown_before = {k: v for k, v in before.items() if k != "--tag-correlation"}
            shown_now = {k: v for k, v in now.items() if k != "--tag-correlation"}
        raise ValueError(
            f"`--out` ({out}) holds a checkpoint of a different run; use a new folder or "
            f"the same data flags ({changes(shown_before, shown_now)})"
        )
    return now | {"kind": kind}


WRITES = ("model", "training.json")
"""What a finished run writes in ``--out`` beside its checkpoint (and would replace)."""


def _not_something_else(out: Path) -> None:
    """Refuse an ``--out`` that holds a model or a training log and no checkpoint to resume:
    another run's (a finished run whose checkpoint was deleted, a ``cfx augment`` folder, a
    folder of one's own) would be overwritten. Other files are left as they are."""
    if not out.is_dir() or (out / "checkpoint.safetensors").exists():
        return
    found = [name for name in WRITES if (out / name).exists()]
    if not found:
        return
    finished = (
        " (a finished run whose checkpoint.safetensors was deleted cannot be trained on: "
        "start it again in a new folder)"
        if "model" in found
        else ""
    )
    raise ForeignRunError(
        f"`--out` ({out}) holds {' and '.join(found)} and no checkpoint to resume: the run would "
        f"overwrite {'them' if len(found) > 1 else 'it'}; use a new folder{finished}"
    )


def _record_data(out: Path, flags: dict[str, Any]) -> None:
    """Write ``flags`` (from :func:`_same_data`) for a run about to start in ``out``; a folder
    holding a checkpoint keeps its record (a checkpoint of an older cfx has none: its own
    digest decides, and a record written now could name the wrong slices)."""
    if not (out / "checkpoint.safetensors").exists():
        out.mkdir(parents=True, exist_ok=True)
        write_atomic(out / DATA_FLAGS, json.dumps(flags, indent=1) + "\n")


def _brain(args: argparse.Namespace, n: int, seed: int) -> BrainSlices:
    from cfx.data.brain import make_dataset

    return make_dataset(
        n,
        seed=seed,
        tagged=args.tagged,
        tag_correlation=args.tag_correlation if args.tagged else None,
        show_progress=not args.no_progress,
    )


def _user_images(
    path: str, flag: str, channels: int | None = None
) -> tuple[torch.Tensor, list[Path] | None]:
    """The images of ``--data``/``--val-data``: a .npy/.pt batch, or a folder of image files
    (read at their own size, one size for all, with ``channels`` or the first file's), and
    the files they were read from (None for a batch), for labels matched by file name."""
    from cfx.data.io import load_images
    from cfx.inversion import unit_range_notice

    files = None
    if Path(path).is_dir():
        from cfx.data.image_files import image_files, read_images

        files = image_files(Path(path), flag)
        x = read_images(files, channels, name=flag)  # None: the first file's channels
        unit_range_notice(x, flag)
        return x, files
    if Path(path).suffix.lower() not in (".npy", ".pt"):
        if not Path(path).exists():  # a typed name that is not there (nor 'brain')
            what = "file" if Path(path).suffix else "folder"
            raise FileNotFoundError(
                f"`{flag}` {what} not found: {path} (it takes 'brain', a .npy/.pt image file "
                "or a folder of image files)"
            )
        raise ValueError(
            f"`{flag}` must be 'brain', a .npy/.pt image file or a folder of image files, "
            f"got {path!r}"
        )
    x = load_images(path, name=flag, batch=True)  # (N, H, W) too: grey images
    if x.shape[-1] in (1, 3, 4) and x.shape[1] not in (1, 3, 4):  # (N, H, W, C)
        raise ValueError(
            f"`{flag}` holds {tuple(x.shape)}: images saved channels last (N, H, W, C)? "
            "save x.transpose(0, 3, 1, 2), a batch (N, C, H, W)"
        )
    unit_range_notice(x, flag)  # [0, 1] images where cfx expects [-1, 1]
    return x, files


def _images(args: argparse.Namespace) -> torch.Tensor:
    if args.data == "brain":
        return _brain(args, args.n, args.data_seed).images
    return _user_images(args.data, "--data")[0]


def _out_checks(args: argparse.Namespace) -> None:
    """``--out`` before anything is rendered or read: a folder that can be made or written
    in, not a data folder, and not a folder of something else."""
    out = writable_later(Path(args.out))
    for flag in ("data", "val_data"):
        given = getattr(args, flag, None)
        if given is not None and given != "brain":
            why = "the run's checkpoint and model would be mixed in with your images"
            not_the_input_folder(out, Path(given), f"--{flag.replace('_', '-')}", why)
    _not_something_else(out)


def run_generator(args: argparse.Namespace) -> int:
    from cfx.models.brain_gan import BrainGANConfig
    from cfx.training.generator import (
        GeneratorTrainingConfig,
        adversarial_never_starts,
        train_generator,
    )

    settings = {  # checked before any slice is rendered or file read
        "steps": args.steps,
        "batch_size": args.batch_size,
        "adv_factor": args.adv_factor,
        "adv_start": args.adv_start,
        "seed": args.seed,
    }
    shape = {"latent_dim": args.latent_dim, "width": args.width}
    _out_checks(args)
    _shared_options(args, 60000)  # the flags' own checks first, under their names
    check_int("--steps", args.steps)
    with by_flag(args):
        GeneratorTrainingConfig(**settings, model=BrainGANConfig(**shape))
    if args.labels is not None:
        raise ValueError("`--labels` does nothing here: a generator learns from images alone")
    flags = _same_data(args)
    images = _images(args)
    if tuple(images.shape[-2:]) != (64, 64):  # before the run folder records anything
        raise ValueError(
            f"`--data` must hold 64x64 images, the size the generator's architecture makes, "
            f"got {images.shape[-1]}x{images.shape[-2]} (width x height): resize them (and "
            "explain and train classifiers at 64x64)"
        )
    config = GeneratorTrainingConfig(
        **settings, model=BrainGANConfig(channels=int(images.shape[1]), **shape)
    )
    _record_data(Path(args.out), flags)
    if adversarial_never_starts(config):  # said by the flags; the library's record is held
        log.warning(
            "--adv-start %d is not below --steps %d: the adversarial loss never switches on, "
            "and the generator learns from the reconstruction loss alone (lower --adv-start, "
            "or give --adv-factor 0 to say so)",
            args.adv_start,
            args.steps,
        )
    start = time.perf_counter()
    with _training(args), held([logging.getLogger("cfx.training.generator")], "cfx_adv_never"):
        model, report = train_generator(
            images, args.out, config, show_progress=not args.no_progress
        )
    images_n = int(images.shape[0])
    print(_save_run(Path(args.out), model, report, start, command=args, images=images_n))
    return 0


_FLAGS = {
    "augment": "augmentation (--no-augment)",
    "channels": "image channels of --data (1 grey, 3 colour)",
}
"""Training settings whose flag is not ``--`` + their name."""


@contextmanager
def _training(args: argparse.Namespace) -> Iterator[None]:
    """Around a training call: a refused resume names the command's flags (``--out``,
    ``--batch-size``, ...) where the library names its arguments (``out``,
    ``config.batch_size``); on Ctrl-C, say that ``--out``'s ``model/`` (from an earlier
    finished run, if there is one) is not the checkpoint the interrupted run saved."""
    out = Path(args.out)
    try:
        yield
    except ValueError as err:
        text = str(err)
        # the changes are the last parenthesised list; paths before it stay as they are
        head, paren, changes = text.replace("`out` (", "`--out` (", 1).rpartition(" (")
        changes = _arch_change(changes)
        flagged = (
            head
            + paren
            + re.sub(
                r"\b(?:config\.model|config|arch)\.([a-z_]+)",
                lambda m: (
                    _FLAGS.get(m[1])
                    or (f"--{m[1].replace('_', '-')}" if hasattr(args, m[1]) else m[0])
                ),
                changes,
            )
        )
        if flagged == text:
            raise
        raise ValueError(flagged) from err
    except KeyboardInterrupt:
        if (out / "model").is_dir():
            log.warning(
                "%s still holds the model of the last finished run, not this run's checkpoint: "
                "rerun the same command to finish and update it",
                out / "model",
            )
        raise


def _arch_change(changes: str) -> str:
    """Another ``--arch`` in a run's folder, said as the flag: the library names the model's
    class and every setting of its config that differs ("arch.blocks: 4 before, unset now;
    model: "BrainCNN" before, "BrainOracle" now"), which follow from the flag."""
    arch = {
        "BrainCNN": "brain-cnn",
        "BrainOracle": "brain-oracle",
        "BrainSegmenter": "brain-segmenter",
    }
    model = re.search(r'\bmodel: "(\w+)" before, "(\w+)" now', changes)
    if model is None or not {model[1], model[2]} <= set(arch) or not changes.endswith(")"):
        return changes
    said = f"--arch: {arch[model[1]]} before, {arch[model[2]]} now"
    kept = [c for c in changes[:-1].split("; ") if not c.startswith(("arch.", "model: "))]
    return "; ".join([said, *kept]) + ")"


def _targets(
    args: argparse.Namespace,
    images: torch.Tensor,
    labels: Path | None,
    masks: Path | None,
    what: str,
    files: list[Path] | None = None,
    images_flag: str = "--data",
) -> torch.Tensor:
    """Labels (classify) or masks (segment) for user images, with a clear error when missing;
    for images read from ``files``, labels and mask files may name them."""
    from cfx.data.image_files import load_masks_for
    from cfx.data.io import load_labels

    if args.arch == "brain-segmenter":
        if masks is None:
            raise ValueError(f"`{what}` is required for --arch brain-segmenter on user data")
        return load_masks_for(Path(masks), images, files, what, images_name=images_flag)
    if labels is None:
        raise ValueError(f"`{what}` is required for --arch {args.arch} on user data")
    return load_labels(labels, int(images.shape[0]), name=what, files=files)


def _model_card(folder: Path, args: argparse.Namespace, report: Any, extra: dict) -> None:
    """``folder/README.md``: what trained the weights (the command's settings, the data),
    what they scored last, and the weights' SHA-256, which loading the folder checks (as the
    zoo's cards are checked)."""
    from cfx.zoo.pretrained import TRAINED_CARD, sha256

    def shown(v: object) -> str:  # 12000, not 1.2e+04
        return f"{v:.0f}" if isinstance(v, float) and v.is_integer() else f"{v:.4g}"

    # the built-in slices' options do not describe a run on your own data
    unused = (*BRAIN_DEFAULTS, "tagged") if args.data != "brain" else ()
    settings = card_settings(args, leave_out=unused)
    if "images" in extra:
        settings["images"] = extra["images"]  # how many --data held
    if isinstance(settings.get("steps"), int) and settings["steps"] < report.steps:
        settings["steps"] = report.steps  # a rerun asked for fewer: the weights have these
    last = report.history[-1] if report.history else {}
    lines = [
        f"# {extra.get('arch', 'brain-gan')} {TRAINED_CARD}",
        "",
        f"Trained for {counted(report.steps, 'step')} ({report.seconds:.0f} s in all). "
        "Settings (the "
        "command's options; `data` is 'brain' for the built-in slices, else the file or "
        "folder of images it read):",
        "",
        "```json",
        json.dumps(settings, indent=1, default=str),
        "```",
        "",
        "Last logged: " + (", ".join(f"{k} {shown(v)}" for k, v in last.items()) or "nothing"),
        "",
        "The run's full history is in `../training.json`.",
        "",
        f"sha256 of model.safetensors: {sha256(folder / 'model.safetensors')}",
        "",
    ]
    write_atomic(folder / "README.md", "\n".join(lines))


def _held_out(images: torch.Tensor, val_images: torch.Tensor) -> None:
    """Refuse validation images that are all training images, and warn about any that are
    (the built-in slices refuse --val-seed == --data-seed for the same reason)."""
    from cfx.run_key import tensors_sha256

    train = {tensors_sha256(x) for x in images}
    # a blank image (a slice past the edge of a volume) may well repeat in both: not counted
    varied = [x for x in val_images if bool(x.max() > x.min())]
    shared = sum(tensors_sha256(x) in train for x in varied)
    if varied and shared == len(varied):
        raise ValueError(
            "`--val-data` holds only images of --data: validation must be held out from "
            "training, or its accuracy says nothing about new images"
        )
    if shared:
        log.warning(
            "`--val-data`: %d of its %d images (not counting blank ones) are also in --data, "
            "pixel for pixel; their accuracy is not measured on new images",
            shared,
            len(varied),
        )


def _model(
    arch: str, channels: int, width: int | None, classes: int, size: tuple[int, int]
) -> BrainCNN | BrainOracle | BrainSegmenter:
    """A new model of ``arch`` for ``channels``-channel images of ``size`` ``(H, W)`` (kept
    in its config, so that other commands can warn on other sizes)."""
    from cfx.models import classifiers as c

    extra: dict[str, Any] = {"image_size": size} | ({} if width is None else {"width": width})
    if arch == "brain-cnn":
        return c.BrainCNN(c.BrainCNNConfig(channels=channels, num_classes=classes, **extra))
    elif arch == "brain-oracle":
        return c.BrainOracle(c.BrainOracleConfig(channels=channels, num_classes=classes, **extra))
    elif arch == "brain-segmenter":
        return c.BrainSegmenter(c.BrainSegmenterConfig(channels=channels, **extra))
    else:
        raise UnknownNameError(f"unknown --arch {arch!r}; expected one of {ARCHS}")


def run_classifier(args: argparse.Namespace) -> int:
    from cfx.training.classifier import ClassifierTrainingConfig, train_classifier

    segment = args.arch == "brain-segmenter"
    _out_checks(args)
    _shared_options(args, 20000)
    if args.no_augment and (args.blur > 0 or args.noise > 0):
        raise ValueError("`--blur` and `--noise` are augmentations: drop them or --no-augment")
    if segment and args.balanced:
        raise ValueError(
            "`--balanced` weights a classifier's classes; brain-segmenter's targets are masks"
        )
    check_int("--epochs", args.epochs)
    with by_flag(args):  # checked before any slice is rendered or file read
        config = ClassifierTrainingConfig(
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            augment=not args.no_augment,
            blur=args.blur,
            noise=args.noise,
            balanced=args.balanced,
            seed=args.seed,
        )
        if args.width is not None:  # the architecture's own check, before the data is read
            _model(args.arch, 1, args.width, 2, (64, 64))
    val: tuple[torch.Tensor, torch.Tensor] | None = None
    classes = 2
    if args.data == "brain":
        if args.labels is not None or args.masks is not None:
            raise ValueError(
                "`--labels`/`--masks` go with your own --data file; the built-in brain slices "
                "bring their own"
            )
        if args.val_data is not None or args.val_targets is not None:
            raise ValueError(
                "`--val-data`/`--val-targets` go with your own --data file; the built-in "
                "validation slices are chosen by --val-n and --val-seed"
            )
    else:  # your own data: each flag the run would not read is named, not dropped
        if segment and args.labels is not None:
            raise ValueError(
                "`--labels` go with a classifier; --arch brain-segmenter learns masks: pass --masks"
            )
        if not segment and args.masks is not None:
            raise ValueError(
                f"`--masks` go with --arch brain-segmenter; --arch {args.arch} learns labels: "
                "pass --labels"
            )
        if args.val_targets is not None and args.val_data is None:
            raise ValueError(
                "`--val-targets` go with --val-data (the validation images they label); pass "
                "both, or neither"
            )
        if args.val_data is not None and args.val_targets is None:
            raise ValueError(
                f"`--val-data` needs --val-targets, its images' "
                f"{'masks' if segment else 'labels'} (as --{'masks' if segment else 'labels'} "
                "are --data's); pass both, or neither"
            )
    flags = _same_data(args)
    if args.data == "brain":
        train = _brain(args, args.n, args.data_seed)
        images, targets = train.images, train.masks if segment else train.labels
        if args.val_n > 0:
            if args.val_seed == args.data_seed:
                raise ValueError(
                    f"`--val-seed` must differ from `--data-seed` ({args.data_seed}) so the "
                    "validation slices are not training slices"
                )
            v = _brain(args, args.val_n, args.val_seed)
            val = (v.images, v.masks if segment else v.labels)
    else:
        images, files = _user_images(args.data, "--data")
        targets = _targets(
            args, images, args.labels, args.masks, "--masks" if segment else "--labels", files
        )
        if args.val_data is not None:
            val_images, val_files = _user_images(args.val_data, "--val-data", images.shape[1])
            if val_images.shape[1:] != images.shape[1:]:
                raise ValueError(
                    f"`--val-data` must hold images shaped like --data's "
                    f"{tuple(images.shape[1:])}, got {tuple(val_images.shape[1:])}"
                )
            _held_out(images, val_images)
            val = (
                val_images,
                _targets(
                    args,
                    val_images,
                    args.val_targets,
                    args.val_targets,
                    "--val-targets",
                    val_files,
                    "--val-data",
                ),
            )
        if not segment:  # as many classes as the labels name (at least 2), each with images
            if targets.unique().numel() == 1:  # "none is in class 1" hid the cause
                raise ValueError(
                    f"`--labels` put all {len(targets)} images in class {int(targets[0])}: a "
                    "classifier learns from images of two classes or more"
                )
            classes = max(2, int(targets.max()) + 1)
            empty = sorted(set(range(classes)) - set(targets.unique().tolist()))
            if empty:
                raise ValueError(
                    f"`--labels` name classes 0..{classes - 1} but none of the images is in "
                    f"class {', '.join(map(str, empty))}; labels must be 0..K-1 for K classes"
                )
            counts = targets.bincount(minlength=classes).tolist()
            rare = [k for k, n in enumerate(counts) if n * 100 < len(targets) and n <= 5]
            if classes > 2 and rare:  # one stray label made a 3-class model in silence
                log.warning(
                    "`--labels` make a %d-class model, and class %s has only %s of the %d "
                    "images: a stray label? check the labels if you meant %d classes",
                    classes,
                    ", ".join(map(str, rare)),
                    " / ".join(str(counts[k]) for k in rare),
                    len(targets),
                    classes - len(rare),
                )
            if val is not None and int(val[1].max()) >= classes:
                raise ValueError(
                    f"`--val-targets` hold class {int(val[1].max())}, which no training label "
                    f"names (0..{classes - 1})"
                )
    h, w = images.shape[2:]
    model = _model(args.arch, int(images.shape[1]), args.width, classes, (int(h), int(w)))
    _record_data(Path(args.out), flags)
    start = time.perf_counter()
    # the range was noticed naming the flag, when the data was read
    with _training(args), held([logging.getLogger("cfx.inversion")], "cfx_unit_range"):
        model, report = train_classifier(
            model,
            images,
            targets,
            args.out,
            config,
            task="segment" if segment else "classify",
            val=val,
            show_progress=not args.no_progress,
        )
    extra = {"arch": args.arch, "images": int(images.shape[0])}
    extra |= {} if segment else {"classes": classes}
    print(_save_run(Path(args.out), model, report, start, command=args, **extra))
    return 0


def _saved_steps(out: Path) -> int | None:
    """The steps ``out/training.json`` says the saved model was trained for, or None."""
    try:
        steps = json.loads((out / "training.json").read_text(encoding="utf-8"))["summary"]["steps"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return steps if isinstance(steps, int) else None


def _save_run(
    out: Path,
    model: Any,
    report: Any,
    start: float,
    *,
    command: argparse.Namespace | None = None,
    **extra: Any,
) -> Path:
    """Write ``out/model`` (save_pretrained, with a model card) and ``out/training.json``;
    return the model folder. A rerun of a finished run, which trained nothing, keeps them as
    they were: its card recorded the rerun's spelling of the data (another path to it, a
    shuffled labels file of the same labels) and training.json its seconds."""
    if _saved_steps(out) == report.steps and (out / "model" / "model.safetensors").is_file():
        print(
            f"nothing trained: the run in {out} had finished ({counted(report.steps, 'step')}); "
            f"its model, card and {out / 'training.json'} are kept as they were",
            file=sys.stderr,
        )
        return out / "model"
    folder = model.save_pretrained(out / "model")
    if command is not None:
        _model_card(folder, command, report, extra)
    summary: dict[str, Any] = {
        **extra,
        "steps": report.steps,
        "train_seconds_total": report.seconds,
        "this_run_seconds": time.perf_counter() - start,
        "last": report.history[-1] if report.history else {},
    }
    write_atomic(  # whole or not at all, as every file cfx writes
        out / "training.json",
        json.dumps({"summary": summary, "history": list(report.history)}, indent=1),
    )
    last = ", ".join(
        f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in summary["last"].items()
    )
    # stderr: stdout stays the model folder alone, for scripts
    print(
        f"{counted(report.steps, 'step')} ({report.seconds:.0f} s in all); last logged: "
        f"{last or 'nothing'}; "
        f"history in {out / 'training.json'}",
        file=sys.stderr,
    )
    return folder
