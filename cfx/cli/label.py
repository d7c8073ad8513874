"""``cfx label serve|export|import|status``: label a task folder by hand (see cfx.label)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("label", help="label a task folder: local web page or spreadsheet")
    lsub = p.add_subparsers(dest="label_command", required=True, metavar="ACTION")

    s = lsub.add_parser("serve", help="serve a local labelling page until Ctrl-C")
    s.add_argument("directory", type=Path, help="task folder (with manifest.json)")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    s.add_argument("--port", type=int, default=8765, help="port (0: any free port)")
    s.add_argument("--open", action="store_true", help="open the page in a web browser")
    s.set_defaults(run=run_serve)

    e = lsub.add_parser("export", help="write a CSV (id,image,suggested,label,sha256) to fill in")
    e.add_argument("directory", type=Path, help="task folder (with manifest.json)")
    e.add_argument(
        "--csv",
        type=Path,
        required=True,
        help="new CSV file to write, outside the task's own files; its image column gives "
        "paths relative to the CSV's folder",
    )
    e.add_argument(
        "--force", action="store_true", help="overwrite --csv if it exists (its labels are lost)"
    )
    e.set_defaults(run=run_export)

    i = lsub.add_parser("import", help="record the labels filled in an exported CSV")
    i.add_argument("directory", type=Path, help="task folder (with manifest.json)")
    i.add_argument("--csv", type=Path, required=True, help="CSV with columns id and label")
    i.add_argument("--labeller", default="csv", help="name recorded with each label")
    i.set_defaults(run=run_import)

    t = lsub.add_parser("status", help="labels per class and how many are pending")
    t.add_argument("directory", type=Path, help="task folder (with manifest.json)")
    t.set_defaults(run=run_status)


def run_serve(args: argparse.Namespace) -> int:
    from cfx.label import serve

    def ready(url: str) -> None:
        print(f"labelling page at {url} (Ctrl-C to stop)", flush=True)

    if not 0 <= args.port <= 65535:  # named as typed (the library says `port`)
        raise ValueError(f"`--port` must be in 0..65535, got {args.port}")
    if not args.host.strip():
        raise ValueError(
            f"`--host` must be an address (127.0.0.1, or 0.0.0.0 for every one), got {args.host!r}"
        )
    serve(args.directory, args.host, args.port, args.open, on_ready=ready)
    print(f"stopped: {_done(args.directory)}", file=sys.stderr)  # Ctrl-C ends serve
    return 0


def _done(directory: Path) -> str:
    """How far the task is: ``5 of 8 items labelled, 3 pending``."""
    from cfx.label import pending, read_task

    left, total = len(pending(directory)), len(read_task(directory).items)
    return f"{total - left} of {total} items labelled, {left} pending"


def run_export(args: argparse.Namespace) -> int:
    from cfx.label import export_csv

    print(export_csv(args.directory, args.csv, overwrite=args.force, name="--csv"))
    return 0


def run_import(args: argparse.Namespace) -> int:
    from cfx.label import import_csv
    from cfx.label.labels import check_labeller

    check_labeller(args.labeller, "--labeller")
    count = import_csv(args.directory, args.csv, labeller=args.labeller, name="--csv")
    print(f"recorded {count} label(s) from {args.csv}; {_done(args.directory)}")
    return 0


def run_status(args: argparse.Namespace) -> int:
    from cfx.label import read_labels, read_task
    from cfx.label.classes import UNSURE, UNSURE_NAME

    task = read_task(args.directory)
    labels = read_labels(args.directory)
    unsure = sum(v == UNSURE for v in labels.values())
    width = max(len(name) for name in (*task.class_names, *([UNSURE_NAME] if unsure else [])))
    print(f"{args.directory}: {len(labels)} of {len(task.items)} labelled")
    for k, name in enumerate(task.class_names):
        print(f"  {name:<{width}}  {sum(v == k for v in labels.values())}")
    if unsure:  # answered "can't tell": no class, left out of training
        print(f"  {UNSURE_NAME:<{width}}  {unsure}")
    print(f"pending: {len(task.items) - len(labels)}")
    return 0
