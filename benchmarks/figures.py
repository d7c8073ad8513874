"""Wall time of cfx's image-panel figures at the sizes the command line and the demo draw.

    OMP_NUM_THREADS=2 python benchmarks/figures.py [--rows 16] [--repeats 3]
        [--results benchmarks/results]

Each figure is drawn ``--repeats`` times to a temporary folder on fixed inputs (rendered 64 x
64 brain slices, as brain-gan draws them, blended from tumour to healthy) and its median time is
printed and written to ``figures.json`` in ``--results``: ``trajectory_strip`` and
``change_panels`` as ``cfx trajectory --n 16 --steps 10`` draws them (the inputs, 11 frames,
classifier and oracle probabilities; the change column with an edit region and a lesion
outlined), ``probability_curves`` beside them, ``brain_preview`` as ``cfx data preview --n
24``, ``saliency_grid`` as ``cfx saliency compare``'s grid (6 images, 10 methods),
``attack_figure`` as its attack figures (4 of 6 slices), ``randomisation_figure`` as the
demo's cascade (3 methods, 8 layers) and ``labelled_frames`` as ``cfx augment`` draws a round's
labelled.png (``--rows`` paths of two frames, at p(target) ~ 0.4 and 0.6, the learner's
default levels). ``shortcut_examples`` is not timed: it draws a ``ShortcutReport``, which only
an audit makes (six rows, as ``cfx shortcuts`` draws them).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from _provenance import provenance

RESULTS = Path(__file__).resolve().parent / "results"


def _inputs(rows: int) -> dict[str, torch.Tensor]:
    """Sequences fading each of ``rows`` rendered tumour slices into a healthy one over 11
    frames (real slices: the PNGs compress as the command line's do, which noise would not),
    with their lesion masks and a box around each lesion as an edit region."""
    from cfx.data.brain import make_dataset

    data = make_dataset(4 * rows, seed=0)
    tumour = data.images[data.labels == 1][:rows]  # (B, 1, H, W)
    healthy = data.images[data.labels == 0][:rows]
    t = torch.linspace(0, 1, 11)[None, :, None, None, None]
    frames = (1 - t) * tumour[:, None] + t * healthy[:, None]  # (B, T+1, C, H, W)
    masks = data.masks[data.labels == 1][:rows]  # (B, 1, H, W)
    region = torch.nn.functional.max_pool2d(masks.float(), 9, stride=1, padding=4)
    probs = torch.linspace(0.05, 0.95, 11).repeat(rows, 1)  # (B, T+1)
    return {"frames": frames, "probs": probs, "masks": masks, "region": region}


def figures(rows: int, folder: Path) -> dict[str, Callable[[], object]]:
    """The figures timed, each a call drawing to ``folder``."""
    from cfx.viz import (
        attack_figure,
        brain_preview,
        change_panels,
        labelled_frames,
        probability_curves,
        randomisation_figure,
        saliency_grid,
        trajectory_strip,
    )

    x = _inputs(rows)
    frames, probs = x["frames"], x["probs"]
    sources = frames[:, 0]
    levels = torch.linspace(0, 1, 11)
    # maps peaked at each lesion, blurred more by each method
    lesion = x["masks"][:6].float()  # (B, 1, H, W)
    maps = torch.stack(
        [torch.nn.functional.avg_pool2d(lesion, 2 * k + 1, stride=1, padding=k) for k in range(10)]
    )  # (M, B, 1, H, W)
    return {
        "trajectory_strip": lambda: trajectory_strip(
            frames,
            probs,
            folder / "strips.png",
            oracle_probs=probs,
            sources=sources,
            source_probs=probs[:, 0],
            target_name="healthy",
        ),
        "change_panels": lambda: change_panels(
            frames,
            folder / "changes.png",
            sources=sources,
            edit_masks=x["region"],
            lesion_masks=x["masks"],
        ),
        "probability_curves": lambda: probability_curves(
            probs, levels, folder / "probabilities.png", oracle_probs=probs
        ),
        "brain_preview": lambda: brain_preview(
            frames[:, 0].repeat(2, 1, 1, 1)[:24],
            torch.arange(24) % 2,
            x["masks"].repeat(2, 1, 1, 1)[:24],
            torch.arange(24) % 3 == 0,
            folder / "preview.png",
            marker_box=(slice(2, 8), slice(2, 8)),
        ),
        "saliency_grid": lambda: saliency_grid(
            frames[:6, 0],
            x["masks"][:6],
            maps,
            [f"method {k}" for k in range(10)],
            folder / "grid.png",
        ),
        "attack_figure": lambda: attack_figure(
            frames[:6, 0],
            frames[:6, 1],
            maps[0],
            maps[3],
            folder / "attack.png",
            title="simple gradient, Ghorbani top-k attack, eps 8/255",
        ),
        "randomisation_figure": lambda: randomisation_figure(
            frames[0, 0],
            maps[:3, 0],
            maps[:3, 1:2].expand(3, 8, 1, 64, 64),
            ["gradient", "gradient_x_input", "gradcam"],
            [f"layer {k}" for k in range(8)],
            folder / "cascade.png",
            title="cascading randomisation",
        ),
        "labelled_frames": lambda: labelled_frames(
            frames[:, 4:7:2].flatten(0, 1),  # (rows * 2, C, H, W), path after path
            torch.arange(2 * rows) % 2,
            folder / "labelled.png",
            per_path=2,
            class_names=("healthy", "tumour"),
            levels=(0.4, 0.6),
            rows=rows,
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=16, help="sequences in the strip figures")
    parser.add_argument("--repeats", type=int, default=3, help="draws per figure (median)")
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help="folder of figures.json (default: committed)"
    )
    args = parser.parse_args()
    seconds = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, draw in figures(args.rows, Path(tmp)).items():
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                draw()
                times.append(time.perf_counter() - t0)
            seconds[name] = round(statistics.median(times), 3)
            print(f"{name}: {seconds[name]:.2f} s (median of {args.repeats})", flush=True)
    record = {"provenance": provenance(), "rows": args.rows, "median_seconds": seconds}
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "figures.json").write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
