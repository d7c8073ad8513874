"""How do the zoo classifiers answer at image sizes they were not trained on?

    python benchmarks/scale_probe.py [--classifiers brain-cnn brain-oracle] [--n 500]
        [--out benchmarks/results/scale_probe.json]

Brain test slices (seed 2, 64x64, the size every zoo classifier was trained on) are resized
with antialiased bilinear interpolation to each size and classified again. The accuracies
back the command line's warning when a classifier's config records another training size
than the images it is given (``cfx.cli.models.size_notice``). Writes
``benchmarks/results/scale_probe.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch.nn.functional as F
from _provenance import provenance

from cfx.data.brain import make_dataset
from cfx.training.classifier import predict
from cfx.zoo import load_classifier

SIZES = (32, 48, 64, 96, 128)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--classifiers", nargs="+", default=["brain-cnn", "brain-oracle"])
    parser.add_argument("--n", type=int, default=500, help="test slices")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).parent / "results" / "scale_probe.json",
        help="JSON written (default: the committed result)",
    )
    args = parser.parse_args()
    data = make_dataset(args.n, seed=2)
    results: dict[str, dict[str, float]] = {}
    for name in args.classifiers:
        model = load_classifier(name)
        results[name] = {}
        for size in SIZES:
            x = F.interpolate(
                data.images, size=(size, size), mode="bilinear", align_corners=False, antialias=True
            )
            acc = float((predict(model, x).argmax(1) == data.labels).float().mean())
            results[name][f"{size}x{size}"] = acc
            print(f"{name:14s} {size:4d}x{size:<4d} accuracy {acc:.3f}", flush=True)
    args.out.write_text(
        json.dumps({"provenance": provenance(), "n": args.n, "accuracy": results}, indent=1) + "\n"
    )


if __name__ == "__main__":
    main()
