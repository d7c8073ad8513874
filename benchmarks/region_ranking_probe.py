"""Rank the localised search's candidate pixels by the classifier's attribution, not the change.

    python benchmarks/region_ranking_probe.py [--seed 6] [--modes change,attribution,mix]

Validation slices only (brain seed 6 by default; never a test split), the cached 100-step
inversions of ``trajectory_validation.py`` (``runs/validation``). Localised Option 1 with the
default candidates ranks pixels by ``blur(|G(z_K) - G(z_0)|)``, the change of its first,
global ascent (``change``). The alternatives rank them by where that change raised the
classifier's target log-odds: the path-integrated attribution ``sum_j grad_x s(m_j) * (x_{j+1}
- x_j)`` over 8 segments of the global path (``m_j`` the segment's midpoint image), its
positive part (``attribution``), or the geometric mean of that and the change (``mix``).
Each mode is scored by ``trajectory_validation.py``'s variant loop (flip rate, oracle agreement,
localisation, realism, the slices the oracle rejects, ...) on the first ``--n`` tumour slices
walked to healthy.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import torch
import trajectory_validation as validation  # the sibling script: its cache and variant loop

from cfx.calls import class_logits, target_margin
from cfx.filters import gaussian_blur
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
    if args.seed == 2:
        raise SystemExit("seed 2 is the test split: probe on validation (1, 4, 6)")
    for mode in args.modes.split(","):  # the sibling script runs and scores each as a kind
        validation.KINDS[mode] = lambda g, f, o, kw, mode=mode: AttributionRanked(
            g, f, oracle=o, mode=mode, **kw
        )
    gen, clf = load_generator("brain-gan"), load_classifier("brain-cnn")
    run = argparse.Namespace(
        seed=args.seed, n=args.n, target=0, cache=args.cache, variants=args.modes.replace(",", ";")
    )
    validation.variants(run, gen, clf, load_classifier("brain-oracle"))


if __name__ == "__main__":
    main()
