"""Is the Latent Shift peer held back by its search settings? (issue 4; session 33)

    python benchmarks/latent_shift_probe.py [--n 128] [--data-seed 2]

``benchmarks/trajectory.py`` runs the peer at its published defaults, where it flips about
30 % of tumour slices to healthy. Its search walks the single direction ``dp/dz`` at ``z_0``
and stops at the first of: the prediction no longer falling, the source probability below
0.05 or down by ``search_pred_diff`` (0.8), the frame's L1 change above
``search_max_pixel_diff_pct`` (5 %) of the start's L1 norm, or ``|lambda|`` past
``search_max_steps``. This probe runs the defaults and a widened search (pixel cap 50 %,
prediction change 0.99: chosen on validation seed 1, 64 slices per direction, over caps of
20 / 50 / 100 % and a smaller step) on the trajectory benchmark's own inputs: the same
slices, the same inverted latents ``z_0`` (same inversion, same batches of 32), the same
scoring (``_metrics``). The defaults' row must reproduce ``benchmarks/results/trajectory.json``'s
Latent Shift figures, which checks that the inputs are the same; the cfx rows are read from
that file.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import torch
from _provenance import provenance
from trajectory import REAL_SEED, TEST_SEED, _metrics, run_latent_shift

from cfx.calls import frozen
from cfx.data.brain import make_dataset
from cfx.inversion import invert
from cfx.zoo import load_classifier, load_generator

WIDE = {"search_max_pixel_diff_pct": 0.5, "search_pred_diff": 0.99}
"""The widened search (the peer's defaults: 0.05 and 0.8)."""

SHOWN = ("flip_rate", "oracle_agreement", "spearman_t_f", "psnr_to_source", "realism_frechet")
CFX_ROWS = ("option1_gradient", "option2_monotone", "option2_localised", "pixel_baseline")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=128, help="slices per direction")
    parser.add_argument("--data-seed", type=int, default=TEST_SEED)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=32, help="inversion batch (as trajectory.py)")
    parser.add_argument("--inversion-steps", type=int, default=100)
    parser.add_argument(
        "--reference",
        type=Path,
        default=Path("benchmarks/results/trajectory.json"),
        help="the trajectory benchmark's results on the same inputs",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/latent_shift_probe.json")
    )
    args = parser.parse_args()
    reference = json.loads(args.reference.read_text()) if args.reference.is_file() else {}
    settings = reference.get("quality_settings", {})
    same = all(
        settings.get(k) == v
        for k, v in {
            "n": args.n,
            "data_seed": args.data_seed,
            "steps": args.steps,
            "batch": args.batch,
            "inversion_steps": args.inversion_steps,
        }.items()
    )

    gen = load_generator("brain-gan")
    clf = load_classifier("brain-cnn")
    oracle = load_classifier("brain-oracle")
    seg = load_classifier("brain-oracle-seg")
    data = make_dataset(8 * args.n, seed=args.data_seed)
    real = make_dataset(8 * args.n, seed=REAL_SEED)
    results: dict[str, object] = {
        "settings": vars(args)
        | {"out": str(args.out), "reference": str(args.reference), "wide": WIDE},
        "provenance": provenance(),
    }
    for direction, target in (("tumour_to_healthy", 0), ("healthy_to_tumour", 1)):
        pick = torch.nonzero(data.labels != target).flatten()[: args.n]
        x, masks = data.images[pick], data.masks[pick]
        tgt = torch.full((args.n,), target, dtype=torch.long)
        z0 = torch.cat(
            [
                invert(gen, x[i : i + args.batch], steps=args.inversion_steps).latents
                for i in range(0, args.n, args.batch)
            ]
        )
        with torch.no_grad():
            f_real = oracle.features(real.images[real.labels == target][: args.n])
        block: dict[str, Any] = {}
        for name, search in (("latent_shift", {}), ("latent_shift_wide", WIDE)):
            t0 = time.perf_counter()
            with frozen(gen, clf):
                frames = run_latent_shift(gen, clf, z0, 1 - tgt, args.steps, **search)
            block[name] = _metrics(frames, x, masks, tgt, target, clf, oracle, seg, f_real, args)
            block[name]["seconds_per_trajectory_batch1"] = (time.perf_counter() - t0) / args.n
        stored = reference.get(direction, {})
        if same and "latent_shift" in stored:
            ours, theirs = block["latent_shift"], stored["latent_shift"]
            shared = [  # every quality figure both record (timings differ by run)
                k
                for k in ours.keys() & theirs.keys()
                if isinstance(ours[k], float) and "second" not in k
            ]
            block["defaults_reproduce_reference"] = all(
                math.isclose(ours[k], theirs[k], rel_tol=0, abs_tol=1e-6)
                or (math.isnan(ours[k]) and math.isnan(theirs[k]))  # undefined in both runs
                for k in shared
            )
            block["compared_figures"] = sorted(shared)
            block["reference"] = {m: stored[m] for m in CFX_ROWS if m in stored}
            # the real-vs-real floor the reference measured on these slices, for realism
            block |= {k: stored[k] for k in stored if k.startswith("realism_floor")}
        results[direction] = block
        for name in ("latent_shift", "latent_shift_wide", *block.get("reference", {})):
            row = block[name] if name in block else block["reference"][name]
            print(direction, f"{name:18s}", "  ".join(f"{k} {row[k]:.3f}" for k in SHOWN))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
