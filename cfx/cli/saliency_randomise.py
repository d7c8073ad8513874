"""``cfx saliency randomise``: Adebayo et al.'s cascading model-parameter randomisation check
for every saliency method, on the built-in tumour slices or your own images.

::

    cfx saliency randomise --methods gradient,gradcam,integrated_gradients --n 8 --out rnd
    cfx saliency randomise --classifier runs/cnn --input scans/ --out rnd

The classifier's parameterised layers are re-initialised one by one from the output side; after
each stage every method's maps are compared with the trained model's by Spearman correlation
(signed and absolute). Maps that stay alike once every layer is random do not explain what the
model learned. Writes ``randomisation.csv`` (method x stage), ``summary.json`` (each method's
last-stage means and Adebayo et al.'s reading of them) and ``cascade.png`` (the first image's
maps along the cascade); prints the summary table.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import sys
from pathlib import Path

from cfx.cli.console import keeping_warnings
from cfx.cli.models import checked_source, load_model, size_notice
from cfx.cli.paths import add_output_options, out_folder
from cfx.files import write_atomic

RANDOMISE_SEED = 0
"""Seed of the new weights and of the random methods' noise (replayed at every stage)."""
OUTPUTS = ("randomisation.csv", "summary.json", "cascade.png")

log = logging.getLogger(__name__)


def register(ssub: argparse._SubParsersAction) -> None:
    from cfx.cli.saliency import add_method_options  # torch is not imported for --help

    r = ssub.add_parser(
        "randomise",
        help="cascading model-parameter randomisation check (Adebayo et al.)",
        description="Re-initialise the classifier's layers one by one from the output side and "
        "compare each method's maps with the trained model's (Spearman, signed and absolute) "
        "after every stage: a method whose maps survive a random model does not explain what "
        "the model learned (Adebayo et al., 'Sanity Checks for Saliency Maps', 2018). The "
        "classifier itself is not changed (a copy is randomised).",
    )
    r.add_argument(
        "--classifier",
        default=None,
        help="classifier to check: a zoo name, a model folder (DIR or DIR/model) or a hub id "
        "(default: brain-cnn)",
    )
    r.add_argument(
        "--input",
        type=Path,
        default=None,
        help="your images instead of the built-in slices: an image file, a folder of them or "
        "a .npy/.pt batch (N, C, H, W), as for `cfx saliency compare` (no masks needed)",
    )
    r.add_argument(
        "--target",
        default=None,
        help="class explained: an index of the classifier's outputs, or healthy / tumour "
        "(the brain models' 0 / 1; default: each image's predicted class)",
    )
    r.add_argument(
        "--n",
        type=int,
        default=None,
        help="built-in tumour test slices (default: 8; another --n draws another set)",
    )
    r.add_argument(
        "--seed", type=int, default=None, help="seed of the built-in slices (default: 2 = test)"
    )
    add_method_options(r)
    add_output_options(r, "cfx-saliency-randomise", ", ".join(OUTPUTS))
    r.set_defaults(run=run_randomise)


@keeping_warnings  # summary.json repeats what the run warned
def run_randomise(args: argparse.Namespace, notes: list[str]) -> int:
    import torch

    from cfx.cli.saliency import (
        as_flags,
        brain_name_notice,
        built_in,
        check_gradcam_layer,
        check_target_class,
        checked_input,
        default_classifier,
        method_names,
        no_image_in_target_notice,
        read_input,
    )
    from cfx.cli.trajectory import _trained_on_brain_slices, parse_target
    from cfx.saliency.compare import tumour_slices
    from cfx.saliency.randomisation import parameterised_layers, randomise_methods
    from cfx.viz import randomisation_figure
    from cfx.zoo import ZOO

    names = method_names(args.methods)
    built_in(args, 8)
    default_classifier(args)
    classifier = checked_source("--classifier", args.classifier, "classifier", has_generator=False)
    target = None if args.target is None else parse_target(str(args.target))
    files = checked_input(args)
    brain = args.classifier in ZOO or _trained_on_brain_slices(classifier)
    if not brain and target is not None:
        brain_name_notice(args.target, target, args.classifier)
    model = load_model("--classifier", classifier)
    if not isinstance(model, torch.nn.Module):
        raise TypeError(
            f"`--classifier` {args.classifier} must load as a torch module to be randomised, "
            f"got {type(model).__name__}"
        )
    check_gradcam_layer(model, names, args.gradcam_layer)
    if args.input is not None:
        x = read_input(args, files, model)
        source = f"{x.shape[0]} images of `{args.input}`"
    else:
        x, _ = tumour_slices(args.n, args.seed)
        size_notice(model, x.shape, "--classifier", "built-in slices")
        source = f"{args.n} tumour slices (brain seed {args.seed})"
    if target is not None:  # and warned, as compare does, when no image is predicted it
        check_target_class(model, x, target, brain)
        no_image_in_target_notice(model, x, target)
    layers = parameterised_layers(model)
    out_folder(args.out)  # inputs read, before the work
    out = Path(args.out)
    with as_flags(args.gradcam_layer):
        results = randomise_methods(
            model,
            x,
            target,
            names,
            fast=args.fast,
            gradcam_layer=args.gradcam_layer,
            seed=RANDOMISE_SEED,
            show_progress=not args.no_progress,
        )
    # an earlier run's files go once this run's are ready, not before (an interrupted rerun
    # left the folder empty; session 45 audit): none may stay beside this run's
    for name in OUTPUTS:
        (out / name).unlink(missing_ok=True)
    table = io.StringIO()
    write = csv.writer(table, lineterminator="\n").writerow
    write(["method", "stage", "layer", "spearman", "spearman_abs", "top_kept", "blank"])
    for name, res in results.items():
        signed, absolute = res.mean()
        kept = res.top_kept.mean(1).tolist()
        blank = res.blank.sum(1).tolist()  # images whose pair of maps holds a blank one
        for stage, layer in enumerate(layers, start=1):
            i = stage - 1
            cells = [f"{signed[i]:.4f}", f"{absolute[i]:.4f}", f"{kept[i]:.4f}", blank[i]]
            write([name, stage, layer, *cells])
    write_atomic(out / "randomisation.csv", table.getvalue())
    rows = []
    for name, res in results.items():
        signed, absolute = res.mean()
        rows.append(
            {
                "method": name,
                "spearman_final": signed[-1],
                "spearman_abs_final": absolute[-1],
                "top_kept_final": float(res.top_kept[-1].mean()),
                "blank_final": int(res.blank[-1].sum()),
                "verdict": res.verdict(),
            }
        )
    summary = {
        "classifier": args.classifier,
        "target": target,  # null: each image's predicted class
        "n": x.shape[0],
        "input": None if args.input is None else str(args.input),
        "input_files": None if files is None else [f.name for f in files],
        "seed": None if args.input is not None else args.seed,  # the built-in slices'
        "randomise_seed": RANDOMISE_SEED,
        "fast": args.fast,
        "layers": layers,  # randomised in this order, output side first
        "reading": "Spearman of each method's maps with the trained model's once every layer "
        "is random, over the images: near 0 (signed and absolute), the maps depend on the "
        "weights; a surviving absolute map follows the input in part; a surviving signed map "
        "follows the input (|rho| >= 0.5 survives). spearman_abs: the Spearman of the maps' "
        "absolute values. top_kept: the share of the trained model's top 2% pixels of |map| "
        "still in the top (chance 0.02); a weight-dependent reading with 0.25 or more says "
        "that the salient structure survives in part. blank_final: images whose trained or "
        "randomised map is blank (constant): it ranks nothing, its Spearman counts as 0 in the "
        "means, and the verdict leaves it out",
        "methods": rows,
    }
    randomisation_figure(
        x[0],
        torch.stack([results[n].original[0] for n in names]),
        torch.stack([results[n].randomised[:, 0] for n in names]),
        names,
        layers,
        out / "cascade.png",
        title=f"cascading randomisation, {args.classifier}: {source}, first image",
    )
    # last, so that it keeps every warning of the run (the figure's too)
    summary["warnings"] = list(notes)  # what the run printed to stderr, e.g. about its inputs
    write_atomic(out / "summary.json", json.dumps(summary, indent=2))
    width = max(len(n) for n in names)
    print(
        f"{'method':<{width}}  spearman  of |map|  top 2% kept  "
        f"reading (all {len(layers)} layers random)"
    )
    for row in rows:
        print(
            f"{row['method']:<{width}}  {row['spearman_final']:8.3f}  "
            f"{row['spearman_abs_final']:8.3f}  {row['top_kept_final']:11.3f}  {row['verdict']}"
        )
    print(f"wrote {out}/{', '.join(OUTPUTS)}", file=sys.stderr)
    return 0
