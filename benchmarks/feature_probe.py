"""Does brain-cnn's own feature map see the lesion the oracle still finds in a localised end frame?

    python benchmarks/feature_probe.py [--seeds 1 4 6] [--reference-seed 10]

Validation slices only (brain seeds 1 / 4 / 6), the cached 100-step inversions of
``trajectory_validation.py``. Localised Option 2 with its defaults walks the first ``--n``
tumour slices of each seed to healthy (as ``agreement_probe.py`` does). brain-cnn is global
average pooling over an 8 x 8 map followed by a linear head, so its logit is the mean of 64
per-location logits; a faint lesion left in one place can be outvoted by the other 63.
The signals scored here, by how well they rank the end frames the oracle rejects *above* those it
accepts (AUC; 0.5 is chance, session 22's perturbation signals reached 0.35-0.54):

* ``location margin max``: the largest per-location tumour-minus-healthy logit (brain-cnn's
  class activation map), over the whole map and inside the edited region;
* ``pooled Mahalanobis``: distance of the pooled 128-d feature to real healthy slices of a
  training seed (``--reference-seed``; shrunk covariance);
* ``location Mahalanobis max``: the largest per-location distance to the same slices' feature
  at that location (per-location mean, shared shrunk covariance).

End frames, regions and verdicts are cached in ``--cache`` by
``trajectory_validation.localised_ends``, which the other probes reuse. A signal well above
0.5 could steer the search with brain-cnn alone.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F
import trajectory_validation as validation  # the sibling script: its latent cache

from cfx.data.brain import make_dataset
from cfx.metrics.trajectory import localisation


def auc_high(score: torch.Tensor, rejected: torch.Tensor) -> float:
    """Share of (rejected, accepted) pairs in which the rejected frame scores higher."""
    hi = score[rejected][:, None] > score[~rejected][None, :]
    ties = score[rejected][:, None] == score[~rejected][None, :]
    return float((hi.float() + 0.5 * ties.float()).mean())


def feature_maps(clf, images: torch.Tensor) -> torch.Tensor:
    """brain-cnn's last feature maps ``(B, C, 8, 8)``, in chunks of 64."""
    with torch.no_grad():
        return torch.cat([clf.features(images[i : i + 64]) for i in range(0, len(images), 64)])


def location_margin(clf, maps: torch.Tensor) -> torch.Tensor:
    """Per-location tumour-minus-healthy logit ``(B, 8, 8)``; its mean is brain-cnn's margin."""
    linear = clf.head[-1]
    logits = torch.einsum("bchw,kc->bkhw", maps, linear.weight) + linear.bias[None, :, None, None]
    return logits[:, 1] - logits[:, 0]


def shrunk_inverse(x: torch.Tensor, shrink: float = 0.1) -> torch.Tensor:
    cov = torch.cov(x.T)
    scale = cov.diagonal().mean()
    return torch.linalg.inv((1 - shrink) * cov + shrink * scale * torch.eye(len(cov)))


def push(args, ends, gen, clf, oracle, mu, inv) -> None:
    """Walk the end latent down brain-cnn's pooled Mahalanobis distance inside its region."""
    region, z = ends["region"], ends["z_end"]
    with torch.no_grad():
        background = gen.decode(ends["z0"])
    for it in range(args.push + 1):
        zi = z.clone().requires_grad_(True)
        image = region * gen.decode(zi) + (1 - region) * background
        maps = clf.features(image)
        logits = clf.head(maps)
        d = maps.mean((2, 3)) - mu
        maha = torch.einsum("bi,ij,bj->b", d, inv, d)
        if it % 5 == 0:
            with torch.no_grad():
                p = torch.softmax(logits, 1)[:, 0]
                agree = torch.softmax(oracle(image), 1)[:, 0] >= 0.5
                loc = localisation(ends["start"], image, ends["masks"]).nanmean()
            print(
                f"  push +{it:2d}: Mahalanobis median {maha.median():.1f}, brain-cnn median "
                f"{p.median():.4f} (min {p.min():.3f}), oracle agreement "
                f"{agree.float().mean():.3f}, localisation {loc:.3f}",
                flush=True,
            )
        (grad,) = torch.autograd.grad(maha.sum(), zi)
        norm = grad.norm(dim=1, keepdim=True).clamp_min(1e-12)
        z = (z - args.eta * grad / norm).detach()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 4, 6])
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--reference-seed", type=int, default=10)
    parser.add_argument("--reference-n", type=int, default=2000)
    parser.add_argument("--push", type=int, default=0, help="Mahalanobis descent iterations")
    parser.add_argument("--eta", type=float, default=0.1)
    parser.add_argument("--cache", type=Path, default=Path("runs/validation"))
    args = parser.parse_args()
    gen, clf, oracle = validation.validation_models(args.seeds)
    ref = make_dataset(args.reference_n, seed=args.reference_seed)
    ref_maps = feature_maps(clf, ref.images[ref.labels == 0])  # (N, C, 8, 8)
    pooled_ref = ref_maps.mean((2, 3))
    pooled_mu, pooled_inv = pooled_ref.mean(0), shrunk_inverse(pooled_ref)
    loc_mu = ref_maps.mean(0)  # (C, 8, 8)
    resid = (ref_maps - loc_mu).permute(0, 2, 3, 1).reshape(-1, ref_maps.shape[1])
    loc_inv = shrunk_inverse(resid)
    print(f"reference: {len(ref_maps)} healthy slices of seed {args.reference_seed}", flush=True)

    pooled: dict[str, list[torch.Tensor]] = {}
    rejected_all = []
    for seed in args.seeds:
        ends = validation.localised_ends(args, seed, gen, clf, oracle)
        rejected = ends["oracle_end"] < 0.5
        rejected_all.append(rejected)
        maps = feature_maps(clf, ends["end"])
        margin = location_margin(clf, maps)
        region = F.adaptive_max_pool2d(ends["region"], 8)[:, 0] > 0.5
        pooled_d = maps.mean((2, 3)) - pooled_mu
        loc_d = (maps - loc_mu).permute(0, 2, 3, 1)
        signals = {
            "location margin max": margin.flatten(1).max(1).values,
            "location margin max in region": margin.masked_fill(~region, -1e9)
            .flatten(1)
            .max(1)
            .values,
            "pooled Mahalanobis": torch.einsum("bi,ij,bj->b", pooled_d, pooled_inv, pooled_d),
            "location Mahalanobis max": torch.einsum("bhwi,ij,bhwj->bhw", loc_d, loc_inv, loc_d)
            .flatten(1)
            .max(1)
            .values,
        }
        print(
            f"seed {seed}: {int(rejected.sum())} rejected of {len(rejected)} "
            f"{torch.nonzero(rejected).flatten().tolist()}",
            flush=True,
        )
        for name, score in signals.items():
            pooled.setdefault(name, []).append(score)
            print(
                f"  {name}: AUC {auc_high(score, rejected):.2f} (rejected median "
                f"{score[rejected].median():.2f}, accepted {score[~rejected].median():.2f})",
                flush=True,
            )
        if args.push:
            push(args, ends, gen, clf, oracle, pooled_mu, pooled_inv)
    rejected = torch.cat(rejected_all)
    print(f"pooled: {int(rejected.sum())} rejected of {len(rejected)}")
    for name, scores in pooled.items():
        print(f"  {name}: pooled AUC {auc_high(torch.cat(scores), rejected):.2f}", flush=True)


if __name__ == "__main__":
    main()
