"""Can a model of healthy slices (not brain-cnn) tell which localised end frames the oracle rejects?

    python benchmarks/prior_probe.py [--seeds 1 4 6] [--reference-seed 10] [--components 16 64]

Validation slices only; the end frames, regions and oracle verdicts of
``trajectory_validation.localised_ends`` (cached; computed if missing). Session 22 and
``feature_probe.py`` found that nothing brain-cnn computes ranks the rejected end frames (AUC
0.35-0.71). An anomaly model of healthy anatomy is the other candidate prior: a
principal-component model of real healthy slices of a training seed (``--reference-seed``),
and the end frame's residual from its projection inside the edited region. Printed per
seed and pooled:

* the AUC with which the residual ranks rejected end frames above accepted ones;
* as a check that the prior sees lesions at all, the AUC with which it ranks the *start*
  frames (reconstructed tumour slices) above the accepted end frames, in the same regions.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import feature_probe
import torch
import trajectory_validation as validation  # the sibling script: models for validation

from cfx.data.brain import make_dataset
from cfx.filters import gaussian_blur


def region_residual(images, region, mean, basis) -> torch.Tensor:
    """Mean squared residual from the healthy subspace inside ``region`` (blurred 1 px)."""
    flat = images.flatten(1) - mean
    rec = (flat @ basis.T) @ basis
    resid = gaussian_blur((flat - rec).view_as(images) ** 2, 1.0)
    return (resid * region).flatten(1).sum(1) / region.flatten(1).sum(1).clamp_min(1e-6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 4, 6])
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--reference-seed", type=int, default=10)
    parser.add_argument("--reference-n", type=int, default=4000)
    parser.add_argument("--components", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--cache", type=Path, default=Path("runs/validation"))
    args = parser.parse_args()
    gen, clf, oracle = validation.validation_models(args.seeds)
    ref = make_dataset(args.reference_n, seed=args.reference_seed)
    healthy = ref.images[ref.labels == 0].flatten(1)
    mean = healthy.mean(0)
    _, _, vt = torch.linalg.svd(healthy - mean, full_matrices=False)
    print(f"reference: {len(healthy)} healthy slices of seed {args.reference_seed}", flush=True)
    ends = {s: validation.localised_ends(args, s, gen, clf, oracle) for s in args.seeds}
    for k in args.components:
        basis = vt[:k]
        pooled_end, pooled_start, pooled_rej = [], [], []
        for seed, e in ends.items():
            rejected = e["oracle_end"] < 0.5
            end = region_residual(e["end"], e["region"], mean, basis)
            begin = region_residual(e["start"], e["region"], mean, basis)
            pooled_end.append(end)
            pooled_start.append(begin)
            pooled_rej.append(rejected)
            is_start = torch.cat([torch.ones(len(begin)), torch.zeros(int((~rejected).sum()))])
            sees = feature_probe.auc_high(torch.cat([begin, end[~rejected]]), is_start.bool())
            print(
                f"k={k} seed {seed}: rejected-end AUC {feature_probe.auc_high(end, rejected):.2f}"
                f" (median {end[rejected].median():.4f} vs {end[~rejected].median():.4f}); "
                f"start-vs-accepted-end AUC {sees:.2f}",
                flush=True,
            )
        end, rej = torch.cat(pooled_end), torch.cat(pooled_rej)
        print(f"k={k} pooled rejected-end AUC {feature_probe.auc_high(end, rej):.2f}", flush=True)


if __name__ == "__main__":
    main()
