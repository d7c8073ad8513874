"""Does an image's boundary-crossing path depend on the other images of its batch?

    OMP_NUM_THREADS=2 python benchmarks/batch_invariance_probe.py [--n 64]

Test slices (brain seed 2, the first ``--n`` tumour slices ``cfx trajectory --n N`` draws),
walked to healthy by localised Option 2 (``cfx trajectory`` defaults), from the same inverted
latents in six batchings: one batch; chunks of half the size; one batch with the second half
first; the first half with copies of slice 0 as companions; one slice at a time
(``--batch-size 1``), in order and reversed. Prints, against the one-batch run (the reversed
one-at-a-time run against the one-at-a-time run), how many slices end on other frames
(largest pixel difference > 1e-3) and with another region, the aggregate flip rate, oracle
agreement and localisation of each batching, and the seconds per path one batch and one at a
time. Then the
arithmetic behind it: which batch sizes 1..n make brain-gan's decode or brain-cnn's logits
differ from the same rows at batch n, and whether reordering the rows does.
"""

from __future__ import annotations

import argparse

import torch

from cfx.cli.trajectory import builtin_sources
from cfx.inversion import invert
from cfx.metrics.trajectory import summarise
from cfx.trajectory import MonotonePath, TrajectoryResult, concat
from cfx.zoo import load_classifier, load_generator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64)
    args = parser.parse_args()
    n, half = args.n, args.n // 2
    x, masks = builtin_sources(n, 2, 0)
    gen, clf = load_generator("brain-gan"), load_classifier("brain-cnn")
    oracle = load_classifier("brain-oracle")
    z0 = invert(gen, x, steps=100).latents
    explainer = MonotonePath(gen, clf, steps=10, localise=True, oracle=oracle)

    def run(rows: torch.Tensor) -> TrajectoryResult:
        return explainer.explain(x[rows], 0, latents=z0[rows])

    every = torch.arange(n)
    whole = run(every)
    swapped = torch.cat([every[half:], every[:half]])
    batchings = {
        f"chunks of {half}": concat([run(every[:half]), run(every[half:])]),
        "second half first": run(swapped)[torch.argsort(swapped)],
    }
    padded = torch.cat([every[:half], torch.zeros(n - half, dtype=torch.long)])
    first_half = run(padded)[:half]

    def compare(name: str, res: TrajectoryResult, ref: TrajectoryResult, src: torch.Tensor) -> None:
        frames = (res.frames - ref.frames).abs().flatten(1).amax(1)  # (B,)
        regions = (res.edit_masks != ref.edit_masks).flatten(1).any(1)  # (B,)
        s = summarise(
            res.probs,
            res.levels,
            res.frames,
            src,
            oracle_probs=res.oracle_probs,
            masks=masks[: len(res)],
        )
        print(
            f"{name:>28}: {int((frames > 1e-3).sum())} of {len(res)} slices on other frames "
            f"(max {float(frames.max()):.3f}), {int(regions.sum())} with another region; "
            f"flip {s['flip_rate']:.3f} agreement {s['oracle_agreement']:.3f} "
            f"localisation {s['localisation']:.3f}"
        )

    compare("one batch (reference)", whole, whole, x)
    for name, res in batchings.items():
        compare(name, res, whole, x)
    compare("first half + copies of slice 0", first_half, whole[:half], x[:half])

    # one slice at a time (`cfx trajectory --batch-size 1`): nothing but the slice decides
    # its arithmetic, so the order of the run, or which other slices it holds, cannot matter
    alone = concat([run(every[i : i + 1]) for i in range(n)])
    backwards = concat([run(every[i : i + 1]) for i in reversed(range(n))])[every.flip(0)]
    compare("one at a time (batch 1)", alone, whole, x)
    compare("one at a time, reversed", backwards, alone, x)
    # both timed by the explainer (``seconds``; concat adds up the calls'), latents given
    print(
        f"seconds per path (inversion excluded): one batch of {n} {whole.seconds / n:.3f}, "
        f"one at a time {alone.seconds / n:.3f}"
    )

    frames = whole.frames[:, -1]  # (B, C, H, W)
    z = whole.latents[:, 3]  # (B, d)
    with torch.no_grad():
        logits, decoded = clf(frames), gen.decode(z)
        sizes = [
            b
            for b in range(1, n + 1)
            if not torch.equal(clf(frames[:b]), logits[:b])
            or not torch.equal(gen.decode(z[:b]), decoded[:b])
        ]
        flipped = torch.equal(clf(frames.flip(0)).flip(0), logits) and torch.equal(
            gen.decode(z.flip(0)).flip(0), decoded
        )
    print(f"batch sizes whose decode or logits differ from batch {n}: {sizes}")
    print(f"reordering the rows changes neither: {flipped}")


if __name__ == "__main__":
    main()
