"""``cfx data preview brain|credit``: look at the built-in data."""

from __future__ import annotations

import argparse
from pathlib import Path

from cfx.cli.options import given_flags
from cfx.cli.paths import out_path
from cfx.errors import UnknownNameError, check_int

DATASETS = ("brain", "credit")
FIGURES = (".png", ".pdf", ".svg")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="inspect the built-in datasets")
    dsub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    prev = dsub.add_parser(
        "preview", help="write a preview (PNG for brain, CSV summary for credit)"
    )
    prev.add_argument("dataset", help="brain or credit")
    prev.add_argument("--n", type=int, default=None, help="brain: slices shown (default: 16)")
    prev.add_argument("--seed", type=int, default=None, help="brain: data seed (default: 0)")
    prev.add_argument(
        "--tagged", action="store_true", default=None, help="brain: include scanner markers"
    )
    prev.add_argument(
        "--out",
        type=out_path,
        default=None,
        help="brain: a .png/.pdf/.svg figure (default: preview.png); credit: a .csv table "
        "(default: preview.csv)",
    )
    prev.set_defaults(run=run_preview)


PREVIEW_MAX = 128
"""Most slices one preview grid shows."""


def run_preview(args: argparse.Namespace) -> int:
    if args.dataset == "brain":
        from cfx.data.brain import MARKER_BOX, make_dataset
        from cfx.viz import brain_preview

        out = Path("preview.png") if args.out is None else Path(args.out)
        if out.suffix.lower() not in FIGURES:
            raise ValueError(
                f"`--out` for brain is a figure, one of {', '.join(FIGURES)}; got {out.name!r}"
            )
        n = 16 if args.n is None else check_int("--n", args.n)
        if n > PREVIEW_MAX:  # a grid past this is unreadable and slow to render
            raise ValueError(f"`--n` must be at most {PREVIEW_MAX} for a preview, got {n}")
        seed = 0 if args.seed is None else args.seed
        d = make_dataset(n, seed=seed, tagged=bool(args.tagged))
        out = brain_preview(d.images, d.labels, d.masks, d.tags, out, marker_box=MARKER_BOX)
    elif args.dataset == "credit":
        from cfx.data.credit import load_german, summary_table

        given = given_flags(args, "n", "seed", "tagged")
        if given:  # they would do nothing here
            raise ValueError(
                f"{', '.join(f'`{f}`' for f in given)} only shape the brain preview; the "
                "credit summary covers the whole German credit table"
            )
        out = Path("preview.csv") if args.out is None else Path(args.out)
        if out.suffix.lower() != ".csv":
            raise ValueError(f"`--out` for credit is a .csv table, got {out.name!r}")
        summary_table(load_german()).to_csv(out)
    else:
        raise UnknownNameError(f"unknown dataset {args.dataset!r}; expected one of {DATASETS}")
    print(out)
    return 0
