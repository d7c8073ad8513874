"""``cfx recourse``: plans for denied German Credit applicants, one or a resumable batch.

::

    cfx recourse --model gbm --applicant-index 17               # print the plan
    cfx recourse --model gbm --applicant-index 17 --format json
    cfx recourse --model gbm --input applicants.csv --out suggestions.csv   # batch, resumable

The model is a zoo credit model (``logistic``, ``gbm``, ``mlp``), trained on the fixed training
split, and recourse is fitted on the same rows. A batch reads a CSV with the schema's columns
(category labels as in German Credit; comma-, semicolon- or tab-separated; UTF-8, UTF-16 or
Windows-1252, as spreadsheets save it) and writes one line per applicant, appended and flushed
as each finishes: CSV (``--format csv``, the default; ``plan_1``, ``cost_1``, ... for up to
``k`` counterfactuals) or JSON Lines (``--format json``). Rerunning the same command skips the
applicants already in ``--out``, so an interrupted batch resumes where it stopped; a line cut
short by a crash is discarded and redone. ``OUT.key.json`` records the settings the lines were
written with: a rerun with other settings is refused (naming them) rather than mixing two runs
in one file. The whole input is checked before any applicant is explained; errors name the
rows at fault. Without ``--id-column`` applicants are known by their row number, so add rows
at the end of the input only. The batch is :func:`cfx.recourse.explain_to_file`, which takes
your own model in Python.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any

from cfx.cli.options import given_flags
from cfx.cli.paths import out_text
from cfx.errors import UnknownNameError, check_int, check_real

log = logging.getLogger(__name__)

FORMATS = ("text", "json", "csv")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "recourse",
        help="actionable plans for denied loan applicants",
        description="Plans that flip a German Credit model's decision for denied applicants: "
        "small, valid, diverse, never touching what a person cannot change. Each plan lists "
        "its cost (median absolute deviations per numeric change, a fixed cost per category "
        "step) and its plausibility (the share of the 5 nearest training applicants the "
        "model approves). The command line explains the zoo's credit models; your own model "
        "goes through cfx.recourse.Recourse in Python (README, 'Loan recourse').",
    )
    p.add_argument(
        "--model", default="gbm", help="zoo credit model: logistic, gbm or mlp (default: gbm)"
    )
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--applicant-index", type=int, help="row of German Credit (0..999)")
    where.add_argument("--input", type=Path, help="CSV of applicants (the schema's columns)")
    p.add_argument("--out", type=out_text, help="batch output file (required with --input)")
    p.add_argument(
        "--id-column",
        help="input column naming each applicant (default: row number, 0 for the first "
        "applicant under the header, as errors name rows; add rows at the end only if a "
        "batch is to resume)",
    )
    p.add_argument(
        "--format",
        default=None,
        help="one applicant: text, json or csv (default: text); a batch: csv or JSON Lines "
        "(json: one object per line; default: json for an --out ending in .jsonl, else csv)",
    )
    p.add_argument("--k", type=int, default=3, help="counterfactuals per applicant (default: 3)")
    p.add_argument(
        "--method",
        default="auto",
        help="auto (default: milp for logistic, tree for gbm, search for mlp), milp, tree, "
        "search, dice-random, dice-genetic or dice-kdtree",
    )
    p.add_argument("--max-changes", type=int, default=None, help="most features per action")
    p.add_argument(
        "--immutable",
        action="append",
        default=[],
        help="extra immutable features, comma-separated (or the flag repeated)",
    )
    p.add_argument(
        "--support",
        type=float,
        default=None,
        help="share of the 5 nearest training applicants the model must approve around a "
        "plan (default: 0.8; 0 disables, and may give plans unlike any approved applicant)",
    )
    p.add_argument(
        "--target-proba",
        type=float,
        default=None,
        help="approval probability every plan must reach (default: the 0.5 threshold; e.g. "
        "0.6 leaves a margin, so a plan does not flip back with the smallest change)",
    )
    p.add_argument("--limit", type=int, default=None, help="batch: process at most N new rows")
    p.add_argument("--no-progress", action="store_true", help="batch: no progress bar")
    p.set_defaults(run=run_recourse)


def _fitted(args: argparse.Namespace) -> Any:
    from cfx.data.credit import load_german
    from cfx.recourse import Recourse
    from cfx.zoo import CREDIT_MODELS, german_split, load_credit_model

    if args.model not in CREDIT_MODELS:
        raise UnknownNameError(
            f"unknown credit model {args.model!r}; expected one of {CREDIT_MODELS}"
        )
    data = load_german()
    # checked before the model is fitted, and before a batch claims its --out
    unknown = [n for n in _immutable(args) if n not in data.schema.names]
    if unknown:
        raise UnknownNameError(
            f"`--immutable` names features German Credit does not have: {unknown!r}; "
            f"features: {list(data.schema.names)!r}"
        )
    fixed = [n for n in _immutable(args) if n in data.schema.immutable]
    if fixed:  # said, not dropped: a batch's key records the flag as given
        log.warning(
            "`--immutable` %s: immutable already (German Credit's schema); the flag changes "
            "nothing",
            ", ".join(fixed),
        )
    if args.input is None and not 0 <= args.applicant_index < len(data.X):
        raise ValueError(
            f"`--applicant-index` must be in 0..{len(data.X) - 1}, got {args.applicant_index}"
        )
    train, _ = german_split()
    extra = {} if args.support is None else {"support": args.support}
    rec = Recourse(
        load_credit_model(args.model),
        data.schema,
        k=args.k,
        method=args.method,
        max_changes=args.max_changes,
        target_proba=args.target_proba,
        **extra,
    )
    try:
        return data, rec.fit(data.X.iloc[train])
    except (TypeError, ValueError) as err:  # a method this model cannot take, as its flag
        said = re.sub(r"`?method='([\w-]+)'`?", r"`--method \1`", str(err))
        if said == str(err):
            raise
        raise type(err)(said) from None


def _immutable(args: argparse.Namespace) -> tuple[str, ...]:
    """The features ``--immutable`` names, comma-separated, over every time it is given
    (only the last one counted once, and a plan changed a feature the first froze)."""
    names = (n.strip() for given in args.immutable for n in given.split(","))
    return tuple(dict.fromkeys(n for n in names if n))


def _constraints(args: argparse.Namespace) -> Any:
    from cfx.recourse import Constraints

    names = _immutable(args)
    return Constraints(immutable=names) if names else None


def _check_options(args: argparse.Namespace) -> None:
    """Errors naming the flags (the Python names, e.g. `target_proba`, are not what was
    typed), before the model is fitted; batch-only options with one applicant, which printed
    to the screen and ignored them."""
    from cfx.recourse.recourse import METHODS

    check_int("--k", args.k)
    if args.method not in METHODS:
        raise UnknownNameError(f"`--method` must be one of {METHODS}, got {args.method!r}")
    if args.max_changes is not None:
        check_int("--max-changes", args.max_changes)
    if args.support is not None:
        check_real("--support", args.support, low=0.0, high=1.0)
    if args.target_proba is not None and not 0.5 <= args.target_proba < 1:
        raise ValueError(
            "`--target-proba` must be in [0.5, 1) (at least the approval threshold), got "
            f"{args.target_proba}"
        )
    if args.input is None:
        batch_only = given_flags(args, "out", "limit", "id_column", "no_progress")
        if batch_only:
            raise ValueError(
                f"{', '.join(batch_only)} {'goes' if len(batch_only) == 1 else 'go'} with "
                "--input (a batch); one applicant "
                "(--applicant-index) is printed: redirect it to keep it, e.g. "
                "`--format csv > plan.csv`"
            )
    elif args.limit is not None:
        check_int("--limit", args.limit)


def run_recourse(args: argparse.Namespace) -> int:
    _check_options(args)
    if args.input is not None:
        return _run_batch(args)
    from cfx.recourse import batch

    fmt = args.format or "text"
    if fmt not in FORMATS:
        raise ValueError(f"`--format` must be one of {FORMATS}, got {fmt!r}")
    data, rec = _fitted(args)
    row = data.X.iloc[[args.applicant_index]]
    row.index = row.index.astype(str)  # the id as a batch line writes it ("17", not 17)
    (res,) = rec.explain(row, constraints=_constraints(args))
    (digest,) = batch.input_digests(rec.codec_.to_codes(row))
    if fmt == "text":
        print(render(res))
    elif fmt == "json":
        print(json.dumps(batch.record(res, args.k, digest, blank=None), indent=2))
    elif fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=batch.columns(args.k))
        writer.writeheader()
        writer.writerow(batch.record(res, args.k, digest))
        print(buffer.getvalue(), end="")
    else:
        raise ValueError(f"`--format` must be one of {FORMATS}, got {fmt!r}")
    return 0


def render(res: Any) -> str:
    """A result as text: the decision, then each counterfactual's plan."""
    lines = [f"applicant {res.index}: P(approved) = {res.proba:.3f} ({res.status})"]
    if res.status != "recourse":  # the reason; DiCE's unusable plans are listed after it
        lines.append(f"  {res.plan}")
    for i, cf in enumerate(res.counterfactuals, start=1):
        unusable = "" if cf.valid and not cf.violations else " [not usable]"
        lines.append(
            f"  {i}. {cf.plan}{unusable}\n     cost {cf.cost:.2f}, P(approved) ->"
            f" {cf.proba_after:.3f}, plausibility {cf.plausibility:.2f}"
        )
    if res.status == "recourse" and res.reason:  # below the data support, fewer than asked,
        lines.append(f"  note: {res.reason}")  # or DiCE's plans that miss or break a rule
    lines.append(f"  ({res.method}, {res.seconds * 1000:.0f} ms)")
    return "\n".join(lines)


def _run_batch(args: argparse.Namespace) -> int:
    import numpy as np
    import pandas as pd

    if args.out is None:
        raise ValueError("`--out` is required with `--input`")
    if args.out.endswith(("/", os.sep)):  # before the model is fitted (Path drops the /)
        raise IsADirectoryError(
            f"`--out` must be a file (csv or JSON Lines), got the folder name {args.out!r}"
        )
    out = Path(args.out)
    if out.resolve() == args.input.resolve():
        raise ValueError(
            f"`--out` must not be the `--input` file ({args.input}): the plans would be "
            "appended to the applicants"
        )
    if args.format is not None and args.format not in ("csv", "json"):
        raise ValueError(f"batch `--format` must be csv or json, got {args.format!r}")
    if args.format is None and out.suffix.lower() == ".json":
        raise ValueError(
            f"`--out` {out}: a batch writes JSON Lines (one object per line), which "
            "json.load cannot read as one document; name it .jsonl, or pass --format json to "
            "write JSON Lines to it anyway"
        )
    if out.is_dir():
        raise IsADirectoryError(f"`--out` must be a file (csv or JSON Lines), got the folder {out}")
    if args.input.is_dir():
        raise IsADirectoryError(
            f"`--input` must be a CSV file of applicants, got the folder {args.input}"
        )
    if not args.input.is_file():
        raise FileNotFoundError(f"`--input` {args.input} does not exist")
    from cfx.data.io import table_text

    # UTF-16 (Excel's "Unicode Text", PowerShell 5's `>`) and Windows-1252 too, as --labels
    # and `cfx label import` read them: pandas' UTF-8 refused both with a decoding error
    text = table_text(args.input.read_bytes(), f"`--input` {args.input}")
    data, rec = _fitted(args)
    try:
        as_text = [*data.schema.categorical, *([args.id_column] if args.id_column else [])]
        frame = pd.read_csv(  # ids: 007 stays
            io.StringIO(text),
            dtype=dict.fromkeys(as_text, "str"),
            sep=_separator(text),
            skipinitialspace=True,  # "a; b; c" by hand: every column was missing (" b")
        )
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as err:
        raise ValueError(
            f"`--input` {args.input} must be a CSV file of applicants (a header row with the "
            f"schema's columns, then one row per applicant): {str(err).splitlines()[0]}"
        ) from None
    if frame.empty:
        raise ValueError(f"`--input` {args.input} has a header but no applicant rows")
    if args.id_column is not None:
        if args.id_column not in frame.columns:
            raise ValueError(
                f"`--id-column` {args.id_column!r} is not a column of the input; its "
                f"columns: {', '.join(map(str, frame.columns))}"
            )
        blank = frame[args.id_column].isna().to_numpy()
        if blank.any():
            raise ValueError(
                f"`--id-column` {args.id_column!r} is empty in {int(blank.sum())} row(s) "
                f"(first rows {[int(i) for i in np.flatnonzero(blank)[:5]]!r}): every applicant "
                "needs an id"
            )
        frame.index = frame[args.id_column]
        if args.id_column not in data.schema.names:  # a missing feature's error lists the rest
            frame = frame.drop(columns=args.id_column)
    frame.index = frame.index.astype(str)  # ids as the lines hold them, rows named alike
    _other_columns(frame, data.schema, args.id_column)
    from cfx.notices import held
    from cfx.recourse.batch import explain_to_file
    from cfx.recourse.recourse import log as recourse_log

    with held((recourse_log,), "cfx_unread_columns"):  # said above, with an --id-column hint
        report = explain_to_file(
            rec,
            frame,
            args.out,
            constraints=_constraints(args),
            format=args.format,
            key={"model": args.model, "id_column": args.id_column},
            limit=args.limit,
            progress=not args.no_progress,
            what=("--input", "--out"),
            names=_FLAG_NAMES,
        )
    print(
        f"{out}: {report.done_before + report.new} of {report.total} "
        f"applicants done ({report.new} new)",
        file=sys.stderr,
    )
    return 0


def _separator(text: str) -> str:
    """The header's separator: a comma, or a semicolon or tab where the header has no comma
    (a spreadsheet in a comma-decimal locale saves ';'; pandas then said only "Expected 2
    fields in line 9, saw 3")."""
    header = text.split("\n", 1)[0]
    if "," in header:
        return ","
    return next((s for s in (";", "\t") if s in header), ",")


def _other_columns(frame: Any, schema: Any, id_column: str | None) -> None:
    """Say which columns of the input are not read (an id column without --id-column was
    dropped in silence, and the lines keyed by row number)."""
    other = [str(c) for c in frame.columns if c not in schema.names and c != id_column]
    ids = [c for c in other if c != schema.target]  # the decision column is no id
    if other:
        hint = "" if id_column or not ids else f" (an id column? pass --id-column {ids[0]})"
        log.warning(
            "`--input` columns not in the schema, not read: %s%s", ", ".join(other[:8]), hint
        )


_FLAG_NAMES = {
    "k": "--k",
    "max_changes": "--max-changes",
    "target_proba": "--target-proba",
    "support": "--support",
    "method": "--method",
    "format": "--format",
    "constraints": "--immutable",
    "constraints.immutable": "--immutable",
    "key.model": "--model",
    "key.id_column": "--id-column",
}
"""A batch key's settings (dotted paths) by the flag that sets them: a refused rerun said
"k: 3 before, 2 now" to someone who typed --k 2 (session 45 audit)."""
