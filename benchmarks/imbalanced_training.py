"""Class weights on imbalanced labels: brain-cnn trained with and without ``balanced=True``.

    python benchmarks/imbalanced_training.py [--healthy 3000] [--tumours 300] [--epochs 4]
        [--seeds 0 1 2 3 4] [--out benchmarks/results/imbalanced_training.json]

Training set: the healthy slices and the first ``--tumours`` tumour slices of
``make_dataset(2 * healthy, seed=0)`` (10 to 1 by default). Test set: 2,000 balanced slices
of the test seed 2. Each arm trains a fresh BrainCNN (the zoo architecture, default width)
with ``ClassifierTrainingConfig(epochs, seed)``, the same seeds for both arms, and is scored
on the test set: accuracy, balanced accuracy (the mean of the two recalls) and each class's
recall. Prints the JSON (medians over seeds beside every run) and writes it to ``--out``
with the command and commit that produced it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from _provenance import provenance

from cfx.data.brain import make_dataset
from cfx.models.classifiers import BrainCNN, BrainCNNConfig
from cfx.training.classifier import ClassifierTrainingConfig, predict, train_classifier


def scores(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> dict:
    pred = predict(model, images).argmax(1)
    recall = [float((pred[labels == k] == k).float().mean()) for k in (0, 1)]
    return {
        "accuracy": float((pred == labels).float().mean()),
        "balanced_accuracy": sum(recall) / 2,
        "healthy_recall": recall[0],
        "tumour_recall": recall[1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--healthy", type=int, default=3000, help="healthy training slices")
    parser.add_argument("--tumours", type=int, default=300, help="tumour training slices")
    parser.add_argument("--epochs", type=int, default=4, help="training epochs per run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="run seeds")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("benchmarks/results/imbalanced_training.json"),
        help="JSON written",
    )
    args = parser.parse_args()
    data = make_dataset(2 * args.healthy, seed=0)
    healthy = torch.nonzero(data.labels == 0).flatten()[: args.healthy]
    tumours = torch.nonzero(data.labels == 1).flatten()[: args.tumours]
    keep = torch.cat([healthy, tumours]).sort().values
    images, labels = data.images[keep], data.labels[keep]
    test = make_dataset(2000, seed=2)
    runs: dict[str, list[dict]] = {"plain": [], "balanced": []}
    for seed in args.seeds:
        for arm in runs:
            cfg = ClassifierTrainingConfig(
                epochs=args.epochs, balanced=arm == "balanced", seed=seed
            )
            t0 = time.perf_counter()
            with tempfile.TemporaryDirectory() as out:
                model, _ = train_classifier(
                    BrainCNN(BrainCNNConfig()), images, labels, out, cfg, show_progress=False
                )
            row = {"seed": seed, "seconds": round(time.perf_counter() - t0, 1)}
            runs[arm].append(row | scores(model, test.images, test.labels))
            print(arm, runs[arm][-1], flush=True)
    medians = {
        arm: {
            k: statistics.median(r[k] for r in rows)
            for k in ("accuracy", "balanced_accuracy", "healthy_recall", "tumour_recall")
        }
        for arm, rows in runs.items()
    }
    res = {
        "provenance": provenance(),
        "train": {"healthy": int(healthy.numel()), "tumours": int(tumours.numel())},
        "test": {"n": 2000, "seed": 2},
        "epochs": args.epochs,
        "median": medians,
        "runs": runs,
    }
    text = json.dumps(res, indent=2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
