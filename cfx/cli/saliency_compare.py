"""``cfx saliency compare``: saliency methods side by side against ground-truth masks (a
method x metric table, a map grid and attack figures)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from cfx.cli.console import keeping_warnings, warnings_markdown
from cfx.cli.models import checked_source, load_model, size_notice
from cfx.cli.paths import add_output_options, not_the_input_folder, out_folder
from cfx.cli.saliency import (
    add_method_options,
    as_flags,
    brain_name_notice,
    built_in,
    check_gradcam_layer,
    check_target_class,
    checked_input,
    default_classifier,
    method_names,
    no_image_in_target_notice,
    predicted_classes,
    read_input,
)
from cfx.cli.saliency_attack import attack_figure_for
from cfx.errors import check_int, counted, first_names
from cfx.files import write_atomic

if TYPE_CHECKING:
    import torch


log = logging.getLogger(__name__)
GRID_ROWS = 6  # images in compare's grid.png (rows of a figure stay readable)
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


def register(ssub: argparse._SubParsersAction) -> None:
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
        help="class explained: an index of the classifier's outputs, healthy / tumour "
        "(the brain models' 0 / 1; default: 1), or predicted (each image's predicted class: "
        "images of many classes with masks of their own objects)",
    )
    c.add_argument(
        "--n",
        type=int,
        default=None,
        help="built-in tumour test slices to score (default: 64; another --n draws another set)",
    )
    c.add_argument(
        "--seed", type=int, default=None, help="seed of the built-in slices (default: 2 = test)"
    )
    add_method_options(c)
    c.add_argument(
        "--attack-n",
        type=int,
        default=4,
        help="slices attacked for the figures, after the table (0: none; a Ghorbani top-k "
        "attack at 8/255 on each slice's predicted class, 40 steps, 10 with --fast: minutes "
        "for integrated_gradients)",
    )
    add_output_options(
        c,
        "cfx-saliency",
        "table.csv, table.md, grid.png and, with --attack-n > 0, "
        + " and ".join(f"attack_{m}.png" for m in COMPARE_ATTACKS),
    )
    c.set_defaults(run=run_compare)


@keeping_warnings  # table.md repeats what the run warned
def run_compare(args: argparse.Namespace, notes: list[str]) -> int:
    from cfx.saliency.compare import compare_methods, tumour_slices
    from cfx.viz import saliency_grid

    names = method_names(args.methods)
    built_in(args, 64)
    check_int("--attack-n", args.attack_n, minimum=0)
    from cfx.cli.trajectory import parse_target

    default_classifier(args)
    # an unknown or missing classifier is named before the default target is warned about
    classifier = checked_source("--classifier", args.classifier, "classifier", has_generator=False)
    defaulted, given = args.target is None, args.target
    predicted = not defaulted and str(given).strip().lower() == "predicted"
    args.target = None if predicted else parse_target(str("tumour" if defaulted else given))
    not_the_input_folder(args.out, args.masks, "--masks")
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
    elif not brain and not predicted:
        brain_name_notice(given, args.target, args.classifier)
    model = load_model("--classifier", classifier)
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
    if predicted:
        classes = predicted_classes(model, x)  # (N,)
        counts = zip(*classes.unique(return_counts=True), strict=True)
        explained = (
            "each image's predicted class ("
            + ", ".join(f"class {int(c)}: {counted(int(n), 'image')}" for c, n in counts)
            + ")"
        )
        target: int | torch.Tensor = classes
    else:
        check_target_class(model, x, args.target, brain)  # compare_methods would name it
        no_image_in_target_notice(model, x, args.target)
        target, explained = args.target, f"target class {args.target}"
    out_folder(args.out)  # inputs read, before the work: an unwritable --out fails now
    from cfx.notices import held
    from cfx.saliency.compare import log as compare_log

    with (
        held((compare_log,) if files is not None else (), "cfx_empty_masks"),
        as_flags(args.gradcam_layer),
    ):
        res = compare_methods(  # empty masks of files were named by file, above
            model,
            x,
            masks,
            target,
            names,
            fast=args.fast,
            gradcam_layer=args.gradcam_layer,
            show_progress=not args.no_progress,
        )
    out = Path(args.out)
    for name in COMPARE_OUTPUTS:  # an earlier run's: none may stay beside this run's
        (out / name).unlink(missing_ok=True)
    write_atomic(out / "table.csv", res.to_csv())
    grid_rows = min(GRID_ROWS, x.shape[0])
    note = (
        f"{source}, classifier `{args.classifier}`, {explained}; maps scored "
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

    def table_md() -> None:  # with every warning of the run so far (the grid's, the attacks')
        lines = [note, "", *warnings_markdown(notes), res.to_markdown()]
        write_atomic(out / "table.md", "\n".join(lines))

    # the table first: the attack figures take minutes, and an interrupted run kept no table
    table_md()
    best, dice = res.best("dice")
    print(res.to_markdown(), end="")
    print(f"best Dice: {best} ({dice:.3f}); wrote {out}/table.csv, table.md, grid.png")
    if args.attack_n > 0:
        print(
            f"attack figures ({', '.join(COMPARE_ATTACKS)}, {counted(args.attack_n, 'slice')}; "
            "--attack-n 0 skips them) ...",
            file=sys.stderr,
        )
        attacked = []
        for name in COMPARE_ATTACKS:
            path = attack_figure_for(
                model,
                name,
                x[: args.attack_n],
                out,
                fast=args.fast,
                show_progress=not args.no_progress,
            )
            attacked.append(path.name)
        table_md()  # again, keeping the attacks' warnings
        print(f"wrote {', '.join(f'{out}/{a}' for a in attacked)}")
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
