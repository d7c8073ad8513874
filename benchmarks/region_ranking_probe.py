"""Rank the localised search's candidate pixels by the classifier's attribution, not the change.

    python benchmarks/region_ranking_probe.py [--seed 6] [--modes change,attribution,mix]

Validation slices only (brain seed 6 by default; never a test split), the cached 100-step
inversions of ``trajectory_validation.py`` (``runs/validation``). Localised Option 1 with the
default candidates ranks pixels by ``blur(|G(z_K) - G(z_0)|)``, the change of its first,
global ascent (``change``). The alternatives rank them by where that change raised the
classifier's target log-odds: the path-integrated attribution ``sum_j grad_x s(m_j) * (x_{j+1}
- x_j)`` over 8 segments of the global path (``m_j`` the segment's midpoint image), its
positive part (``attribution``), or the geometric mean of that and the change (``mix``).
Prints flip rate, oracle agreement, localisation, mean region size, realism and the slices the
oracle rejects, per mode, on the first ``--n`` tumour slices walked to healthy.
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import torch
from trajectory_validation import cached_latents  # the sibling script: the same latent cache

from cfx.calls import class_logits, target_margin
from cfx.data.brain import make_dataset
from cfx.filters import gaussian_blur
from cfx.metrics import frechet_distance
from cfx.metrics.trajectory import summarise
from cfx.trajectory import LocalisedAscent
from cfx.zoo import load_classifier, load_generator

SEGMENTS = 8


class AttributionRanked(LocalisedAscent):
    """Localised ascent whose candidate regions are the top pixels of an attribution map."""

    def __init__(self, *args, mode: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.mode = mode

    def change_map(self, path1: torch.Tensor, start: torch.Tensor, target: torch.Tensor):
        if self.mode == "change":
            return super().change_map(path1, start, target)
        idx = torch.linspace(0, path1.shape[1] - 1, SEGMENTS + 1).round().long().tolist()
        with torch.no_grad():
            xs = [self.generator.decode(path1[:, j]) for j in idx]
        total = torch.zeros_like(xs[0])
        for a, b in itertools.pairwise(xs):
            mid = ((a + b) / 2).requires_grad_(True)
            score = target_margin(class_logits(self.classifier, mid), target).sum()
            (grad,) = torch.autograd.grad(score, mid)
            total = total + grad * (b - a)
        ranking = total.sum(1, keepdim=True).clamp_min(0.0)
        if self.mode == "mix":
            ranking = (ranking * (xs[-1] - xs[0]).abs().sum(1, keepdim=True)).sqrt()
        return gaussian_blur(ranking, self.change_blur) if self.change_blur > 0 else ranking


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=6, help="brain seed (1/4/6 = validation)")
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--modes", default="change,attribution,mix")
    parser.add_argument("--cache", type=Path, default=Path("runs/validation"))
    args = parser.parse_args()
    gen, clf = load_generator("brain-gan"), load_classifier("brain-cnn")
    oracle = load_classifier("brain-oracle")
    data = make_dataset(8 * args.n, seed=args.seed)
    pick = torch.nonzero(data.labels != 0).flatten()[: args.n]
    x, masks = data.images[pick], data.masks[pick]
    z0 = cached_latents(gen, x, args.cache / f"z0_seed{args.seed}_n{args.n}.safetensors")
    with torch.no_grad():
        f_real = oracle.features(data.images[data.labels == 0][: args.n])
    levels = torch.arange(11) / 10
    for mode in args.modes.split(","):
        explainer = AttributionRanked(gen, clf, oracle=oracle, mode=mode)
        t0 = time.perf_counter()
        rs = [
            explainer.explain(x[i : i + 32], 0, latents=z0[i : i + 32])
            for i in range(0, args.n, 32)
        ]
        seconds = (time.perf_counter() - t0) / args.n
        p = torch.cat([r.probs for r in rs])
        o = torch.cat([r.oracle_probs for r in rs])
        frames = torch.cat([r.frames for r in rs])
        regions = torch.cat([r.edit_masks for r in rs])
        s = summarise(p, levels, frames, x, oracle_probs=o, masks=masks)
        with torch.no_grad():
            realism = frechet_distance(f_real, oracle.features(frames[:, -1]))
        print(
            f"seed {args.seed} {mode}: flip {s['flip_rate']:.3f} "
            f"agreement {s['oracle_agreement']:.3f} localisation {s['localisation']:.3f} "
            f"region {regions.flatten(1).mean(1).mean():.3f} realism {realism:.3f} "
            f"{seconds:.2f} s/path rejected {torch.nonzero(o[:, -1] < 0.5).flatten().tolist()}",
            flush=True,
        )


if __name__ == "__main__":
    main()
