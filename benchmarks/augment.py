"""Augmentation from near-boundary frames vs random samples, real uncertain slices, retraining.

    python benchmarks/augment.py [--budgets 200 500] [--seeds 0 1 2] [--out benchmarks/results]

Start: ``brain-cnn-tagged`` (learned the scanner-marker shortcut) and its own biased training
set (8,000 slices, seed 11, P(tag == label) = 0.95). At equal label budgets, three arms:

* (a) ``cfx_boundary``: :class:`cfx.augment.ActiveLearner`, 2 rounds; starts are the least
  certain images of an unlabelled biased pool (4,000 slices, seed 12); frames at p = 0.4 and
  0.6 of Option 1 paths, labelled by ``brain-oracle``.
* (b) ``random_samples``: the same number of generator samples ``G(z)``, ``z ~ N(0, I)``,
  labelled by ``brain-oracle``.
* (c) ``plain_retrain``: the same number of extra real slices from the biased distribution
  (seed 13 + seed) with their true labels; standard augmentation (shifts, intensity jitter),
  like every arm.
* (d) ``real_uncertain``: the same number of *real* pool slices, the ones brain-cnn-tagged is
  least certain of (the same pool and the same selection rule as (a)'s starts), labelled by
  ``brain-oracle``: uncertainty sampling without a generator (session 20; a reviewer's control).
* (e) ``no_new_labels``: the same fine-tuning without new labels: in place of the budget's
  new images, as many training slices drawn again (with their own labels, repeated 4x like
  new images), so it takes as many optimiser steps as (b)-(d): what the extra epochs do by
  themselves. (Before session 48 it fine-tuned on the 8,000 slices alone, fewer steps than
  the other arms; ``cfx augment --control`` was mended the same way in session 44.)

Every arm fine-tunes the same copy with the same settings and the same number of epochs (arm
(a) spreads them over its rounds); new images are repeated 4x in every arm. Scored on 2,000
test slices with the marker independent of the label (seed 2): accuracy and worst-group
accuracy (the groups are tumour x marker). Bar: (a)'s worst group >= 15 points above (c) and
above (b) at each budget; (a) against (d) and (e) is reported beside it (no bar: the issue named
(b) and (c)). Writes ``augment.json`` and ``augment.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from _provenance import provenance

from cfx.augment import ActiveLearner, OracleLabeller
from cfx.data.brain import make_dataset
from cfx.metrics import group_accuracies
from cfx.training.classifier import ClassifierTrainingConfig, predict, train_classifier
from cfx.zoo import load_classifier, load_generator

ARMS = ("cfx_boundary", "random_samples", "plain_retrain", "real_uncertain", "no_new_labels")
ROUNDS = 2
EPOCHS_PER_ROUND = 2
REPEAT = 4


def groups(model, data) -> dict[str, float]:
    return group_accuracies(predict(model, data.images).argmax(1), data.labels, data.tags)


def finetune(base, train, extra_x, extra_y, seed: int, work: Path):
    cfg = ClassifierTrainingConfig(
        epochs=ROUNDS * EPOCHS_PER_ROUND, lr=5e-4, reset_parameters=False, seed=seed
    )
    xs = torch.cat([train.images, extra_x.repeat(REPEAT, 1, 1, 1)])
    ys = torch.cat([train.labels, extra_y.repeat(REPEAT)])
    model = copy.deepcopy(base).requires_grad_(True)  # zoo models load frozen
    model, _ = train_classifier(model, xs, ys, work, cfg, show_progress=False)
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--budgets", type=int, nargs="+", default=[200, 500], help="labels per arm (each run)"
    )
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[0, 1, 2], help="fine-tuning seeds (each run)"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results"), help="folder for augment.*"
    )
    args = parser.parse_args()

    gen = load_generator("brain-gan")
    base = load_classifier("brain-cnn-tagged")
    oracle = load_classifier("brain-oracle")
    labeller = OracleLabeller(oracle)
    train = make_dataset(8000, seed=11, tagged=True, tag_correlation=0.95)
    pool = make_dataset(4000, seed=12, tagged=True, tag_correlation=0.95)
    test = make_dataset(2000, seed=2, tagged=True, tag_correlation=0.5)
    results: dict = {
        "provenance": provenance(),
        "settings": vars(args) | {"out": str(args.out)},
        "base": groups(base, test),
    }
    # (d)'s starts: the pool slices the classifier is least sure of, as ActiveLearner picks them
    p_pool = torch.softmax(predict(base, pool.images), 1)[:, 1]
    uncertain = (p_pool - 0.5).abs().argsort()
    runs: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for budget in args.budgets:
            for seed in args.seeds:
                work = Path(tmp) / f"b{budget}_s{seed}"
                t0 = time.perf_counter()
                learner = ActiveLearner(
                    gen,
                    base,
                    labeller,
                    budget=budget,
                    rounds=ROUNDS,
                    finetune=ClassifierTrainingConfig(epochs=EPOCHS_PER_ROUND, lr=5e-4, seed=seed),
                    repeat_new=REPEAT,
                )
                res = learner.augment(
                    pool.images, train.images, train.labels, out=work / "a", seed=seed
                )
                row_a = groups(res.model, test) | {
                    "labels": res.labels_used,
                    "oracle_tumour_share": float(res.labels.float().mean()),
                    "seconds": time.perf_counter() - t0,
                }
                g = torch.Generator().manual_seed(1000 + seed)
                with torch.no_grad():
                    xb = gen.decode(torch.randn(budget, *gen.latent_shape, generator=g))
                yb = labeller.label(xb)
                t0 = time.perf_counter()
                row_b = groups(finetune(base, train, xb, yb, seed, work / "b"), test) | {
                    "labels": budget,
                    "seconds": time.perf_counter() - t0,
                }
                extra = make_dataset(budget, seed=13 + seed, tagged=True, tag_correlation=0.95)
                t0 = time.perf_counter()
                row_c = groups(
                    finetune(base, train, extra.images, extra.labels, seed, work / "c"), test
                ) | {
                    "labels": budget,
                    "seconds": time.perf_counter() - t0,
                }
                pick = uncertain[:budget]
                xd = pool.images[pick]
                yd = labeller.label(xd)
                t0 = time.perf_counter()
                row_d = groups(finetune(base, train, xd, yd, seed, work / "d"), test) | {
                    "labels": budget,
                    "oracle_tumour_share": float(yd.float().mean()),
                    "seconds": time.perf_counter() - t0,
                }
                drawn = torch.randint(
                    len(train), (budget,), generator=torch.Generator().manual_seed(2000 + seed)
                )
                t0 = time.perf_counter()
                xe, ye = train.images[drawn], train.labels[drawn]
                row_e = groups(finetune(base, train, xe, ye, seed, work / "e"), test) | {
                    "labels": 0,
                    "seconds": time.perf_counter() - t0,
                }
                for arm, row in (
                    ("cfx_boundary", row_a),
                    ("random_samples", row_b),
                    ("plain_retrain", row_c),
                    ("real_uncertain", row_d),
                    ("no_new_labels", row_e),
                ):
                    runs.append({"budget": budget, "seed": seed, "arm": arm} | row)
                    print(json.dumps(runs[-1]), flush=True)
    results["runs"] = runs
    summary: dict = {}
    for budget in args.budgets:
        block = {}
        for arm in ARMS:
            rows = [r for r in runs if r["budget"] == budget and r["arm"] == arm]
            block[arm] = {
                k: {
                    "mean": statistics.mean(r[k] for r in rows),
                    "min": min(r[k] for r in rows),
                    "max": max(r[k] for r in rows),
                }
                for k in ("accuracy", "worst_group")
            }
        a, b, c, d, e = (block[k]["worst_group"]["mean"] for k in ARMS)
        block["gain_vs_plain_points"] = 100 * (a - c)
        block["gain_vs_random_points"] = 100 * (a - b)
        block["gain_vs_real_uncertain_points"] = 100 * (a - d)
        block["gain_vs_no_new_labels_points"] = 100 * (a - e)
        block["bar_met"] = (a - c) >= 0.15 and a > b
        summary[str(budget)] = block
    results["summary"] = summary
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "augment.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "augment.md").write_text(markdown(results))
    print(markdown(results))


def markdown(results: dict) -> str:
    base = results["base"]
    prov = results.get("provenance", {})
    lines = [
        f"Command: `{prov.get('command', 'not recorded')}` (commit {prov.get('commit', '?')}, "
        f"{prov.get('torch_threads', '?')} torch threads, {prov.get('utc', '?')} UTC).",
        "",
        f"Start: brain-cnn-tagged, accuracy {base['accuracy']:.3f}, worst group "
        f"{base['worst_group']:.3f} (independent-tag test set, 2,000 slices).",
        "",
        "| budget | arm | accuracy (mean, min-max over seeds) | worst group (mean, min-max) |",
        "|---|---|---|---|",
    ]
    for budget, block in results["summary"].items():
        for arm in ARMS:
            acc, wg = block[arm]["accuracy"], block[arm]["worst_group"]
            lines.append(
                f"| {budget} | {arm} | {acc['mean']:.3f} ({acc['min']:.3f}-{acc['max']:.3f}) | "
                f"{wg['mean']:.3f} ({wg['min']:.3f}-{wg['max']:.3f}) |"
            )
    lines.append("")
    for budget, block in results["summary"].items():
        lines.append(
            f"Budget {budget}: (a) - (c) = {block['gain_vs_plain_points']:+.1f} points, "
            f"(a) - (b) = {block['gain_vs_random_points']:+.1f} points; bar "
            f"{'met' if block['bar_met'] else 'missed'}. Beside it: (a) - (d) = "
            f"{block['gain_vs_real_uncertain_points']:+.1f} points (real uncertain slices), "
            f"(a) - (e) = {block['gain_vs_no_new_labels_points']:+.1f} points (no new labels)."
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
