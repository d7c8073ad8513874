"""Wall time of each notebook at full size (no ``CFX_NOTEBOOK_SMALL``), as a reader runs it.

    OMP_NUM_THREADS=2 python benchmarks/notebook_times.py [NAME.ipynb ...] [--out DIR]
        [--results benchmarks/results]

Runs the notebooks one after another in a fresh kernel each, working in ``--out`` (the files
they write land there, not beside the notebooks), and prints one line per notebook. The
executed copies are written to ``--out`` too, for a look at their outputs, and the times to
``notebook_times.json`` in ``--results`` (default ``benchmarks/results``: the committed file)
once all have run; ``notebook_times_some.json`` holds the times so far after each notebook (a
few named ones, or a run a failing notebook stopped), so a partial run never replaces the full
table. The README's figures (session 49, quiet machine; BENCHMARKS.md, "Notebooks"): 42 s,
6 s, 176 s and 197 s for 01 to 04.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import nbformat
from _provenance import provenance
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebook file names (default: all)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/cfx-notebook-times"))
    parser.add_argument(
        "--results",
        type=Path,
        default=RESULTS,
        help="folder of the times' JSON (default: committed)",
    )
    args = parser.parse_args()
    os.environ.pop("CFX_NOTEBOOK_SMALL", None)  # full size: what a reader runs
    args.out.mkdir(parents=True, exist_ok=True)
    paths = [NOTEBOOKS / n for n in args.names] or sorted(NOTEBOOKS.glob("*.ipynb"))
    seconds = {}
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(
            nb, timeout=3600, kernel_name="python3", resources={"metadata": {"path": str(args.out)}}
        )
        t0 = time.perf_counter()
        client.execute()
        seconds[path.name] = round(time.perf_counter() - t0, 1)
        print(f"{path.name}: {seconds[path.name]:.0f} s", flush=True)
        nbformat.write(nb, args.out / path.name)
        record = {"provenance": provenance(), "seconds": seconds}
        (args.results / "notebook_times_some.json").write_text(json.dumps(record, indent=1) + "\n")
    if not args.names:  # every notebook ran: the full table
        (args.results / "notebook_times.json").write_text(json.dumps(record, indent=1) + "\n")
        (args.results / "notebook_times_some.json").unlink()


if __name__ == "__main__":
    main()
