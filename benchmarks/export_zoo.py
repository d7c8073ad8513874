"""Copy trained runs into the zoo folders and write each model card from measured numbers.

    python benchmarks/export_zoo.py --copy          # runs/NAME/model -> generators|classifiers/NAME
    python benchmarks/export_zoo.py --cards         # write README.md cards from runs + zoo.json

Cards quote ``runs/NAME/training.json`` (steps, time, last metrics) and
``benchmarks/results/zoo.json`` (written by ``benchmarks/zoo.py``); the sha256 line is what
``cfx.zoo`` checks on every load.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from cfx.zoo import ZOO, zoo_root
from cfx.zoo.pretrained import sha256

ROOT = Path(__file__).resolve().parents[1]

COMMANDS = {
    "brain-gan": (
        "OMP_NUM_THREADS=1 cfx train generator --tagged --tag-correlation 0.5 --n 60000 "
        "--data-seed 100 --steps 3000 --seed 0 --out runs/brain-gan"
    ),
    "brain-cnn": (
        "OMP_NUM_THREADS=2 cfx train classifier --arch brain-cnn --n 20000 --data-seed 10 "
        "--val-seed 1 --epochs 6 --blur 1.5 --noise 0.03 --seed 0 --out runs/brain-cnn"
    ),
    "brain-cnn-tagged": (
        "OMP_NUM_THREADS=1 cfx train classifier --arch brain-cnn --tagged --tag-correlation 0.95 "
        "--n 8000 --data-seed 11 --val-seed 1 --epochs 3 --seed 0 --out runs/brain-cnn-tagged"
    ),
    "brain-oracle": (
        "OMP_NUM_THREADS=1 cfx train classifier --arch brain-oracle --tagged --tag-correlation 0.5 "
        "--n 20000 --data-seed 20 --val-seed 4 --epochs 6 --seed 1 --out runs/brain-oracle"
    ),
    "brain-oracle-seg": (
        "OMP_NUM_THREADS=1 cfx train classifier --arch brain-segmenter --tagged "
        "--tag-correlation 0.5 --n 10000 --data-seed 30 --val-seed 4 --epochs 10 --seed 2 "
        "--lr 5e-3 --out runs/brain-oracle-seg"
    ),
}

DATA = {
    "brain-gan": "60,000 rendered brain slices (`make_dataset(60000, seed=100, tagged=True, "
    "tag_correlation=0.5)`): tumour and scanner marker vary independently, so the generator "
    "can render every combination.",
    "brain-cnn": "20,000 untagged slices (seed 10); validation 2,000 (seed 1). Augmented "
    "with translations, intensity scale, a Gaussian blur of random width (sigma up to 1.5 px) "
    "and extra noise (std up to 0.03), so that sharpness and noise level carry no class "
    "evidence.",
    "brain-cnn-tagged": "8,000 slices with the scanner marker, P(tag == label) = 0.95 (seed "
    "11): a biased training set with a Clever-Hans shortcut; validation 2,000 (seed 1). A "
    "first version trained on 20,000 slices for 6 epochs learned the lesion well enough to "
    "keep 89 % on its worst group, too weak a shortcut to study; with 8,000 slices and 3 "
    "epochs the marker dominates, as it does when a real biased set is small.",
    "brain-oracle": "20,000 slices, marker independent of the label (seed 20, disjoint from "
    "the explained models' data); validation 2,000 (seed 4). Different architecture and seed.",
    "brain-oracle-seg": "10,000 slices, marker independent (seed 30); targets are the lesion "
    "masks (core + oedema); validation 2,000 (seed 4).",
}

NOTES = {
    "brain-cnn": "History: the first version (same command without `--blur`/`--noise`, test "
    "accuracy 99.1 %) had learned that smooth images are tumours: it called 70 % of lightly "
    "blurred real healthy slices and 46 % of the generator's reconstructions of healthy slices "
    "tumour (brain-oracle: 1 % and 3 %). Its counterfactuals could flip it by sharpening or "
    "blurring rather than by removing or adding a lesion, so this version is trained with "
    "blur and noise augmentation (blurred healthy called tumour: 0 %, reconstructions: 2 %).",
    "brain-oracle-seg": "History: a first version trained for 5 epochs reached mean Dice "
    "0.797 on tumour slices (median 0.855), just under the 0.8 bar; this one trains 10.",
    "brain-gan": "History: the run started with `--steps 9000` on 2 threads and was stopped and "
    "resumed from its own checkpoints (steps 700, 800, 850, 1200) with `--steps` 8000, 6000, "
    "4000 and finally 3000, on 1 thread, because other work on the 2-core machine slowed it. "
    "Learning rates are constant until 70 % of `--steps` and every resume restores the model, "
    "optimiser and sampler state, so the weights are those of the command above up to "
    "floating-point differences between thread counts.",
}


def copy_runs() -> None:
    for name, entry in ZOO.items():
        src = ROOT / "runs" / name / "model"
        if not (src / "model.safetensors").is_file():
            print(f"skip {name}: no {src}")
            continue
        dst = zoo_root(entry.kind) / name
        dst.mkdir(parents=True, exist_ok=True)
        for f in ("config.json", "model.safetensors"):
            shutil.copy2(src / f, dst / f)
        print(f"copied {name} -> {dst}")


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def write_cards(results_path: Path) -> None:
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    for name, entry in ZOO.items():
        folder = zoo_root(entry.kind) / name
        weights = folder / "model.safetensors"
        if not weights.is_file():
            continue
        training_file = ROOT / "runs" / name / "training.json"
        training = json.loads(training_file.read_text()) if training_file.is_file() else {}
        summary = training.get("summary", {})
        measured = results.get(name, {})
        lines = [
            f"# {name}",
            "",
            f"{entry.summary[0].upper()}{entry.summary[1:]}. "
            f"Architecture: `{entry.class_path}`; load with "
            f"`cfx.zoo.{'load_generator' if entry.kind == 'generators' else 'load_classifier'}"
            f'("{name}")`.',
            "",
            "## Data",
            "",
            DATA[name],
            "",
            "## Training",
            "",
            "```bash",
            COMMANDS[name],
            "```",
            "",
        ]
        if name in NOTES:
            lines += [NOTES[name], ""]
        seconds = summary.get("train_seconds_total") or summary.get("seconds")
        if seconds:
            threads = COMMANDS[name].split("OMP_NUM_THREADS=")[1].split()[0]
            shared = (
                "; other work shared the machine, so this is an upper bound"
                if threads == "1"
                else "; the machine was otherwise quiet"
            )
            lines.append(
                f"Training time: {float(seconds) / 60:.1f} min on 2 CPU cores "
                f"({threads} torch thread{'s' if threads != '1' else ''}{shared})."
            )
        if summary.get("last"):
            last = ", ".join(f"{k} {_fmt(v)}" for k, v in summary["last"].items())
            lines.append(f"Last logged training metrics: {last}.")
        lines += [
            "",
            "## Measured (benchmarks/zoo.py)",
            "",
            "Command: `python benchmarks/zoo.py`. Test data never used in training: 2,000 slices "
            "of brain test seed 2 (untagged, and a tagged variant with the marker independent of "
            "the label); realism floor from a second real set (seed 3). See BENCHMARKS.md.",
            "",
            "| metric | value |",
            "|---|---|",
        ]
        for key, value in measured.items():
            if key == "sha256":
                continue
            if isinstance(value, dict):
                for k2, v2 in value.items():
                    lines.append(f"| {key}.{k2} | {_fmt(v2)} |")
            else:
                lines.append(f"| {key} | {_fmt(value)} |")
        if (folder / "samples.png").is_file():
            lines += ["", "![random samples](samples.png)"]
        lines += [
            "",
            "## Files",
            "",
            f"- `config.json`, `model.safetensors` ({weights.stat().st_size / 1e6:.2f} MB)",
            f"- sha256 of model.safetensors: `{sha256(weights)}`",
            "",
        ]
        (folder / "README.md").write_text("\n".join(lines))
        print(f"wrote {folder / 'README.md'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--copy", action="store_true")
    parser.add_argument("--cards", action="store_true")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks/results/zoo.json")
    args = parser.parse_args()
    if args.copy:
        copy_runs()
    if args.cards:
        write_cards(args.results)


if __name__ == "__main__":
    main()
