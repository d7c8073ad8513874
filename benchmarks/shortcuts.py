"""Shortcut report on the zoo's classifiers: which ones `cfx shortcuts` flags, and its time.

    python benchmarks/shortcuts.py [--classifiers brain-cnn-tagged brain-cnn]
        [--methods monotone gradient] [--n 64] [--repeats 1]

Runs the command as a user would (``cfx shortcuts --classifier C --method M --n N``: tagged
test slices of brain seed 2, marker independent of the label, both directions, T = 10) for
every classifier and method, on one machine in one script, and reports the deciding cell
(tumour slices with the marker walked to healthy: the only cell where a marker shortcut shows
as a change), the verdict, and the seconds per audit (the median of ``--repeats`` runs; the
audit is deterministic, so repeats only steady the time). Writes
``benchmarks/results/shortcuts.json`` and ``.md`` with the command and commit.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from _provenance import provenance

from cfx.cli import main as cfx_main

DECIDING = ("tumour->healthy", True)  # direction, marker on the source


def audit(classifier: str, method: str, n: int) -> dict:
    """One ``cfx shortcuts`` run: its summary.json, and the wall time of the command."""
    with tempfile.TemporaryDirectory() as folder:
        argv = ["shortcuts", "--classifier", classifier, "--method", method, "--n", str(n)]
        argv += ["--out", folder, "--no-progress"]
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            code = cfx_main(argv)
        seconds = time.perf_counter() - t0
        if code != 0:
            raise SystemExit(f"cfx {' '.join(argv)} failed with exit code {code}")
        summary = json.loads((Path(folder) / "summary.json").read_text())
    return summary | {"wall_seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--classifiers", nargs="+", default=["brain-cnn-tagged", "brain-cnn"])
    parser.add_argument("--methods", nargs="+", default=["monotone", "gradient"])
    parser.add_argument("--n", type=int, default=64, help="tagged test slices per audit")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per audit (median)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/shortcuts.json"))
    args = parser.parse_args()
    rows = []
    for classifier in args.classifiers:
        for method in args.methods:
            runs = [audit(classifier, method, args.n) for _ in range(args.repeats)]
            first = runs[0]
            if any(r["cells"] != first["cells"] for r in runs[1:]):
                raise SystemExit(f"{classifier} / {method}: repeats disagree (not deterministic)")
            cell = next(
                c for c in first["cells"] if (c["direction"], c["marker_present"]) == DECIDING
            )
            others = [
                c for c in first["cells"] if (c["direction"], c["marker_present"]) != DECIDING
            ]
            rows.append(
                {
                    "classifier": classifier,
                    "method": method,
                    "n": args.n,
                    "counted": cell["n_counted"],
                    "via_marker": cell["n_via_marker"],
                    "undone": cell["n_undone"],
                    "flagged": first["flagged"],
                    # which tests flagged the deciding cell: "change", "restoring" (session 43)
                    "flagged_by": cell["flagged_by"],
                    "other_cells_via_marker": sum(c["n_via_marker"] for c in others),
                    "other_cells_undone": sum(c["n_undone"] for c in others),
                    "other_cells_flagged": sum(c["flagged"] for c in others),
                    "healthy_with_marker_accuracy": first["accuracy_by_group"].get(
                        "healthy_marker"
                    ),
                    "seconds": statistics.median(r["wall_seconds"] for r in runs),
                    "seconds_all": [round(r["wall_seconds"], 1) for r in runs],
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    res = {
        "provenance": provenance(),
        "threads": torch.get_num_threads(),
        "repeats": args.repeats,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
    lines = [
        f"torch threads {res['threads']}, median of {args.repeats} run(s) per audit",
        "",
        "| classifier | method | n | via marker (tumour+marker -> healthy) | undone | flagged "
        "(by) | other cells via marker / undone / flagged | healthy-with-marker accuracy | "
        "s / audit |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        share = r["via_marker"] / r["counted"] if r["counted"] else float("nan")
        accuracy = r["healthy_with_marker_accuracy"]
        lines.append(
            f"| {r['classifier']} | {r['method']} | {r['n']} | {r['via_marker']} / "
            f"{r['counted']} = {share:.0%} | {r['undone']} | {'yes' if r['flagged'] else 'no'} "
            f"({', '.join(r['flagged_by']) or '-'}) | {r['other_cells_via_marker']} / "
            f"{r['other_cells_undone']} / {r['other_cells_flagged']} | "
            f"{'-' if accuracy is None else f'{accuracy:.3f}'} | {r['seconds']:.0f} |"
        )
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
