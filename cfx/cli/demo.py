"""``cfx demo``: the end-to-end demo on the shipped data and models, as an HTML report."""

from __future__ import annotations

import argparse

from cfx.cli.paths import add_output_options, out_folder


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run the end-to-end demo and write an HTML report",
        description="Run every part of cfx on the shipped models and data (brain slices, "
        "German Credit): boundary-crossing sequences, loan recourse, saliency and its "
        "attacks, the shortcut report and near-boundary augmentation. Writes OUT/index.html "
        "with its figures, CSV tables and augment-run/ beside it, replacing an earlier demo's "
        "(a folder holding another index.html is refused); about 2-3 minutes on 2 CPU cores.",
    )
    add_output_options(p, "cfx-report", "the report, index.html with its figures and tables")
    p.add_argument("--seed", type=int, default=0, help="seed of the data drawn and the models")
    p.set_defaults(run=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from cfx.demo import build_demo, check_demo_seed

    check_demo_seed(args.seed)  # before the folder is made
    folder = out_folder(args.out)
    index = build_demo(folder, seed=args.seed, show_progress=not args.no_progress)
    print(index)
    return 0
