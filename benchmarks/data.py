"""Brain-slice rendering speed (the foundation issue asks for >= 1,000 slices/s on one core).

    python benchmarks/data.py [--n 8192] [--repeats 5] [--out benchmarks/results/data.json]

Runs with one torch thread, after a warm-up, and reports the median over repeats; prints the
JSON and writes it to ``--out`` with the command and commit that produced it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from _provenance import provenance

from cfx.data.brain import make_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=8192, help="slices per timed run")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs (median reported)")
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/data.json"), help="JSON written"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    make_dataset(512, seed=0, tagged=True)  # warm-up
    rates = {}
    for tagged in (False, True):
        runs = []
        for r in range(args.repeats):
            t0 = time.perf_counter()
            make_dataset(args.n, seed=r, tagged=tagged)
            runs.append(args.n / (time.perf_counter() - t0))
        rates["tagged" if tagged else "plain"] = {
            "median_slices_per_s": round(statistics.median(runs)),
            "min": round(min(runs)),
            "max": round(max(runs)),
        }
    res = {"provenance": provenance(), "n": args.n, "threads": 1, "repeats": args.repeats}
    text = json.dumps(res | rates, indent=2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
