"""``cfx saliency attack``: perturb images within an L-inf budget so that a saliency map
moves while the classifier's label stays (Ghorbani et al.'s objectives, Dombrowski et al.'s
target map, random sign noise as the control)."""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from cfx.cli.console import keeping_warnings
from cfx.cli.models import checked_source, load_model, size_notice
from cfx.cli.options import given_flags
from cfx.cli.paths import add_output_options, out_folder
from cfx.cli.saliency import (
    built_in,
    checked_input,
    default_classifier,
    method_name,
    read_input,
)
from cfx.errors import check_int, check_real
from cfx.files import write_atomic

if TYPE_CHECKING:
    import torch

OBJECTIVES = ("top_k", "mass_center", "targeted", "random", "target_map")
GHORBANI = ("top_k", "mass_center", "targeted")  # the objectives GhorbaniAttack runs
REGIONS = ("mirror", "marker")  # where targeted attacks pull the map
ATTACK_SEED = 0  # the attacks' draws (random starts, random sign): the same run, the same images
ATTACKABLE = ("gradient", "gradient_x_input", "smoothgrad", "integrated_gradients", "gradcam")


def parse_fraction(text: str, flag: str = "--epsilon") -> float:
    """``"8/255"`` or ``"0.03"`` -> float; errors name ``flag``."""
    try:
        return float(Fraction(text.strip()))
    except (ValueError, ZeroDivisionError):
        raise ValueError(
            f"`{flag}` must be a number or a fraction like 8/255, got {text!r}"
        ) from None


def register(ssub: argparse._SubParsersAction) -> None:
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
        "--method",
        default="gradient",
        type=method_name,  # GradCAM reads as gradcam
        choices=ATTACKABLE,
        help="saliency method attacked",
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
        "--n",
        type=int,
        default=None,
        help="built-in tumour test slices to attack (default: 16; another --n draws another set)",
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


COMPARE_ATTACK_STEPS = {False: 40, True: 10}
"""Steps of `cfx saliency compare`'s attack figures, by ``--fast``."""


def attack_figure_for(
    model: torch.nn.Module,
    name: str,
    x: torch.Tensor,
    out: Path,
    *,
    fast: bool,
    show_progress: bool = False,
) -> Path:
    """Ghorbani top-k attack on ``x`` at 8/255 for one method (of each image's predicted
    class; :data:`COMPARE_ATTACK_STEPS` steps); writes and returns the figure."""
    import torch

    from cfx.saliency.attacks import GhorbaniAttack
    from cfx.saliency.compare import build_method
    from cfx.viz import attack_figure

    explainer = build_method(name, model, fast=True)
    attack = GhorbaniAttack(
        explainer, steps=COMPARE_ATTACK_STEPS[fast], show_progress=show_progress
    )
    res = attack.perturb(x, generator=torch.Generator().manual_seed(0))
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

    eps = parse_fraction(args.epsilon)
    if 1 < eps <= 255 and float(eps).is_integer():  # a count of grey levels: 8 for 8/255
        raise ValueError(
            f"`--epsilon` must be a fraction of the intensity range in (0, 1], got {eps:g}: "
            f"{eps:g} grey levels of 255? pass {eps:g}/255"
        )
    eps = check_real("--epsilon", eps, low=0.0, high=1.0, open_low=True)
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
            "have none of their own: give it with --region-mask (one mask image, or an (H, W) "
            ".npy/.pt, shared by every image), or `--region marker` for the scanner-marker "
            "corner of the 64x64 brain slices"
        )
    region_name = "mask" if args.region_mask is not None else args.region or "mirror"
    default_classifier(args)
    files = checked_input(args)
    model = load_model(
        "--classifier",
        checked_source("--classifier", args.classifier, "classifier", has_generator=False),
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
    # per image, the map's share in the region the attack pulls it into (these attacks only)
    masses = (
        (
            relevance_mass_accuracy(res.maps.abs(), goal),
            relevance_mass_accuracy(res.maps_adv.abs(), goal),
        )
        if aims
        else None
    )
    table = io.StringIO()
    write = csv.writer(table, lineterminator="\n").writerow
    per_region = ["region_mass_before", "region_mass_after"] if masses is not None else []
    write(
        [
            "image",
            "top_k_intersection",
            "spearman",
            "mass_center_shift",
            "label_kept",
            "linf",
            *per_region,
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
                *([] if masses is None else [f"{float(m[i]):.4f}" for m in masses]),
                "" if files is None else files[i].name,
            ]
        )
    write_atomic(out / "attack.csv", table.getvalue())

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
            "spearman": "rank correlation of each image's |map| before and after the attack",
        },
        "top_k_intersection": mean_and_ci(res.top_k_intersection),
        "spearman": mean_and_ci(res.spearman),
        "mass_center_shift": mean_and_ci(res.mass_center_shift),
        "label_kept": float(res.label_kept.float().mean()),
        "max_linf": float(res.linf.max()),
    }
    if aims:  # the map's share in what these attacks pull it into
        units = summary["units"]
        assert isinstance(units, dict)
        units["region_mass"] = "share of the |map|'s mass inside the region, before and after"
        units["region_on_marker_instead"] = (
            "images whose mirrored lesion was too small (a lesion on the midline), which aim "
            "at the scanner-marker corner instead"
        )
        summary["region"] = region_name
        summary["region_mask"] = None if args.region_mask is None else str(args.region_mask)
        summary["region_on_marker_instead"] = int(empty.sum())  # none unless mirror
        assert masses is not None  # computed for these attacks above
        summary["region_mass"] = {"before": mean_and_ci(masses[0]), "after": mean_and_ci(masses[1])}
    attacked = io.BytesIO()
    np.save(attacked, res.x_adv.detach().cpu().float().numpy())
    write_atomic(out / "attacked.npy", attacked.getvalue())
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
    write_atomic(out / "attack.json", json.dumps(summary, indent=2))
    shown = {k: v for k, v in summary.items() if k not in ("input_files", "units")}
    print(json.dumps(shown, indent=2))  # the files' order and the units are in attack.json
    print(f"wrote {out}/attack.csv, attack.json, attack.png, attacked.npy", file=sys.stderr)
    return 0
