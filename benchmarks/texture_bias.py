"""Does a classifier read image texture (sharpness, noise) or scanner markers as class evidence?

    python benchmarks/texture_bias.py [--classifiers brain-cnn brain-oracle] [--n 128]

On real healthy slices of brain test seed 2 it reports, per classifier, the share called
tumour: as rendered, after a 3x3 binomial blur, after adding Gaussian noise, and as the zoo
generator's encoder reconstructions (which are smoother than real slices). It also reports
group accuracies on 2,000 tagged slices (marker independent of the label). A classifier that
calls blurred healthy slices or reconstructions tumour can be flipped by a generator path
through texture rather than lesion, which is what BENCHMARKS.md's model zoo section reports
for the first brain-cnn. Writes ``benchmarks/results/texture_bias.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torch.nn.functional as F
from _provenance import provenance

from cfx.data.brain import make_dataset
from cfx.metrics import group_accuracies
from cfx.training.classifier import predict
from cfx.zoo import load_classifier, load_generator


def blur3(x: torch.Tensor) -> torch.Tensor:
    """3x3 binomial blur, edges replicated: ``(B, 1, H, W)`` -> same."""
    k = torch.tensor([1.0, 2.0, 1.0])
    k = (k[:, None] * k[None]) / 16
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), k[None, None].to(x))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--classifiers", nargs="+", default=["brain-cnn", "brain-oracle"])
    parser.add_argument("--n", type=int, default=128, help="real healthy slices")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/texture_bias.json"))
    args = parser.parse_args()

    data = make_dataset(4 * args.n, seed=2)
    healthy = data.images[data.labels == 0][: args.n]
    gen = load_generator("brain-gan")
    noise = torch.randn(healthy.shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        variants = {
            "real": healthy,
            "blurred_3x3": blur3(healthy),
            "noise_0.06": (healthy + 0.06 * noise).clamp(-1, 1),
            "reconstruction": gen.decode(gen.encode(healthy)),
        }
    tagged = make_dataset(2000, seed=2, tagged=True, tag_correlation=0.5)
    results: dict[str, dict] = {"n_healthy": args.n}
    for name in args.classifiers:
        model = load_classifier(name)
        row = {
            f"tumour_share_{k}": float((predict(model, v).argmax(1) == 1).float().mean())
            for k, v in variants.items()
        }
        groups = group_accuracies(
            predict(model, tagged.images).argmax(1), tagged.labels, tagged.tags
        )
        row |= {f"marker_independent_{k}": float(v) for k, v in groups.items()}
        results[name] = row
    args.out.parent.mkdir(parents=True, exist_ok=True)
    results["provenance"] = provenance()
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
