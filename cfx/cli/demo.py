"""``cfx demo``: the end-to-end demo on the shipped data and models, as an HTML report."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the end-to-end demo and write an HTML report")
    p.add_argument("--out", type=Path, default=Path("cfx-report"))
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from cfx.demo import build_demo

    index = build_demo(args.out, seed=args.seed)
    print(index)
    return 0
