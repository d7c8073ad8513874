"""``cfx saliency compare|attack|randomise``: saliency methods side by side on brain slices,
attacks, and the cascading randomisation check (:mod:`cfx.cli.saliency_randomise`)."""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import math
import sys
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from cfx.cli.console import keeping_warnings, warnings_markdown
from cfx.cli.models import checked_source, size_notice
from cfx.cli.options import given_flags
from cfx.cli.paths import add_output_options, not_a_file, not_the_input_folder, out_folder
from cfx.errors import UnknownNameError, check_int, check_real, first_names

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)
OBJECTIVES = ("top_k", "mass_center", "targeted", "random", "target_map")
GHORBANI = ("top_k", "mass_center", "targeted")  # the objectives GhorbaniAttack runs
REGIONS = ("mirror", "marker")  # where targeted attacks pull the map
GRID_ROWS = 6  # images in compare's grid.png (rows of a figure stay readable)
ATTACK_SEED = 0  # the attacks' draws (random starts, random sign): the same run, the same images
SALIENCY_METHODS = (
    *("gradient", "gradient_x_input", "smoothgrad", "integrated_gradients", "gradcam"),
    *("occlusion", "rise", "lime", "kernel_shap", "rex"),
)
"""cfx.saliency.compare.METHODS, spelt out here so that --help needs no torch (a test keeps
the two equal)."""
ATTACKABLE = ("gradient", "gradient_x_input", "smoothgrad", "integrated_gradients", "gradcam")
COMPARE_ATTACKS = ("gradient", "integrated_gradients")
"""The methods whose top-k attack `cfx saliency compare` draws (with ``--attack-n`` > 0)."""
COMPARE_OUTPUTS = (
    "table.csv",
    "table.md",
    "grid.png",
    *(f"attack_{name}.png" for name in COMPARE_ATTACKS),
)
"""What `cfx saliency compare` writes in ``--out``: an earlier run's are removed before any is
written, so an interrupted run (or one with ``--attack-n 0``) never leaves two runs' files."""


def parse_fraction(text: str, flag: str = "--epsilon") -> float:
    """``"8/255"`` or ``"0.03"`` -> float; errors name ``flag``."""
    try:
        return float(Fraction(text.strip()))
    except (ValueError, ZeroDivisionError):
        raise ValueError(
            f"`{flag}` must be a number or a fraction like 8/255, got {text!r}"
        ) from None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "saliency", help="compare saliency methods against lesion masks; attack them"
    )
    ssub = p.add_subparsers(dest="saliency_command", required=True, metavar="ACTION")

    c = ssub.add_parser(
        "compare",
        help="method x metric table, map grid and attack figures",
        description="Score saliency methods against ground-truth lesion masks: localisation "
        "(pointing game, relevance mass and rank, energy pointing game, Dice, IoU) and "
        "faithfulness (deletion and insertion AUC), each with a 95% interval over the images, "
        "plus a map grid and Ghorbani top-k attack figures. Built-in tumour slices by default, "
        "or your own images with --input and --masks.",
    )
    c.add_argument(
        "--classifier",
        default=None,
        help="classifier to explain: a zoo name, a model folder (DIR or DIR/model) or a hub id "
        "(default: brain-cnn)",
    )
    c.add_argument(
        "--input",
        type=Path,
        default=None,
        help="your images instead of the built-in slices: an image file (PNG, JPEG, BMP, "
        "TIFF), a folder of them (in name order as text: slice_10 before slice_2), or a "
        ".npy/.pt batch (N, C, H, W) in [-1, 1] (or uint8 0..255); image files are read "
        "with the channels of the classifier's first convolution, at their own size; needs "
        "--masks",
    )
    c.add_argument(
        "--masks",
        type=Path,
        default=None,
        help="ground truth for --input: a folder with a mask file per image, named as the "
        "image (a PNG of 0 and one other value); one mask file for one image; or a .npy/.pt "
        "of bool or 0/1, (N, 1, H, W) or (N, H, W), in --input's order",
    )
    c.add_argument(
        "--target",
        default=None,
        help="class explained: an index of the classifier's outputs, or healthy / tumour "
        "(the brain models' 0 / 1; default: 1)",
    )
    c.add_argument(
        "--n", type=int, default=None, help="built-in tumour test slices to score (default: 64)"
    )
    c.add_argument(
        "--seed", type=int, default=None, help="seed of the built-in slices (default: 2 = test)"
    )
    add_method_options(c)
    c.add_argument(
        "--attack-n", type=int, default=4, help="slices attacked for the figures (0: none)"
    )
    add_output_options(
        c,
        "cfx-saliency",
        "table.csv, table.md, grid.png and, with --attack-n > 0, "
        + " and ".join(f"attack_{m}.png" for m in COMPARE_ATTACKS),
    )
    c.set_defaults(run=run_compare)

    a = ssub.add_parser(
        "attack",
        help="perturb slices so a saliency map moves, label kept",
        description="Perturb images within an L-inf budget so that a saliency map of the "
        "predicted class moves (Ghorbani et al. objectives, Dombrowski et al.'s target map, or "
        "random sign noise as the control) while the classifier's label stays; reports how "
        "far the map moved and how often the label was kept.",
    )
    a.add_argument(
        "--classifier",
        default=None,
        help="classifier to explain: a zoo name, a model folder (DIR or DIR/model) or a hub id "
        "(default: brain-cnn)",
    )
    a.add_argument(
        "--method", default="gradient", choices=ATTACKABLE, help="saliency method attacked"
    )
    a.add_argument(
        "--objective",
        default="top_k",
        choices=OBJECTIVES,
        help="top_k, mass_center, targeted: Ghorbani et al.'s attacks (targeted pulls the map "
        "into --region); target_map: Dombrowski et al.'s (towards --region); random: the "
        "random-sign baseline (default: top_k)",
    )
    a.add_argument(
        "--region",
        choices=REGIONS,
        default=None,
        help="where targeted/target_map pull the map: 'mirror', the lesion mirrored into the "
        "other hemisphere (the default for the built-in slices), or 'marker', the scanner-marker "
        "corner of 64x64 slices (little moves there, the background's gradient is near zero); "
        "for your own images, --region-mask (or 'marker', said explicitly)",
    )
    a.add_argument(
        "--region-mask",
        type=Path,
        default=None,
        help="targeted/target_map: a region of your own to pull the map into, one for every "
        "image: a mask file (0 and one other value) or a .npy/.pt (H, W) of bool or 0/1 at "
        "the images' size (instead of --region)",
    )
    a.add_argument(
        "--epsilon", default="8/255", help="L-inf budget, fraction of the range (default: 8/255)"
    )
    a.add_argument(
        "--steps",
        type=int,
        default=None,
        help="attack iterations (default: the attack's own, 40 for the Ghorbani objectives and "
        "100 for target_map)",
    )
    a.add_argument(
        "--restarts",
        type=int,
        default=None,
        help="Ghorbani attacks: random restarts, the best label-keeping one is kept (default: 1)",
    )
    a.add_argument(
        "--beta",
        type=float,
        default=None,
        help="Ghorbani attacks: softplus sharpness of the surrogate model (default: 50)",
    )
    a.add_argument("--k", type=int, default=None, help="top-k size (default: 2%% of pixels)")
    a.add_argument(
        "--input",
        type=Path,
        default=None,
        help="your images instead of the built-in slices: an image file, a folder of them "
        "or a .npy/.pt batch (N, C, H, W), as for `cfx saliency compare`",
    )
    a.add_argument(
        "--n", type=int, default=None, help="built-in tumour test slices to attack (default: 16)"
    )
    a.add_argument(
        "--seed", type=int, default=None, help="seed of the built-in slices (default: 2 = test)"
    )
    add_output_options(
        a,
        "cfx-saliency-attack",
        "attack.csv, attack.json, attack.png and attacked.npy (the perturbed images, (N, C, H, "
        "W) float32 in [-1, 1], as an --input .npy takes them)",
    )
    a.set_defaults(run=run_attack)

    from cfx.cli import saliency_randomise

    saliency_randomise.register(ssub)


def add_method_options(parser: argparse.ArgumentParser) -> None:
    """``--methods``, ``--gradcam-layer`` and ``--fast``, as the commands running many
    methods name them."""
    parser.add_argument(
        "--methods",
        default="all",
        help=f"comma-separated names from {', '.join(SALIENCY_METHODS)}; or 'all'",
    )
    parser.add_argument(
        "--gradcam-layer", default=None, help="Grad-CAM layer name (default: last conv)"
    )
    parser.add_argument(
        "--fast", action="store_true", help="small budgets for perturbation methods"
    )


def brain_name_notice(given: object, target: int, classifier: str) -> None:
    """Say that ``--target healthy|tumour`` was read as class 0 / 1 of a classifier not
    trained on brain slices (its classes may be others); other values say nothing."""
    from cfx.cli.trajectory import CLASS_NAMES

    if str(given).strip().lower() in CLASS_NAMES:
        log.warning(
            "`--target %s` is read as class %d of --classifier %s: healthy / tumour are the "
            "brain models' names for classes 0 / 1",
            given,
            target,
            classifier,
        )


def check_target_class(model: object, x: torch.Tensor, target: int, brain: bool) -> None:
    """A ``--target`` beyond the classifier's outputs, named before any work."""
    from cfx.cli.trajectory import _class_count

    classes = _class_count(model, x[:1])
    if classes is not None and target >= classes:
        raise ValueError(
            f"`--target` must be a class of the classifier, 0..{classes - 1}"
            + (" (or healthy / tumour for 0 / 1)" if brain else "")
            + f", got {target}"
        )


def check_gradcam_layer(model: object, names: list[str], layer: str | None) -> None:
    """A ``--gradcam-layer`` typo, named before any method runs."""
    if "gradcam" not in names or layer is None:
        return
    from cfx.saliency.gradcam import resolve_layer

    try:
        resolve_layer(model, layer)
    except ValueError as err:
        raise ValueError(f"`--gradcam-layer`: {str(err).removeprefix('`layer` ')}") from None


def _model_channels(model: object) -> int | None:
    """The channels ``model`` takes: its config's ``channels`` (cfx's models, and hub models
    whose config says), else its first registered 2-D convolution's, else None."""
    import torch

    channels = getattr(getattr(model, "config", None), "channels", None)
    if isinstance(channels, int) and channels > 0:
        return channels
    if isinstance(model, torch.nn.Module):
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d):
                return int(module.in_channels)
    return None


def checked_input(args: argparse.Namespace) -> list[Path] | None:
    """``--input``'s image files (None for a batch), checked before any model loads, and an
    ``--out`` that is not the ``--input`` folder (its figures would be read as images)."""
    not_a_file(args.out)  # the folder is made once the inputs are read
    if args.input is None:
        return None
    from cfx.data.image_files import check_input_path

    files = check_input_path(args.input)
    not_the_input_folder(args.out, args.input)
    return files


def read_input(args: argparse.Namespace, files: list[Path] | None, model: object) -> torch.Tensor:
    """``--input`` as images in [-1, 1]: image files with the channels ``model`` takes (the
    first file's, grey or colour, when it has no convolution to tell), at their own size."""
    if files is None:
        from cfx.data.io import load_images

        x = load_images(args.input, name="--input", channels=_model_channels(model))
    else:
        from cfx.data.image_files import read_images

        x = read_images(files, _model_channels(model))  # None: the first file's channels
    size_notice(model, x.shape, "--classifier", "--input images")
    if float(x.min()) >= 0.0:
        _unit_range_in_flags(x)
    return x


def _unit_range_in_flags(x: torch.Tensor) -> None:
    """The library's notice about images with no pixel below 0 names `x` and a Python
    wrapper; on the command line it names ``--input`` and what to do with the file. The
    library's own notice is then silenced for the rest of the command (the filter lives in
    the command's ``warnings.catch_warnings``, :func:`cfx.cli.console.console`)."""
    import re
    import warnings

    from cfx.saliency._common import PROBE_NOTICES

    log.warning(
        "no pixel of the %d --input image(s) is below 0 (values %.3g..%.3g): cfx reads image "
        "files into [-1, 1] itself (dark = -1), but a .npy/.pt batch must be in [-1, 1] "
        "already: save 2x - 1 of [0, 1] data",
        x.shape[0],
        float(x.min()),
        float(x.max()),
    )
    warnings.filterwarnings("ignore", message=re.escape(PROBE_NOTICES[1]), category=UserWarning)


def default_classifier(args: argparse.Namespace) -> None:
    """Fill ``--classifier`` (brain-cnn); with ``--input``, say that the default is a model of
    the built-in brain slices, which would explain any image as one."""
    if args.classifier is None:
        args.classifier = "brain-cnn"
        if args.input is not None:
            log.warning(
                "with --input, --classifier is brain-cnn (the default), trained on the "
                "built-in brain slices; name your own unless your images are such slices"
            )


def built_in(args: argparse.Namespace, n: int) -> None:
    """Fill ``--n``/``--seed`` for the built-in slices; with ``--input`` they would do nothing,
    so giving them is an error rather than silently ignored."""
    if args.input is not None:
        given = given_flags(args, "n", "seed")
        if given:
            verb = "chooses" if len(given) == 1 else "choose"
            raise ValueError(
                f"{' and '.join(f'`{f}`' for f in given)} {verb} the built-in slices; with "
                f"`--input` the images are yours, so drop {' and '.join(given)}"
            )
        return
    args.n = n if args.n is None else args.n
    args.seed = 2 if args.seed is None else args.seed
    check_int("--n", args.n)


def method_names(text: str) -> list[str]:
    from cfx.saliency.compare import METHODS

    if text.strip() == "all":
        return list(METHODS)
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise UnknownNameError(
            f"`--methods` names no method, got {text!r}: give some of {', '.join(METHODS)}, "
            "comma-separated, or all"
        )
    unknown = [n for n in names if n not in METHODS]
    if unknown or not names:
        raise UnknownNameError(f"unknown saliency method(s) {unknown}; expected some of {METHODS}")
    return names


@keeping_warnings  # table.md repeats what the run warned
def run_compare(args: argparse.Namespace, notes: list[str]) -> int:
    from cfx.saliency.compare import compare_methods, tumour_slices
    from cfx.viz import saliency_grid
    from cfx.zoo import load_classifier

    names = method_names(args.methods)
    built_in(args, 64)
    check_int("--attack-n", args.attack_n, minimum=0)
    from cfx.cli.trajectory import parse_target

    default_classifier(args)
    # an unknown or missing classifier is named before the default target is warned about
    classifier = checked_source("--classifier", args.classifier, "classifier", has_generator=False)
    defaulted, given = args.target is None, args.target
    args.target = parse_target(str("tumour" if defaulted else args.target))
    if (args.input is None) != (args.masks is None):
        raise ValueError(
            "`--input` and `--masks` go together: the maps are scored against the masks"
        )
    files = checked_input(args)
    from cfx.cli.trajectory import _trained_on_brain_slices
    from cfx.zoo import ZOO

    # healthy / tumour are the brain models' classes 0 / 1; said, after the inputs' checks,
    # when the classifier's classes may be others
    brain = args.classifier in ZOO or _trained_on_brain_slices(classifier)
    if not brain and defaulted:
        log.warning(
            "--target defaults to class 1 of --classifier %s (the brain models' 'tumour'); "
            "give --target for another class",
            args.classifier,
        )
    elif not brain:
        brain_name_notice(given, args.target, args.classifier)
    model = load_classifier(classifier)
    check_gradcam_layer(model, names, args.gradcam_layer)
    if args.input is not None:
        x = read_input(args, files, model)
        from cfx.data.image_files import load_masks_for

        masks = load_masks_for(args.masks, x, files)
        _empty_masks_notice(masks, files)
        source = f"{x.shape[0]} images of `{args.input}` (masks `{args.masks}`)"
        if files is not None and len(files) > 1:
            source += f", in name order: {', '.join(f.name for f in files[:3])}" + (
                ", ..." if len(files) > 3 else ""
            )
    else:
        x, masks = tumour_slices(args.n, args.seed)
        size_notice(model, x.shape, "--classifier", "built-in slices")
        source = f"{args.n} tumour slices (brain seed {args.seed})"
    check_target_class(model, x, args.target, brain)  # compare_methods would name `target`
    out_folder(args.out)  # inputs read, before the work: an unwritable --out fails now
    from cfx.notices import held
    from cfx.saliency.compare import log as compare_log

    with held((compare_log,) if files is not None else (), "cfx_empty_masks"):
        res = compare_methods(  # empty masks of files were named by file, above
            model,
            x,
            masks,
            args.target,
            names,
            fast=args.fast,
            gradcam_layer=args.gradcam_layer,
            show_progress=not args.no_progress,
        )
    out = Path(args.out)
    for name in COMPARE_OUTPUTS:  # an earlier run's: none may stay beside this run's
        (out / name).unlink(missing_ok=True)
    (out / "table.csv").write_text(res.to_csv(), encoding="utf-8")
    grid_rows = min(GRID_ROWS, x.shape[0])
    note = (
        f"{source}, classifier `{args.classifier}`, target class {args.target}; maps scored "
        "by their positive part; "
        + (
            "--fast: the perturbation methods' small budgets (cfx.saliency.compare.build_method)"
            if args.fast
            else "the methods' full budgets"
        )
        + f". grid.png shows {grid_rows} of the {x.shape[0]} images (those with a mask first)."
    )
    if args.classifier == "brain-cnn" and args.input is None:  # measured there
        note += (
            " insertion_auc separates methods little when it saturates (brain-cnn calls a "
            "slice tumour from the first pixels inserted)."
        )
    import torch

    # the grid's rows: images with something to find first (an empty mask scores nothing)
    shown = torch.argsort((~masks.flatten(1).any(1)).to(torch.uint8), stable=True)
    row_names = None if files is None else [files[i].name for i in shown.tolist()]
    saliency_grid(
        x[shown],
        masks[shown],
        res.maps[:, shown],
        res.methods,
        out / "grid.png",
        rows=GRID_ROWS,
        row_names=row_names,
    )
    attacked = []
    if args.attack_n > 0:
        for name in COMPARE_ATTACKS:
            path = attack_figure_for(model, name, x[: args.attack_n], out, fast=args.fast)
            attacked.append(path.name)
    # last, so that it keeps every warning of the run (the grid's and the attacks' too)
    lines = [note, "", *warnings_markdown(notes), res.to_markdown()]
    (out / "table.md").write_text("\n".join(lines), encoding="utf-8")
    best, dice = res.best("dice")
    print(res.to_markdown(), end="")
    print(
        f"best Dice: {best} ({dice:.3f}); wrote {out}/table.csv, table.md, grid.png"
        + "".join(f", {a}" for a in attacked)
    )
    return 0


def _empty_masks_notice(masks: torch.Tensor, files: list[Path] | None) -> None:
    """Name the image files whose mask marks no pixel (compare_methods can name only rows);
    all empty is compare_methods' error."""
    if files is None:
        return
    empty = [f.name for f, m in zip(files, masks, strict=True) if not bool(m.any())]
    if empty and len(empty) < len(files):
        log.warning(
            "%d of %d images have an empty mask (%s): they count in the faithfulness scores "
            "only, not in the localisation means",
            len(empty),
            len(files),
            first_names(empty),
        )


def attack_figure_for(
    model: torch.nn.Module, name: str, x: torch.Tensor, out: Path, *, fast: bool
) -> Path:
    """Ghorbani top-k attack on ``x`` at 8/255 for one method; writes and returns the figure."""
    import torch

    from cfx.saliency.attacks import GhorbaniAttack
    from cfx.saliency.compare import build_method
    from cfx.viz import attack_figure

    explainer = build_method(name, model, fast=True)
    res = GhorbaniAttack(explainer, steps=10 if fast else 40).perturb(
        x, generator=torch.Generator().manual_seed(0)
    )
    kept = float(res.label_kept.float().mean())
    title = (
        f"{name}: top-k attack, eps 8/255; top-k intersection "
        f"{float(res.top_k_intersection.mean()):.2f}, label kept {kept:.0%}"
    )
    return attack_figure(
        x, res.x_adv, res.maps, res.maps_adv, out / f"attack_{name}.png", title=title
    )


@keeping_warnings  # attack.json repeats what the run warned
def run_attack(args: argparse.Namespace, notes: list[str]) -> int:
    import numpy as np
    import torch

    from cfx.data.brain import MIRROR_MIN_PIXELS, SIZE, marker_mask, mirrored_lesion
    from cfx.saliency.attacks import GhorbaniAttack, RandomSign, TargetMapAttack
    from cfx.saliency.compare import build_method, mean_ci, tumour_slices
    from cfx.saliency.metrics import relevance_mass_accuracy
    from cfx.viz import attack_figure
    from cfx.zoo import load_classifier

    eps = check_real("--epsilon", parse_fraction(args.epsilon), low=0.0, high=1.0, open_low=True)
    built_in(args, 16)
    if args.steps is not None:  # 0 steps is no attack: RandomSign is the baseline
        check_int("--steps", args.steps)
    steps = {} if args.steps is None else {"steps": args.steps}
    ghorbani = args.objective in GHORBANI
    given = given_flags(args, "restarts", "beta")
    if args.objective == "random" and args.steps is not None:
        given.insert(0, "--steps")
    if given and not ghorbani:  # they were ignored, and the summary said restarts: null
        raise ValueError(
            f"{', '.join(given)} {'does' if len(given) == 1 else 'do'} nothing for "
            f"`--objective {args.objective}` (--restarts and "
            f"--beta belong to {', '.join(GHORBANI)}; random takes no --steps)"
        )
    restarts = 1 if args.restarts is None else check_int("--restarts", args.restarts)
    beta = 50.0 if args.beta is None else check_real("--beta", args.beta, low=0.0, open_low=True)
    aims = args.objective in ("targeted", "target_map")
    for flag, given_region in (("--region", args.region), ("--region-mask", args.region_mask)):
        if given_region is not None and not aims:
            raise ValueError(
                f"`{flag}` is where targeted and target_map attacks pull the map; "
                f"`--objective {args.objective}` has none"
            )
    if args.region is not None and args.region_mask is not None:
        raise ValueError("`--region` and `--region-mask` both say where to pull the map: give one")
    if args.region == "mirror" and args.input is not None:
        raise ValueError(
            "`--region mirror` mirrors the built-in slices' lesion masks; with --input, "
            "`--region marker` (64x64 slices) or a region of your own, `--region-mask`"
        )
    if aims and args.input is not None and args.region is None and args.region_mask is None:
        # the marker corner was the default here: a corner of the built-in slices that your
        # own 64x64 images need not have, so the attack aimed at nothing in them, silently
        raise ValueError(
            f"`--objective {args.objective}` pulls the map into a region, and --input images "
            "have none of their own: give it with --region-mask (a mask image, or one per "
            "image), or `--region marker` for the scanner-marker corner of the 64x64 brain "
            "slices"
        )
    region_name = "mask" if args.region_mask is not None else args.region or "mirror"
    default_classifier(args)
    files = checked_input(args)
    model = load_classifier(
        checked_source("--classifier", args.classifier, "classifier", has_generator=False)
    )
    if args.input is not None:
        x = read_input(args, files, model)
    else:
        x, masks = tumour_slices(args.n, args.seed)
        size_notice(model, x.shape, "--classifier", "built-in slices")
    h, w = x.shape[2:]
    if args.k is not None and not 1 <= check_int("--k", args.k) <= h * w:
        raise ValueError(f"`--k` must be at most the {h}x{w} images' {h * w} pixels, got {args.k}")
    # what targeted attacks pull the map into: a fake reason, (B, 1, H, W) bool; checked
    # before --out is made or any work is done
    empty = torch.zeros(x.shape[0], dtype=torch.bool)  # images aiming at the corner instead
    goal = torch.zeros(x.shape[0], 1, h, w, dtype=torch.bool)  # no aim: unused
    if aims and region_name == "mask":
        from cfx.data.image_files import load_region_for

        region = load_region_for(args.region_mask, (h, w), "--region-mask")
        goal = region.expand(x.shape[0], 1, h, w)
    elif aims:
        if (h, w) != (SIZE, SIZE):
            raise ValueError(
                f"`--objective {args.objective}` pulls the map into the scanner-marker corner "
                f"of the {SIZE}x{SIZE} brain slices; --input images are {w}x{h}: give your own "
                "region with --region-mask"
            )
        corner = marker_mask(w).expand(x.shape[0], 1, h, w)
        goal = corner
        if region_name == "mirror":
            goal = mirrored_lesion(masks)
            empty = goal.flatten(1).sum(1) < MIRROR_MIN_PIXELS  # a lesion on the midline
            goal[empty] = corner[empty]  # those slices aim at the marker corner instead
    out_folder(args.out)  # inputs read, before the work
    explainer = build_method(args.method, model)
    gen = torch.Generator().manual_seed(ATTACK_SEED)
    show = not args.no_progress
    if args.objective == "random":
        res = RandomSign(explainer, epsilon=eps, k=args.k).perturb(x, generator=gen)
        steps_used = None
    elif args.objective == "target_map":
        mapper = TargetMapAttack(explainer, epsilon=eps, k=args.k, show_progress=show, **steps)
        res, steps_used = mapper.perturb(x, target_map=goal.float(), generator=gen), mapper.steps
    else:
        attack = GhorbaniAttack(
            explainer,
            objective=args.objective,
            epsilon=eps,
            k=args.k,
            beta=beta,
            restarts=restarts,
            show_progress=show,
            **steps,
        )
        res = attack.perturb(
            x, region=goal if args.objective == "targeted" else None, generator=gen
        )
        steps_used = attack.steps
    out = Path(args.out)
    table = io.StringIO()
    write = csv.writer(table, lineterminator="\n").writerow
    write(
        [
            "image",
            "top_k_intersection",
            "spearman",
            "mass_center_shift",
            "label_kept",
            "linf",
            "file",
        ]
    )
    for i in range(x.shape[0]):  # file: the row's image file (empty for an array input)
        write(
            [
                i,
                f"{float(res.top_k_intersection[i]):.4f}",
                f"{float(res.spearman[i]):.4f}",
                f"{float(res.mass_center_shift[i]):.3f}",
                int(res.label_kept[i]),
                f"{float(res.linf[i]):.5f}",
                "" if files is None else files[i].name,
            ]
        )
    (out / "attack.csv").write_text(table.getvalue(), encoding="utf-8")

    def mean_and_ci(values: torch.Tensor) -> dict[str, float | None]:
        mean, half = mean_ci(values)  # NaN (JSON has none) -> null: one image, no interval
        return {k: None if math.isnan(v) else v for k, v in (("mean", mean), ("ci95", half))}

    summary: dict[str, object] = {
        "classifier": args.classifier,
        "method": args.method,
        "objective": args.objective,
        "epsilon": eps,
        "steps": steps_used,
        "restarts": restarts if ghorbani else None,
        "beta": beta if ghorbani else None,
        "k": res.k,
        "n": x.shape[0],
        "input": None if args.input is None else str(args.input),
        "input_files": None if files is None else [f.name for f in files],  # the rows' order
        "seed": None if args.input is not None else args.seed,  # the built-in slices'
        "attack_seed": ATTACK_SEED,  # the attack's own draws (random starts, random sign)
        "units": {
            "epsilon": "L-inf budget as a fraction of the intensity range (8/255: 8 grey "
            "levels of 255; twice that in cfx's [-1, 1] pixels)",
            "max_linf": "largest change of any pixel, as epsilon",
            "mass_center_shift": "pixels between the maps' centres of mass",
            "top_k_intersection": "share of the k most salient pixels still among the k",
            "label_kept": "share of images whose predicted class stayed",
        },
        "top_k_intersection": mean_and_ci(res.top_k_intersection),
        "spearman": mean_and_ci(res.spearman),
        "mass_center_shift": mean_and_ci(res.mass_center_shift),
        "label_kept": float(res.label_kept.float().mean()),
        "max_linf": float(res.linf.max()),
    }
    if aims:  # the map's share in what these attacks pull it into
        summary["region"] = region_name
        summary["region_mask"] = None if args.region_mask is None else str(args.region_mask)
        summary["region_on_marker_instead"] = int(empty.sum())  # none unless mirror
        summary["region_mass"] = {
            "before": mean_and_ci(relevance_mass_accuracy(res.maps.abs(), goal)),
            "after": mean_and_ci(relevance_mass_accuracy(res.maps_adv.abs(), goal)),
        }
    np.save(out / "attacked.npy", res.x_adv.detach().cpu().float().numpy())
    attack_figure(
        x,
        res.x_adv,
        res.maps,
        res.maps_adv,
        out / "attack.png",
        title=f"{args.method}, {args.objective}, eps {args.epsilon}"
        + (f" (region outlined: {region_name})" if aims else ""),
        row_names=None if files is None else [f.name for f in files],
        region=goal if aims else None,
    )
    # last, so that it keeps every warning of the run (the figure's too)
    summary["warnings"] = list(notes)  # what the run printed to stderr, e.g. about its inputs
    (out / "attack.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    shown = {k: v for k, v in summary.items() if k not in ("input_files", "units")}
    print(json.dumps(shown, indent=2))  # the files' order and the units are in attack.json
    print(f"wrote {out}/attack.csv, attack.json, attack.png, attacked.npy", file=sys.stderr)
    return 0
