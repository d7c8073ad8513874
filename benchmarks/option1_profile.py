"""Where Option 1's time goes at batch 32, and which image keeps its ascent running.

    python benchmarks/option1_profile.py [--seed 1] [--repeats 3]

Validation slices only (brain seed 1 by default; never the test split 2): the first 32 tumour
slices walked to healthy from encoder latents, as in the speed section of ``trajectory.py``.
Prints, per repeat, the seconds of each stage of ``GradientAscent.explain`` (input checks,
the ascent, the placement of the frames at their levels, decoding and scoring) and the
ascent's recorded length; then, for the image whose probability changed last, its start and
its probability at iterations 10, 50, 100 and the end.
"""

from __future__ import annotations

import argparse
import time

import torch

from cfx.calls import frozen
from cfx.data.brain import make_dataset
from cfx.inversion import invert
from cfx.trajectory import GradientAscent
from cfx.trajectory.gradient_ascent import finish
from cfx.trajectory.start import start
from cfx.zoo import load_classifier, load_generator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.seed == 2:
        raise SystemExit("seed 2 is the test split: probe on validation (1) or another seed")
    gen, clf = load_generator("brain-gan"), load_classifier("brain-cnn")
    data = make_dataset(8 * 128, seed=args.seed)
    x = data.images[torch.nonzero(data.labels == 1).flatten()[:32]]
    z0 = invert(gen, x, steps=0).latents
    ga = GradientAscent(gen, clf, steps=10)
    target = torch.zeros(32, dtype=torch.long)
    levels = torch.arange(11) / 10
    probs = torch.empty(0)
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        with frozen(gen, clf):
            a = time.perf_counter()
            begin = start(ga, x, 0, z0)
            checks = time.perf_counter() - a
            a = time.perf_counter()
            path, probs = ga.ascend(z0, target)
            ascent = time.perf_counter() - a
            a = time.perf_counter()
            flat = path.flatten(2)
            placed = ga.resample(flat, probs, levels[1:], target)
            placement = time.perf_counter() - a
            zs = torch.cat([flat[:, :1], placed], 1).view(32, 11, *z0.shape[1:])
            a = time.perf_counter()
            finish(ga, x, zs, levels, begin, t0, lambdas=None)
            scoring = time.perf_counter() - a
        total = time.perf_counter() - t0
        print(
            f"checks {checks:.3f} s, ascent {ascent:.2f} s ({path.shape[1]} recorded steps), "
            f"placement {placement:.2f} s, decoding and scoring {scoring:.2f} s; "
            f"{total / 32:.3f} s per path"
        )
    changed = probs.diff(dim=1) != 0  # (32, K - 1)
    last = torch.where(changed.any(1), changed.float().cumsum(1).argmax(1) + 1, 0)
    i = int(last.argmax())
    at = [round(float(probs[i, k]), 4) for k in (10, 50, 100, -1)]
    print(
        f"last to stop: image {i}, probability changing until step {int(last[i])}; "
        f"p0 {float(probs[i, 0]):.4f}, p at steps 10/50/100/end {at}"
    )


if __name__ == "__main__":
    main()
