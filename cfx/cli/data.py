"""``cfx data preview brain|credit``: look at the built-in data."""

from __future__ import annotations

import argparse
from pathlib import Path

from cfx.errors import UnknownNameError

DATASETS = ("brain", "credit")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="inspect the built-in datasets")
    dsub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    prev = dsub.add_parser(
        "preview", help="write a preview (PNG for brain, CSV summary for credit)"
    )
    prev.add_argument("dataset", help="brain or credit")
    prev.add_argument("--n", type=int, default=16, help="number of brain slices (default 16)")
    prev.add_argument("--seed", type=int, default=0)
    prev.add_argument("--tagged", action="store_true", help="brain: include scanner markers")
    prev.add_argument("--out", type=Path, default=Path("preview.png"))
    prev.set_defaults(run=run_preview)


def run_preview(args: argparse.Namespace) -> int:
    if args.dataset == "brain":
        from cfx.data.brain import MARKER_BOX, make_dataset
        from cfx.viz import brain_preview

        d = make_dataset(args.n, seed=args.seed, tagged=args.tagged)
        out = brain_preview(d.images, d.labels, d.masks, d.tags, args.out, marker_box=MARKER_BOX)
    elif args.dataset == "credit":
        from cfx.data.credit import load_german, summary_table

        out = Path(args.out)
        if out.suffix == ".png":
            out = out.with_suffix(".csv")
        summary_table(load_german()).to_csv(out)
    else:
        raise UnknownNameError(f"unknown dataset {args.dataset!r}; expected one of {DATASETS}")
    print(out)
    return 0
