"""``cfx trajectory``: boundary-crossing sequences for built-in slices or the user's images."""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from cfx.cli.console import keeping_warnings
from cfx.cli.models import checked_source, load_model
from cfx.cli.options import by_flag, given_flags
from cfx.cli.paths import (
    not_a_file,
    not_the_input_folder,
    out_folder,
    out_path,
    training_run_notice,
)
from cfx.errors import UnknownNameError, check_int, check_real, first_names, shown_rows
from cfx.files import locked_folder, write_atomic

if TYPE_CHECKING:
    import torch

    from cfx.zoo import ModelSource

log = logging.getLogger(__name__)

CLASS_NAMES = {"healthy": 0, "tumour": 1, "tumor": 1}
METHODS = ("monotone", "gradient", "localised")
DEFAULT_N, DEFAULT_SEED = 8, 2
UNFINISHED = ".unfinished"
"""Where --out keeps the finished batches of a run until its outputs are written."""
ORACLE = "brain-oracle"
"""``--oracle``'s default."""
DEFAULT_MARGINS = {0: 0.99, 1: 0.999}
"""``--margin`` per target class: about brain-cnn's median confidence on real healthy slices
(0.989), and 0.999 towards tumour (its median on real tumour slices is 0.9999; chosen on
validation, BENCHMARKS.md ninth run)."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "trajectory",
        help="walk images across a classifier's decision boundary",
        description="Walk images across a classifier's decision boundary and write, in --out: "
        "result.npz (frames, probs, oracle_probs, latents, source, target, levels, success, "
        "in_target, lambdas, edit_masks where they apply), summary.json (the setup, the "
        "metrics and one row per image), strips.png (one row per image: the input, then the "
        "frames, titled f = classifier and o = oracle target probability), changes.png "
        "(where each path changed the image), sequence_NNN.gif "
        "(each path played forward and back) and probabilities.png. Images are explained "
        "--batch-size at a time; rerunning an interrupted command resumes after its last "
        "finished batch. --no-figures writes result.npz and summary.json only.",
    )
    p.add_argument(
        "--classifier",
        default=None,
        help="classifier to explain: a zoo name, a model folder written by "
        "save_pretrained or `cfx train classifier --out DIR` (DIR or DIR/model), or a hub id "
        "(default: brain-cnn)",
    )
    p.add_argument(
        "--generator",
        default=None,
        help="generator (its `encode`, if any, starts the inversion; without one the "
        "inversion starts from the zero latent and needs --inversion-steps > 0): a zoo name, "
        "a model folder or a hub id (default: "
        "brain-gan, which redraws any image as a brain slice: name your own for other images)",
    )
    p.add_argument(
        "--oracle",
        default=None,
        help="independent classifier for evaluation: a zoo name, a model folder, "
        f"a hub id, or 'none' to skip (default: {ORACLE} with the zoo's generator, which "
        "draws the built-in brain slices it judges as healthy / tumour; none with your own "
        "generator, or with a classifier of other than two classes)",
    )
    p.add_argument(
        "--target",
        required=True,
        help="target class: healthy, tumour, or an index of the classifier's outputs "
        "(other than 0/1 only with --input)",
    )
    p.add_argument(
        "--method",
        default="monotone",
        choices=METHODS,
        help="monotone = Option 2, gradient = Option 1, localised = Option 1 confined to the "
        "smallest region that still flips the classifier",
    )
    p.add_argument(
        "--localise",
        action="store_true",
        help="with --method monotone: confine the path to the smallest region that flips",
    )
    p.add_argument("--steps", type=int, default=10, help="frames T after the start")
    p.add_argument(
        "--margin",
        type=float,
        default=None,
        help="target probability the last frame must reach, about the classifier's typical "
        "confidence on real members of the target class (default: 0.99; 0.999 towards tumour "
        "for the zoo's brain classifiers)",
    )
    p.add_argument(
        "--n", type=int, default=None, help=f"built-in slices to explain (default: {DEFAULT_N})"
    )
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help=f"seed of the built-in slices (default: {DEFAULT_SEED}); the slices are the "
        "first --n of the opposite class in a set drawn for that --n, so --n 2 and --n 8 "
        "need not share their first slices",
    )
    p.add_argument(
        "--input",
        type=Path,
        help="the user's images instead of built-in slices: an image file (.png/.jpg/.bmp/.tif, "
        "converted to the generator's channels and resized to its size), a folder of them "
        "(read in name order as text: slice_10 before slice_2) or a .npy/.pt batch "
        "(N, C, H, W), (N, H, W) for grey, one image (C, H, W) or one grey image (H, W), "
        "floats in [-1, 1] or uint8",
    )
    p.add_argument(
        "--out",
        type=out_path,
        default=Path("cfx-trajectory"),
        help="output folder, created if missing",
    )
    p.add_argument(
        "--inversion-steps",
        type=int,
        default=100,
        help="latent-optimisation steps of the inversion; 0 = the encoder only",
    )
    p.add_argument(
        "--inversion-classifier-weight",
        type=float,
        default=0.0,
        help="> 0: the inversion also keeps the classifier's decision on each source (weight "
        "of KL(f(x) || f(G(z))), e.g. 0.01), for paths whose reconstruction the classifier "
        "already puts in the target while the source is not there (the warning names those "
        "rows); 0 = off",
    )
    p.add_argument(
        "--iterations",
        type=int,
        default=None,
        help=(
            "with --method monotone: Adam iterations of the joint optimisation; 0 keeps the "
            "warm start (default: 16)"
        ),
    )
    p.add_argument(
        "--background",
        choices=("reconstruction", "source"),
        default="reconstruction",
        help="localised paths: what frames show outside the edited region, the source's "
        "reconstruction G(z_0) or the input itself",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=32,
        help="images explained at a time. Each finished batch is kept in "
        "OUT/.unfinished until the outputs are written, so rerunning an interrupted command "
        "(same arguments, --batch-size included) resumes where it stopped. Rounding differs "
        "with batch size, so a few images can end elsewhere in other batches; 1 makes each "
        "image's result independent of the others, at about twice the time",
    )
    p.add_argument(
        "--image-size",
        default=None,
        help="frame size of a diffusers VAE generator in pixels, one side or WxH, width x "
        "height as cfx prints sizes (e.g. 64 or 96x64; default: "
        "its config's sample_size, 256-1024 px for Stable Diffusion VAEs, to which smaller "
        "inputs are upscaled). Other generators draw one size",
    )
    p.add_argument(
        "--no-figures",
        action="store_true",
        help="write result.npz and summary.json only: no strips, changes, GIFs or "
        "probability plot, for a large batch read by a script (drawing them takes about a "
        "tenth of a run). Figures an earlier cfx run left in --out are deleted",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(run=run_trajectory)


def parse_size(text: str) -> tuple[int, int]:
    """``--image-size`` as ``(H, W)``: ``"64"`` -> (64, 64), ``"96x64"`` (width x height, as
    cfx prints sizes everywhere) -> (64, 96)."""
    parts = text.lower().split("x")
    if len(parts) in (1, 2) and all(p.strip().isdigit() and int(p) > 0 for p in parts):
        return int(parts[-1]), int(parts[0])
    raise ValueError(
        f"`--image-size` must be one side or WxH in pixels (e.g. 64 or 96x64), got {text!r}"
    )


def parse_target(text: str) -> int:
    key = text.strip().lower()
    if key in CLASS_NAMES:
        return CLASS_NAMES[key]
    if key.isdigit():
        return int(key)
    raise UnknownNameError(
        f"`--target` must be healthy, tumour or a class index (0/1 for the zoo's brain "
        f"models; any class of your own classifier), got {text!r}"
    )


def load_input(path: Path, shape: tuple[int, ...], files: list[Path] | None = None) -> torch.Tensor:
    """Images in [-1, 1] shaped ``(N, *shape)`` from an image file (converted to ``shape`` =
    ``(C, H, W)`` by :func:`cfx.data.image_files.read_image`: grey for one channel, RGB for
    three, 16-bit grey scaled by 65535, resized bilinearly), a folder of image files (one
    image each, in name order) or a .npy/.pt batch (which must already have that shape; one
    image, or grey images without a channel axis, are accepted too). Warns about inputs that
    load but look mis-scaled (16-bit files using only 12 bits; a stretched aspect; a
    multi-page file, of which the first page is read); a batch with no dark pixel is warned
    about when the explainer starts. ``files``: the image files
    :func:`~cfx.data.image_files.check_input_path` already listed for ``path`` (a folder is
    then not listed again); None checks ``path`` here."""
    from cfx.data.image_files import check_input_path, read_images

    files = check_input_path(path) if files is None else files
    channels, h, w = shape
    if files is not None:
        return read_images(files, channels, (h, w))
    from cfx.data.io import load_images

    # a batch with no dark pixel is warned about by the explainer (cfx.trajectory.start)
    return load_images(path, name="--input", shape=(channels, h, w))


def builtin_sources(n: int, seed: int, target: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``n`` test slices of the class opposite to ``target`` (and their lesion masks)."""
    import torch

    from cfx.data.brain import make_dataset

    data = make_dataset(max(4 * n, 16), seed=seed)
    pick = torch.nonzero(data.labels != target).flatten()[:n]
    return data.images[pick], data.masks[pick]


@keeping_warnings  # summary.json repeats what the run warned
def run_trajectory(args: argparse.Namespace, notes: list[str]) -> int:
    from cfx.inversion import zero_image
    from cfx.run_key import module_sha256
    from cfx.trajectory import (
        GradientAscent,
        LocalisedAscent,
        MonotonePath,
        explain_in_chunks,
        save_result,
    )
    from cfx.trajectory.chunks import finished_chunks
    from cfx.trajectory.start import SAME_ORACLE
    from cfx.zoo import ZOO

    # every check that needs no model comes first, so a typo costs no loading or computing
    target = parse_target(args.target)
    if target not in (0, 1) and args.input is None:
        raise ValueError(
            f"`--target` must be healthy (0) or tumour (1) for the built-in brain slices, got "
            f"{args.target!r}; a class of your own classifier goes with your images (--input)"
        )  # with --input, the explainer checks the index against the classifier's outputs
    given = given_flags(args, "n", "seed")
    if args.input is not None and given:
        raise ValueError(  # only the flags given (--seed alone was told "`--n` and `--seed`")
            f"{' and '.join(f'`{f}`' for f in given)} "
            f"{'chooses' if len(given) == 1 else 'choose'} built-in slices; drop "
            f"{'it' if len(given) == 1 else 'them'} with --input"
        )
    from cfx.data.image_files import check_input_path

    listed = None if args.input is None else check_input_path(args.input)
    n = DEFAULT_N if args.n is None else args.n
    check_int("--n", n)
    check_int("--steps", args.steps)
    check_int("--inversion-steps", args.inversion_steps, minimum=0)
    check_real("--inversion-classifier-weight", args.inversion_classifier_weight, low=0.0)
    if args.inversion_classifier_weight > 0 and args.inversion_steps == 0:
        raise ValueError(
            "`--inversion-classifier-weight` acts in the inversion's optimisation steps: it "
            "needs `--inversion-steps` > 0, got 0"
        )
    check_int("--batch-size", args.batch_size)
    size = None if args.image_size is None else parse_size(args.image_size)
    if args.iterations is not None:
        check_int("--iterations", args.iterations, minimum=0)
    localised = args.method == "localised" or args.localise
    if args.background != "reconstruction" and not localised:
        raise ValueError(
            "`--background` applies to localised paths: --method localised or --localise"
        )
    if args.iterations is not None and args.method != "monotone":
        raise ValueError(f"`--iterations` goes with --method monotone, got --method {args.method}")
    defaulted = [
        flag for flag in ("--generator", "--classifier") if getattr(args, flag[2:]) is None
    ]
    args.generator = args.generator or "brain-gan"
    args.classifier = args.classifier or "brain-cnn"
    if args.input is not None and defaulted:  # brain-gan redraws any image as a brain slice
        log.warning(
            "with --input, %s (the default%s), trained on the built-in brain slices: %s; name "
            "your own unless your images are such slices",
            " and ".join(f"{flag} is {getattr(args, flag[2:])}" for flag in defaulted),
            "s" if len(defaulted) > 1 else "",
            " and ".join(
                "brain-gan redraws any image as a brain slice"
                if flag == "--generator"
                else "brain-cnn judges any image as one"
                for flag in defaulted
            ),
        )
    # 0.999 towards tumour is brain-cnn's confidence on real tumour slices (chosen on
    # validation); another classifier's class 1 is no tumour
    brain = args.classifier in ZOO
    default_margin = DEFAULT_MARGINS.get(target, 0.99) if brain else 0.99
    margin = default_margin if args.margin is None else args.margin
    check_real("--margin", margin, low=0.5, high=1.0, open_low=True, open_high=True)
    if args.localise and args.method != "monotone":
        raise ValueError(f"`--localise` goes with --method monotone, got --method {args.method}")
    out: Path = args.out
    not_a_file(out)  # before the models load (out_folder: below)
    if (out / UNFINISHED).exists() and not (out / UNFINISHED).is_dir():
        raise ValueError(
            f"`--out`: {out / UNFINISHED} must be a folder (it keeps the finished batches); "
            "delete the file"
        )
    not_the_input_folder(out, args.input)
    training_run_notice(out)
    sources = {
        "generator": checked_source("--generator", args.generator, "generator"),
        "classifier": checked_source("--classifier", args.classifier, "classifier"),
    }
    # before the oracle's default is warned about: a refused run printed a warning first
    if size is not None and not sources["generator"].class_path.endswith(":DiffusersAutoencoder"):
        raise ValueError(
            f"`--image-size` sets the frame size of a diffusers VAE generator; --generator "
            f"{args.generator} draws one size: drop --image-size"
        )
    oracle_defaulted = args.oracle is None
    if isinstance(args.oracle, str) and args.oracle.strip().lower() == "none":
        args.oracle = "none"  # NONE, None: as --target takes Healthy
    if args.oracle is None:  # brain-oracle judges brain slices: on other images it is no judge
        args.oracle = ORACLE if args.generator in ZOO else "none"
    # said once the arguments are checked: a refused run printed this warning first
    no_oracle = oracle_defaulted and args.oracle == "none"
    if args.oracle != "none":
        sources["oracle"] = checked_source("--oracle", args.oracle, "classifier", allow_none=True)

    generator = load_model("--generator", sources["generator"])
    if size is not None:  # the same VAE at another frame size (checked against its factor)
        from cfx.models.diffusers_vae import DiffusersAutoencoder

        try:
            generator = DiffusersAutoencoder(
                cast(DiffusersAutoencoder, generator).vae, image_size=size
            )
        except ValueError as err:
            raise ValueError(f"`--image-size`: {err}") from None
    seed = DEFAULT_SEED if args.seed is None else args.seed
    frame = zero_image(generator)  # (1, C, H, W): the inputs' shape, what both models are given
    drawn = tuple(frame.shape[1:])
    files = None  # the files of an --input folder, in the order of the rows
    if args.input is not None:
        if args.input.is_dir() and listed is not None:
            files = [f.name for f in listed]
        x, masks = load_input(args.input, drawn, files=listed), None
    else:
        from cfx.data.brain import SIZE

        if drawn != (1, SIZE, SIZE):  # the built-in slices would fail the generator's shape
            raise ValueError(
                f"`--input` is needed: --generator {args.generator} draws images shaped "
                f"{drawn} and the built-in brain slices (used without --input) are "
                f"{(1, SIZE, SIZE)}; pass your images with --input"
            )
        x, masks = builtin_sources(n, seed, target)
    classifier = load_model("--classifier", sources["classifier"])
    oracle = None if args.oracle == "none" else load_model("--oracle", sources["oracle"])
    if oracle is not None and module_sha256(oracle) == module_sha256(classifier):
        log.warning(SAME_ORACLE, "--oracle", f"--classifier {args.classifier}")
    classes = _class_count(classifier, frame)
    if classes is not None and target >= classes:  # the explainer would name `target`
        raise ValueError(
            f"`--target` must be a class of the classifier, 0..{classes - 1} (or healthy / "
            f"tumour for 0 / 1), got {args.target!r}"
        )
    if no_oracle:
        log.warning(
            "no oracle: --oracle defaults to %s only with the zoo's generator (it judges the "
            "built-in brain slices), so oracle agreement is not measured; pass --oracle with "
            "a classifier of your images' classes to measure it",
            ORACLE,
        )
    brain_classes = brain or _trained_on_brain_slices(sources["classifier"])
    if oracle_defaulted and oracle is not None and not brain_classes:
        # brain-oracle reads class 0 as healthy and 1 as tumour: another model's classes may
        # mean something else, and a model of more classes cannot be compared with it at all
        if classes is None:
            pass  # the explainer names what fails; no guess about the classes
        elif classes != 2:
            oracle, args.oracle = None, "none"
            sources.pop("oracle")  # not this run's: its weights are not recorded
            log.warning(
                "no oracle: --oracle defaults to %s, which judges healthy (0) / tumour (1), "
                "and --classifier %s scores %d classes; pass --oracle with a classifier of "
                "its classes to measure oracle agreement",
                ORACLE,
                args.classifier,
                classes,
            )
        else:
            log.warning(
                "--oracle defaults to %s, which judges healthy (0) / tumour (1): its agreement "
                "says something about --classifier %s only if that model's classes are the "
                "same (else pass --oracle none, or a classifier of its classes)",
                ORACLE,
                args.classifier,
            )
    if not brain_classes and args.target.strip().lower() in CLASS_NAMES:
        log.warning(
            "`--target %s` is read as class %d of --classifier %s: healthy / tumour are the "
            "brain models' names for classes 0 / 1 (summary.json calls it %d)",
            args.target,
            target,
            args.classifier,
            target,
        )
    # a model trained at another size than the generator's frames: the explainer says so
    common = {
        "steps": args.steps,
        "margin": margin,
        "oracle": oracle,
        "show_progress": not args.no_progress,
        "inversion_steps": args.inversion_steps,
        "inversion_classifier_weight": args.inversion_classifier_weight,
    }
    explainer: GradientAscent | MonotonePath | LocalisedAscent
    if args.method == "monotone":
        explainer = MonotonePath(
            generator,
            classifier,
            localise=args.localise,
            background=args.background,
            **common,
            **({} if args.iterations is None else {"iterations": args.iterations}),
        )
    elif args.method == "gradient":
        explainer = GradientAscent(generator, classifier, **common)
    elif args.method == "localised":
        explainer = LocalisedAscent(generator, classifier, background=args.background, **common)
    else:
        raise UnknownNameError(f"unknown method {args.method!r}; expected one of {METHODS}")
    out_folder(out)  # before the work: an unwritable --out fails now
    # one run at a time in a folder: two shared its resume folder, overwrote each other's
    # batches, and the second failed at the end (session 45 audit)
    busy = (
        f"`--out` {out} is being written by another cfx trajectory run right now; wait for "
        "it to finish (rerun then to resume it), or pass another --out"
    )
    with locked_folder(out, busy):

        def spelt(role: str, name: str) -> str:
            """A model folder as its resolved path (``./clf``, ``clf/`` and its absolute path are
            one run's, which a rerun resumes); zoo names and hub ids as given."""
            folder = sources[role].folder
            return name if folder is None or name in ZOO else str(folder.resolve())

        setup = {
            "classifier": spelt("classifier", args.classifier),
            "generator": spelt("generator", args.generator),
            "oracle": None if oracle is None else spelt("oracle", args.oracle),
            "method": args.method + ("+localise" if args.localise else ""),
            "target": target,
            # the class's name in one spelling ("Tumor", "1" -> "tumour" for the brain models);
            # another classifier's classes have no names here: its index
            "target_name": ("healthy", "tumour")[target] if brain and target < 2 else str(target),
            "steps": args.steps,
            "margin": margin,
            "inversion_steps": args.inversion_steps,
            "inversion_classifier_weight": args.inversion_classifier_weight,
            "iterations": explainer.iterations if isinstance(explainer, MonotonePath) else None,
            "background": args.background if localised else None,
            "image_size": None if size is None else list(size),
            # resolved: a rerun spelling the same file another way (./x.npy, from another
            # folder) resumes; the chunks' key holds the images' own sha256 besides
            "input": None if args.input is None else str(args.input.resolve()),
            "input_files": files,
            "seed": None if args.input is not None else seed,
            "batch_size": args.batch_size,
        }
        setup["weights_sha256"] = {role: weights_sha256(src) for role, src in sources.items()}
        unfinished = out / UNFINISHED
        _replacing_notice(out, setup | {"n": len(x)}, figures=not args.no_figures)
        # sources already in the target class are logged once, rows of the whole input named
        try:
            with by_flag(args):  # `oracle` returns 3 class logits: said as --oracle
                result = explain_in_chunks(
                    explainer,
                    x,
                    target,
                    batch_size=args.batch_size,
                    folder=unfinished,
                    key=setup,
                    foreign="refuse",  # a rerun with other arguments must not delete work
                    show_progress=not args.no_progress,
                )
            setup["n"] = len(result)
            summary = save_result(
                result,
                out,
                classifier=classifier,
                masks=masks if target == 0 else None,
                setup=setup,
                names=files,
                warnings=notes,
                figures=not args.no_figures,
            )
        except KeyboardInterrupt:
            done = len(finished_chunks(unfinished))
            if done == 0:  # nothing to resume: no empty folder left behind to puzzle over
                shutil.rmtree(unfinished, ignore_errors=True)
                log.warning(
                    "interrupted before the first of %d batches finished: nothing was kept; the "
                    "same command starts again.%s",
                    -(-len(x) // args.batch_size),
                    " The outputs in --out are an earlier run's."
                    if (out / "summary.json").exists()
                    else "",
                )
                raise
            log.warning(
                "interrupted: %d finished batch%s of %d kept in %s; rerun the same command to "
                "resume.%s",
                done,
                "" if done == 1 else "es",
                -(-len(x) // args.batch_size),
                unfinished,
                " Until it finishes, the outputs in --out are not this run's."
                if (out / "summary.json").exists()
                else "",
            )
            raise
        shutil.rmtree(unfinished)  # the outputs are written: nothing left to resume
        rows = summary["images"]
        inputs_in_target_notice(rows, files)
        # what the run warned, e.g. about its inputs, for whoever reads summary.json later: the
        # inputs already in the target class are said after save_result wrote it with the rest
        if summary["warnings"] != notes:
            summary["warnings"] = list(notes)
            text = json.dumps(summary, indent=2, allow_nan=False) + "\n"
            write_atomic(out / "summary.json", text)  # as save_result writes it: whole or not
        # the paths that end outside the target (or short of --margin) were named by
        # explain_in_chunks, rows numbered in the whole input
        print(json.dumps({k: v for k, v in summary.items() if k != "images"}, indent=2))
        # on stderr: stdout stays the summary's JSON, for `| jq`
        kept = [i for i, row in enumerate(rows) if row["optimised"] is False]
        if kept:  # identical to Option 1's frames: said, not left to a diff of two runs
            print(
                "Option 2's joint optimisation kept the warm start ("
                + ("the localised path" if args.localise else "Option 1's path")
                + f", placed at the levels) for {len(kept)} of {len(rows)} paths (rows "
                f"{shown_rows(kept)}"
                + ("" if files is None else ": " + first_names([files[i] for i in kept]))
                + "): its path was not optimised (--iterations 0, or a start above the first "
                "level) or no optimised path was valid and changed the image less",
                file=sys.stderr,
            )
        figures = "" if args.no_figures else ", strips, changes, GIFs, probabilities.png"
        print(f"wrote {out}/: result.npz, summary.json{figures}", file=sys.stderr)
        return 0


def inputs_in_target_notice(rows: list[dict], files: list[str] | None) -> None:
    """Warn about the summary ``rows`` whose input the classifier already puts in the target
    class while their frame 0 (its reconstruction) is not there: the path walks back into
    the input's own class. Rows whose frame 0 is in the target too were named by the
    explainer's start notice by row; with ``files`` (the input files, one per row, or None)
    their files are named here."""
    named = [i for i, row in enumerate(rows) if row["input_in_target"] and row["crossed_at"] == 0]
    if named and files is not None:
        log.warning(
            "the inputs already in the target class whose paths start there (rows %s) are %s",
            shown_rows(named),
            first_names([files[i] for i in named]),
        )
    inside = [i for i, row in enumerate(rows) if row["input_in_target"] and row["crossed_at"] != 0]
    if inside:
        log.warning(
            "%d of %d inputs are already in the target class for the classifier (rows %s%s), "
            "while their reconstructions are not: their paths walk back into the class the "
            "input is in, not across the boundary (flip_rate counts those that end in it; "
            "crossed_rate counts none of them); give only inputs outside the target class",
            len(inside),
            len(rows),
            shown_rows(inside),
            "" if files is None else ": " + first_names([files[i] for i in inside]),
        )


RESULT_FILES = ("result.npz", "summary.json")
"""The files every run writes into --out; with figures, also save_result's ``FIGURES`` and one
sequence_NNN.gif per image."""


def _replacing_notice(out: Path, setup: dict[str, Any], *, figures: bool = True) -> None:
    """A warning when ``out`` holds the outputs of a finished run, which this run replaces
    (they were overwritten without a word): naming what differs, or saying that a run with
    the same setup is computed again, not resumed. Without ``figures`` (``--no-figures``)
    only result.npz and summary.json are this run's files."""
    from cfx.run_key import changes

    try:
        earlier = json.loads((out / "summary.json").read_text(encoding="utf-8"))["setup"]
    except (OSError, ValueError, KeyError, TypeError):
        # not a cfx run's folder: files of the same names as the outputs are replaced
        from cfx.trajectory.save import FIGURES

        names = [*RESULT_FILES]
        if figures:
            names += [*FIGURES] + [f"sequence_{i:03d}.gif" for i in range(int(setup.get("n", 0)))]
        mine = [n for n in names if (out / n).is_file()]
        # beside a resume folder: a run interrupted while writing its outputs (summary.json
        # comes last), whose resumed rerun rewrites them
        if mine and not (out / UNFINISHED).exists():
            log.warning(
                "%s holds files this run writes (%s), which no cfx run wrote: they are "
                "replaced; pass another --out to keep them",
                out,
                first_names(mine),
            )
        return
    if not isinstance(earlier, dict) or (out / UNFINISHED).exists():
        return  # not a cfx summary, or a resumed run's outputs are replaced as they should be
    now = json.loads(json.dumps(setup, default=str))  # as the summary stores it
    before = dict(earlier)
    if before != now:
        log.warning(
            "%s holds the outputs of a finished run with other settings (%s): this run "
            "replaces them; pass another --out to keep both",
            out,
            changes(before, now),
        )
    else:  # nothing is kept of a finished run but its outputs: it is not resumed
        log.warning(
            "%s holds the outputs of a finished run with these settings: it is computed "
            "again and its outputs rewritten (only an interrupted run resumes)",
            out,
        )


def _trained_on_brain_slices(source: ModelSource) -> bool:
    """Whether a local classifier was trained by ``cfx train`` on the built-in brain slices
    (its run folder's data flags, or its card, say ``--data brain``), so its classes are
    healthy / tumour as brain-oracle's, or is a zoo model given by its folder (its weights'
    sha256 is the card's)."""
    from cfx.cli.train import DATA_FLAGS
    from cfx.zoo import ZOO, card_sha256, model_folder

    folder = source.folder
    if folder is None:
        return False
    for flags in (folder / DATA_FLAGS, folder.parent / DATA_FLAGS):
        try:
            if json.loads(flags.read_text()).get("--data") == "brain":
                return True
        except (OSError, ValueError, AttributeError):
            continue
    card = folder / "README.md"
    try:
        if '"data": "brain"' in card.read_text(encoding="utf-8", errors="replace"):
            return True
    except OSError:
        pass
    try:
        digest = weights_sha256(source)
        return any(
            entry.kind == "classifiers" and card_sha256(model_folder(name)) == digest
            for name, entry in ZOO.items()
        )
    except Exception:  # a guess for a notice: never the run's failure
        return False


def _class_count(classifier: object, frame: torch.Tensor) -> int | None:
    """How many classes ``classifier`` tells apart, asked on one generator frame; None when
    it fails there (the explainer's own checks then name the problem)."""
    import torch

    from cfx.calls import class_logits, frozen

    try:
        with frozen(classifier), torch.no_grad():
            return int(class_logits(classifier, frame).shape[1])  # type: ignore[arg-type]
    except (RuntimeError, ValueError, TypeError):
        return None


def weights_sha256(source: ModelSource) -> str:
    """The SHA-256 of the weights a ``--classifier`` / ``--generator`` / ``--oracle`` points to
    (the card's for zoo models), so a resumed run notices a model retrained in the same folder."""
    from cfx.zoo.pretrained import resolve_folder, sha256

    if source.expected_sha256 is not None:
        return source.expected_sha256
    if source.folder is not None:
        return sha256(source.folder / source.weights)
    return sha256(
        resolve_folder(str(source.hub_id), files=(source.hub_file(source.weights),))
        / source.weights
    )
