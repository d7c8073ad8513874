"""Does trimming the chosen region to where the localised edit itself acted raise localisation?

    python benchmarks/refine_probe.py [--seeds 1 4 6] [--trim 0.05,0.1]

Validation slices only; ``trajectory_validation.py``'s cached inversions and variant loop.
The region search picks the top share of the *global* edit's change map. Inside the chosen
region the localised edit is more concentrated, and the soft border and the tails of its
change lie off the lesion, where localisation counts them against the path. The variant
``trimA`` (localised Option 1) takes the region's own end-frame change
``blur(|composite(z_K) - G(z_0)|)``, keeps the region's pixels where it reaches ``A`` times
its maximum (softened as the region is), and ascends from ``z_0`` again inside that smaller
region; where that composite still reaches the margin, its path replaces the region's.
Printed next to ``o1loc`` (the default) for every seed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import trajectory_validation as validation  # the sibling script: its cache and variant loop

from cfx.calls import in_chunks
from cfx.filters import gaussian_blur
from cfx.trajectory import LocalisedAscent


class Trimmed(LocalisedAscent):
    """Localised ascent whose chosen region is trimmed to its own edit's change >= ``trim``
    times its maximum, when the trimmed composite still flips."""

    def __init__(self, *args, trim: float, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.trim = trim

    def choose_regions(self, z0, start, target, background):
        mask, path, probs = super().choose_regions(z0, start, target, background)
        rows = torch.nonzero(mask.flatten(1).amin(1) < 1).flatten()  # a region was found
        if len(rows) == 0:
            return mask, path, probs
        with torch.no_grad():
            end = in_chunks(self.generator.decode, path[rows, -1].view(len(rows), *z0.shape[1:]))
        m = mask[rows]
        change = gaussian_blur(
            (m * end + (1 - m) * background[rows] - start[rows]).abs().sum(1, keepdim=True),
            self.change_blur,
        )
        keep = (change >= self.trim * change.flatten(1).amax(1).view(-1, 1, 1, 1)).float()
        trimmed = m * gaussian_blur(keep, self.soften).clamp(0.0, 1.0)
        path2, p2 = self.ascend_masked(z0[rows], background[rows], trimmed, target[rows])
        paths, prob_rows = list(path.unbind(0)), list(probs.unbind(0))
        for r, i in enumerate(rows.tolist()):
            if bool(p2[r, -1] >= self.margin):
                mask[i], paths[i], prob_rows[i] = trimmed[r], path2[r].flatten(1), p2[r]
        k = max(len(p) for p in prob_rows)
        pad = lambda v: torch.cat([v, v[-1:].expand(k - len(v), *v.shape[1:])])  # noqa: E731
        return mask, torch.stack([pad(z) for z in paths]), torch.stack([pad(p) for p in prob_rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 4, 6])
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--trim", default="0.05,0.1", help="comma-separated shares of the max")
    parser.add_argument("--cache", type=Path, default=Path("runs/validation"))
    args = parser.parse_args()
    gen, clf, oracle = validation.validation_models(args.seeds)
    names = []
    for a in (float(v) for v in args.trim.split(",")):
        validation.KINDS[f"trim{a}"] = lambda g, f, o, kw, a=a: Trimmed(
            g, f, oracle=o, trim=a, **kw
        )
        names.append(f"trim{a}")
    for seed in args.seeds:
        run = argparse.Namespace(
            seed=seed, n=args.n, target=0, cache=args.cache, variants=";".join(["o1loc", *names])
        )
        validation.variants(run, gen, clf, oracle)


if __name__ == "__main__":
    main()
