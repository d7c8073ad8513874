"""``cfx recourse``: plans for denied German Credit applicants, one or a resumable batch.

::

    cfx recourse --model gbm --applicant-index 17               # print the plan
    cfx recourse --model gbm --applicant-index 17 --format json
    cfx recourse --model gbm --input applicants.csv --out suggestions.csv   # batch, resumable

The model is a zoo credit model (``logistic``, ``gbm``, ``mlp``), trained on the fixed training
split, and recourse is fitted on the same rows. A batch reads a CSV with the schema's columns
(category labels as in German Credit) and writes one line per applicant, appended and flushed
as each finishes: CSV (``--format csv``, the default; ``plan_1``, ``cost_1``, ... for up to
``k`` counterfactuals) or JSON Lines (``--format json``). Rerunning the same command skips the
applicants already in ``--out``, so an interrupted batch resumes where it stopped; a line cut
short by a crash is discarded and redone. ``OUT.key.json`` records the settings the lines were
written with: a rerun with other settings is refused (naming them) rather than mixing two runs
in one file. The whole input is checked before any applicant is explained; errors name the
rows at fault. Without ``--id-column`` applicants are known by their row number, so add rows
at the end of the input only.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from cfx.cli.options import given_flags
from cfx.errors import UnknownNameError, check_int, check_real, counted, shown_rows

FORMATS = ("text", "json", "csv")


log = logging.getLogger(__name__)


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
    p.add_argument("--out", type=Path, help="batch output file (required with --input)")
    p.add_argument(
        "--id-column",
        help="input column naming each applicant (default: row number, so add rows at the "
        "end only if a batch is to resume)",
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
    p.add_argument("--immutable", default="", help="extra immutable features, comma-separated")
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
    return data, rec.fit(data.X.iloc[train])


def _immutable(args: argparse.Namespace) -> tuple[str, ...]:
    """The features ``--immutable`` names (comma-separated)."""
    return tuple(n.strip() for n in args.immutable.split(",") if n.strip())


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
                f"{', '.join(batch_only)} go with --input (a batch); one applicant "
                "(--applicant-index) is printed: redirect it to keep it, e.g. "
                "`--format csv > plan.csv`"
            )
    elif args.limit is not None:
        check_int("--limit", args.limit)


def run_recourse(args: argparse.Namespace) -> int:
    _check_options(args)
    if args.input is not None:
        return _run_batch(args)
    fmt = args.format or "text"
    if fmt not in FORMATS:
        raise ValueError(f"`--format` must be one of {FORMATS}, got {fmt!r}")
    data, rec = _fitted(args)
    row = data.X.iloc[[args.applicant_index]]
    (res,) = rec.explain(row, constraints=_constraints(args))
    (digest,) = input_digests(rec.codec_.to_codes(row))
    if fmt == "text":
        print(render(res))
    elif fmt == "json":
        print(json.dumps(record(res, args.k, digest, blank=None), indent=2))
    elif fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns(args.k))
        writer.writeheader()
        writer.writerow(record(res, args.k, digest))
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


def columns(k: int) -> list[str]:
    per = ["plan", "changes", "cost", "proba_after", "plausibility"]
    head = ["index", "input_digest", "status", "proba", "reason", "method", "seconds"]
    return [*head, "n_counterfactuals"] + [f"{name}_{i}" for i in range(1, k + 1) for name in per]


def input_digests(codes: np.ndarray) -> list[str]:
    """Per applicant, a digest of the values a plan was made for (the schema's codes, so 24
    and 24.0 read alike): a rerun tells an applicant whose values changed from one done."""
    rows = np.ascontiguousarray(codes, dtype=np.float64)  # (n, d)
    return [hashlib.sha256(row.tobytes()).hexdigest()[:16] for row in rows]


def record(res: Any, k: int, digest: str, *, blank: Any = "") -> dict[str, Any]:
    """One applicant as one flat record (CSV line / JSON object); ``digest`` of its values,
    from :func:`input_digests`; ``blank`` fills the columns of plans it has not (an empty
    CSV cell; None, JSON's null)."""
    out: dict[str, Any] = {
        "index": res.index if isinstance(res.index, int | str) else str(res.index),
        "input_digest": digest,
        "status": res.status,
        "proba": round(res.proba, 6),
        "reason": res.reason,
        "method": res.method,
        "seconds": round(res.seconds, 4),
        "n_counterfactuals": len(res.counterfactuals),
    }
    for i in range(1, k + 1):
        cf = res.counterfactuals[i - 1] if i <= len(res.counterfactuals) else None
        out[f"plan_{i}"] = blank if cf is None else cf.plan
        out[f"changes_{i}"] = (
            blank
            if cf is None
            else "; ".join(f"{c.feature}: {c.before} -> {c.after}" for c in cf.changes)
        )
        out[f"cost_{i}"] = blank if cf is None else round(cf.cost, 6)
        out[f"proba_after_{i}"] = blank if cf is None else round(cf.proba_after, 6)
        out[f"plausibility_{i}"] = blank if cf is None else round(cf.plausibility, 6)
    return out


def finished(out: Path, fmt: str) -> dict[str, str]:
    """Applicants already in ``out``, each with the digest of the values its plan was made
    for; a last line cut short by a crash is cut off first."""
    if not out.exists() or out.stat().st_size == 0:
        return {}
    text = out.read_text(encoding="utf-8")
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
        os.truncate(out, len(text.encode("utf-8")))  # the whole lines stay as they are
    if fmt == "json":
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    elif fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(text)))
    else:
        raise ValueError(f"batch `format` must be csv or json, got {fmt!r}")
    return {str(row["index"]): str(row.get("input_digest") or "") for row in rows}


def _key(args: argparse.Namespace, rec: Any, fmt: str) -> dict[str, Any]:
    """The settings a batch's lines depend on, as the fitted ``rec`` holds them (defaults
    filled in); the applicants themselves are resumed by id."""
    immutable = sorted(_immutable(args))
    return {
        "model": args.model,
        "k": rec.k,
        "method": rec.method,
        "max_changes": rec.max_changes,
        "immutable": immutable,
        "support": rec.support,
        "target_proba": rec.goal_,  # the threshold when not given: the same plans
        "format": fmt,
        "id_column": args.id_column,
        "input_digests": True,  # lines record their applicant's values (see input_digests)
    }


def _claim(args: argparse.Namespace, rec: Any, fmt: str) -> None:
    """Make ``--out`` this batch's: refuse a file written with other settings, naming them."""
    from cfx.run_key import changes

    out: Path = args.out
    key_file = out.with_name(out.name + ".key.json")
    key = _key(args, rec, fmt)
    if out.is_file() and out.stat().st_size > 0:
        try:
            earlier = json.loads(key_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            earlier = None
        if isinstance(earlier, dict) and "input_digests" not in earlier:
            raise ValueError(
                f"`--out` {out} was written by an older cfx, whose lines do not record the "
                "values each plan was made for, so a rerun cannot tell them from changed ones; "
                f"pass another --out, or delete {out} to start over"
            )
        if isinstance(earlier, dict) and earlier != key:
            raise ValueError(
                f"`--out` {out} holds the results of a run with other settings "
                f"({changes(earlier, key)}); pass another --out, or delete {out} to start over"
            )
        if earlier is None and fmt == "csv":  # no key (an older cfx): the columns must match
            with out.open(encoding="utf-8", newline="") as handle:
                header = next(csv.reader(handle), [])
            if header != columns(args.k):
                raise ValueError(
                    f"`--out` {out} has other columns than this run writes (another --k?); "
                    "pass another --out, or delete it to start over"
                )
    out.parent.mkdir(parents=True, exist_ok=True)
    key_file.write_text(json.dumps(key, indent=2) + "\n", encoding="utf-8")


def _run_batch(args: argparse.Namespace) -> int:
    import pandas as pd

    from cfx.notices import held
    from cfx.progress import tqdm
    from cfx.recourse.recourse import log as recourse_log
    from cfx.recourse.recourse import range_notice

    if args.out is None:
        raise ValueError("`--out` is required with `--input`")
    suffix = args.out.suffix.lower()
    if args.format is None and suffix == ".json":
        raise ValueError(
            f"`--out` {args.out}: a batch writes JSON Lines (one object per line), which "
            "json.load cannot read as one document; name it .jsonl, or pass --format json to "
            "write JSON Lines to it anyway"
        )
    lines = suffix in (".jsonl", ".ndjson")
    fmt = args.format or ("json" if lines else "csv")
    if fmt not in ("csv", "json"):
        raise ValueError(f"batch `--format` must be csv or json, got {fmt!r}")
    if (fmt == "csv" and lines) or (fmt == "json" and suffix == ".csv"):
        log.warning("`--out` %s is written as %s, which its name does not say", args.out, fmt)
    if args.out.is_dir():
        raise IsADirectoryError(
            f"`--out` must be a file (csv or JSON Lines), got the folder {args.out}"
        )
    if not args.input.is_file():
        raise FileNotFoundError(f"`--input` {args.input} does not exist")
    data, rec = _fitted(args)
    try:
        frame = pd.read_csv(args.input, dtype={name: "str" for name in data.schema.categorical})
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise ValueError(
            f"`--input` {args.input} must be a CSV file of applicants (a header row with the "
            f"schema's columns, then one row per applicant): {str(err).splitlines()[0]}"
        ) from None
    if frame.empty:
        raise ValueError(f"`--input` {args.input} has a header but no applicant rows")
    if args.id_column is not None:
        if args.id_column not in frame.columns:
            raise ValueError(f"`--id-column` {args.id_column!r} is not a column of the input")
        frame.index = frame[args.id_column].astype(str)
    frame.index = frame.index.astype(str)
    if frame.index.duplicated().any():
        twice = sorted(set(frame.index[frame.index.duplicated()]))[:5]
        raise ValueError(f"applicant ids must be unique in `--input`, got {twice!r} twice")
    # every row, before any work: errors name rows, and out-of-range values are said once
    codes = rec.codec_.to_codes(frame, what="--input")  # (n, d)
    range_notice(data.schema, codes, frame.index, rec.scales_)
    digest = dict(zip(frame.index, input_digests(codes), strict=True))
    _claim(args, rec, fmt)
    done = finished(args.out, fmt)
    changed = [i for i in frame.index if i in done and done[i] != digest[i]]
    if changed:  # plans made for other values: not these applicants' any more
        raise ValueError(
            f"`--out` {args.out} holds plans for {counted(len(changed), 'applicant')} whose "
            f"values in `--input` differ from the ones the plans were made for (ids "
            f"{shown_rows(changed)}; another input file, or edited rows?); pass another "
            f"--out, or delete {args.out} to start over"
        )
    already = frame.index.isin(list(done))  # (n,) this input's applicants with a plan
    todo = frame[~already]
    if args.limit is not None:
        todo = todo.iloc[: args.limit]
    constraints = _constraints(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    new_file = not args.out.exists() or args.out.stat().st_size == 0
    with args.out.open("a", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns(args.k))
        if new_file and fmt == "csv":
            writer.writeheader()
        bar = tqdm(total=len(todo), disable=args.no_progress, desc="recourse", unit="applicant")
        # out-of-range values were said once for the whole input, above
        with bar, held((recourse_log,), "cfx_value_range"):
            for i in range(len(todo)):
                (res,) = rec.explain(todo.iloc[[i]], constraints=constraints)
                if fmt == "csv":
                    writer.writerow(record(res, args.k, digest[todo.index[i]]))
                else:
                    line = record(res, args.k, digest[todo.index[i]], blank=None)
                    handle.write(json.dumps(line) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
                bar.update(1)
    print(
        f"{args.out}: {int(already.sum()) + len(todo)} of {len(frame)} "
        f"applicants done ({len(todo)} new)",
        file=sys.stderr,
    )
    return 0
