"""The end-to-end demo behind ``cfx demo``: runs on shipped data and models, writes HTML.

Each part of cfx adds one section. A section that needs a model that is not available (for
example, a zoo model not yet trained in a development checkout) says so in the report instead
of failing the whole demo.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

from cfx import report as rp

log = logging.getLogger(__name__)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.3g}"
    return "" if value is None else str(value)


def section_brain_data(out: Path, seed: int) -> list[str]:
    from cfx.data.brain import MARKER_BOX, make_dataset
    from cfx.viz import brain_preview

    d = make_dataset(24, seed=seed, tagged=True, tag_correlation=0.5)
    brain_preview(
        d.images, d.labels, d.masks, d.tags, out / "brain_preview.png", marker_box=MARKER_BOX
    )
    t0 = time.perf_counter()
    big = make_dataset(2048, seed=seed + 1)
    rate = len(big) / (time.perf_counter() - t0)
    area = big.masks.flatten(1).sum(1)[big.labels == 1].float()
    return [
        rp.paragraph(
            "Semi-synthetic FLAIR-like axial slices (64x64) rendered from the MNI ICBM152 2009 "
            "template with per-patient variation and glioma-like lesions. Yellow: lesion mask "
            "(core + oedema); cyan box: scanner marker (the shortcut of the tagged variant)."
        ),
        rp.image("brain_preview.png", "brain MRI preview"),
        rp.table(
            [
                "slices rendered",
                "slices/s (this machine)",
                "tumour share",
                "lesion area px (median, min-max)",
            ],
            [
                [
                    len(big),
                    f"{rate:,.0f}",
                    f"{float(big.labels.float().mean()):.2f}",
                    f"{float(area.median()):.0f} ({float(area.min()):.0f}-{float(area.max()):.0f})",
                ]
            ],
        ),
    ]


def section_credit_data(out: Path, seed: int) -> list[str]:
    from cfx.data.credit import load_german, summary_table

    data = load_german()
    table = summary_table(data)
    table.to_csv(out / "german_credit_summary.csv")
    header = ["feature", *table.columns]
    rows = [
        [name, *(_fmt(v) for v in row)]
        for name, row in zip(table.index, table.to_numpy(), strict=True)
    ]
    return [
        rp.paragraph(
            f"German Credit (UCI Statlog): {len(data)} applicants, {len(data.schema.names)} "
            f"features, {data.y.mean():.0%} approved. Immutable by default: "
            f"{', '.join(data.schema.immutable)}."
        ),
        rp.table(header, rows),
    ]


def section_zoo(out: Path, seed: int) -> list[str]:
    from cfx.errors import CheckpointError
    from cfx.zoo import ZOO, card_sha256, model_folder

    rows = []
    for name, entry in ZOO.items():
        try:
            folder = model_folder(name)
            size = (folder / "model.safetensors").stat().st_size / 1e6
            rows.append(
                [name, entry.kind, entry.summary, f"{size:.2f} MB", card_sha256(folder)[:12]]
            )
        except CheckpointError as err:
            rows.append([name, entry.kind, entry.summary, "missing", str(err)[:60]])
    return [
        rp.paragraph(
            "Pretrained models shipped with cfx (trained on this project's CPU machines)."
        ),
        rp.table(["model", "kind", "what", "weights", "sha256"], rows),
    ]


def section_trajectory(out: Path, seed: int) -> list[str]:
    from cfx.data.brain import make_dataset
    from cfx.errors import CheckpointError
    from cfx.metrics.trajectory import summarise
    from cfx.trajectory import MonotonePath
    from cfx.viz import probability_curves, trajectory_gif, trajectory_strip
    from cfx.zoo import load_classifier, load_generator

    try:
        gen, clf = load_generator("brain-gan"), load_classifier("brain-cnn")
        oracle = load_classifier("brain-oracle")
    except CheckpointError as err:
        return [rp.paragraph(f"Skipped: {err}")]
    data = make_dataset(64, seed=seed + 2)
    rows: list[list[object]] = []
    parts: list[str] = []
    for target, name in ((0, "tumour -> healthy"), (1, "healthy -> tumour")):
        src = data.subset(data.labels != target).subset(slice(0, 4))
        res = MonotonePath(gen, clf, steps=8, oracle=oracle, iterations=20).explain(
            src.images, target
        )
        tag = f"traj_{target}"
        trajectory_strip(res.frames, res.probs, out / f"{tag}.png", oracle_probs=res.oracle_probs)
        trajectory_gif(res.frames[0], out / f"{tag}.gif")
        probability_curves(
            res.probs, res.levels, out / f"{tag}_curves.png", oracle_probs=res.oracle_probs
        )
        m = summarise(
            res.probs,
            res.levels,
            res.frames,
            src.images,
            oracle_probs=res.oracle_probs,
            masks=src.masks if target == 0 else None,
        )
        keys = ("flip_rate", "oracle_agreement", "spearman_t_f", "calibration_error")
        cells = [f"{m[k]:.3f}" for k in keys]
        cells += [f"{m.get('localisation', float('nan')):.2f}", f"{res.seconds / 4:.2f}"]
        rows.append([name, *cells])
        parts += [
            f"<h3>{name}</h3>",
            rp.image(f"{tag}.png", name),
            rp.image(f"{tag}.gif", name + " (animated)"),
            rp.image(f"{tag}_curves.png", "probability along the path"),
        ]
    header = [
        "direction",
        "flip",
        "oracle agrees",
        "Spearman(t, f)",
        "calibration err",
        "localisation",
        "s / sequence",
    ]
    return [
        rp.paragraph(
            "Option 2 (MonotonePath) walks held-out slices across brain-cnn's boundary through the "
            "fixed brain-gan generator. f = brain-cnn's target probability, o = the independent "
            "oracle's. Frame 0 is the reconstruction of the input."
        ),
        rp.table(header, rows),
        *parts,
    ]


SECTIONS: tuple[tuple[str, Callable[[Path, int], list[str]]], ...] = (
    ("Brain MRI data", section_brain_data),
    ("German Credit data", section_credit_data),
    ("Model zoo", section_zoo),
    ("Boundary-crossing sequences", section_trajectory),
)


def build_demo(out: str | Path = "cfx-report", *, seed: int = 0) -> Path:
    """Run every demo section and write ``out/index.html``; return its path."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    report = rp.Report("cfx demo", folder)
    for title, build in SECTIONS:
        t0 = time.perf_counter()
        log.info("demo section: %s", title)
        parts = build(folder, seed)
        parts.append(f'<p class="note">Section built in {time.perf_counter() - t0:.1f} s.</p>')
        report.add(title, *parts)
    return report.write()
