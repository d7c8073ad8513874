"""A resumable batch: plans for many applicants written to a file, one line per applicant as
each finishes, so an interrupted batch loses nothing and a rerun resumes where it stopped.

::

    from cfx.recourse import Recourse, explain_to_file

    rec = Recourse(my_model, my_schema).fit(X_train)
    report = explain_to_file(rec, applicants.set_index("applicant_id"), "plans.csv")
    report.new, report.total  # explained by this call, in the input

Lines are CSV (``plan_1``, ``usable_1``, ``cost_1``, ... for up to ``k`` plans; see
:func:`columns`) or JSON Lines (``format="json"``, the default for a ``.jsonl`` file), appended
and flushed as each applicant finishes. Applicants are known by their index label (as a
string): give each a stable id (``set_index(...)``); with the default row numbers, add rows at
the end only. Each line records a digest of the applicant's values (:func:`input_digests`),
so a rerun with other values under a finished id is refused, never filed under the old plan;
a last line cut short by a crash is discarded and redone. ``OUT.key.json`` records what the
lines depend on: the recourse settings, the constraints, the schema, a digest of the
training rows (:attr:`Recourse.train_sha256_`), the model's approval probabilities on up to
1,000 of them (compared within 1e-4, so float noise between machines or thread counts is not
read as another model) and the caller's ``key``. A rerun that differs in any of them is
refused (:class:`~cfx.errors.ForeignRunError`), naming what changed, rather than mixing two
runs in one file. (Custom ``phrases`` and an SCM's own ``equations`` are code, recorded by
name only.)

Per-applicant rules: ``constraints`` may be a function of the applicant's row (a
``pd.Series`` named by its index label) returning its :class:`Constraints` (or None), e.g.
``lambda row: Constraints(bounds={"years_employed": (None, row["age"] - 16)})``. Each line's
digest then covers the applicant's constraints too, so a rerun whose function gives a
finished applicant other rules is refused like edited values.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import logging
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal, get_args

import numpy as np
import pandas as pd

from cfx.errors import ForeignRunError, check_flag, counted, shown_rows
from cfx.files import lock_exclusive, path_argument, write_atomic
from cfx.notices import held
from cfx.progress import tqdm
from cfx.recourse.recourse import (
    Recourse,
    bounds_notice,
    check_not_refused,
    outside_bounds,
    range_notice,
    unread_notice,
)
from cfx.recourse.recourse import log as recourse_log
from cfx.recourse.result import RecourseResult, Status, _short
from cfx.recourse.space import Constraints
from cfx.run_key import changes

BatchFormat = Literal["csv", "json"]
BATCH_FORMATS: tuple[str, ...] = ("csv", "json")
PER_PLAN = ("plan", "usable", "changes", "cost", "proba_after", "plausibility")
LAYOUT = "cfx.recourse batch 2"
"""The lines' layout and the key's; a file of another (an older cfx's) is not resumed."""
PROBE_ROWS = 1000
"""Training rows (evenly spaced) whose approval probabilities the key records."""
PROBE_TOLERANCE = 1e-4
"""Largest difference in those probabilities still read as the same model: float noise
between machines and thread counts (1e-7 for a float32 network) is not another model."""

_DIGEST = re.compile(r"[0-9a-f]{16}")
"""An applicant's :func:`input_digests` entry as a line holds it."""
STATUSES = get_args(Status)

PerApplicant = Callable[[pd.Series], Constraints | None]
"""Constraints as a function of one applicant's row (see the module docstring)."""
PER_APPLICANT = "per applicant"
"""What the key records for per-applicant constraints (each line's digest covers them)."""

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchReport:
    """What :func:`explain_to_file` did: ``total`` applicants in the input, ``done_before``
    of them already in ``out``, ``new`` explained by this call (fewer than the rest only
    with ``limit``)."""

    out: Path
    total: int
    done_before: int
    new: int

    @property
    def remaining(self) -> int:
        """Applicants of the input still without a line in ``out``."""
        return self.total - self.done_before - self.new


def explain_to_file(
    recourse: Recourse,
    applicants: pd.DataFrame,
    out: str | os.PathLike[str],
    *,
    constraints: Constraints | PerApplicant | None = None,
    format: BatchFormat | None = None,
    key: Mapping[str, Any] | None = None,
    limit: int | None = None,
    progress: bool = True,
    what: tuple[str, str] = ("applicants", "out"),
    names: Mapping[str, str] | None = None,
) -> BatchReport:
    """Explain each of ``applicants`` (rows) with the fitted ``recourse`` under
    ``constraints``, appending one line per applicant to ``out`` (see the module docstring);
    applicants already in ``out`` are skipped.

    Args:
        recourse: a fitted :class:`~cfx.recourse.Recourse`.
        applicants: one row per applicant, the schema's columns; unique index labels (as
            strings), which name each applicant's line.
        out: the file (created with its folder; appended to when it holds this batch).
        constraints: per-query rules (``Recourse.explain``'s) for every applicant, or a
            function of an applicant's row (``pd.Series`` named by its label) returning its
            own (or None); called once per applicant before any is explained.
        format: ``"csv"`` or ``"json"`` (JSON Lines); default ``"json"`` for an ``out``
            ending in ``.jsonl`` or ``.ndjson``, else ``"csv"``.
        key: your own settings the lines depend on that cfx cannot see (e.g. the model's
            name or version), JSON-serialisable; a rerun with another key is refused.
        limit: explain at most this many new applicants (``None``: all the rest).
        progress: show a progress bar.
        what: how errors name ``applicants`` and ``out`` (a command line names its flags).
        names: how a refused rerun names the settings that changed, by their dotted path
            in the key (``{"k": "--k", "key.model": "--model"}``; a command line names its
            flags).

    Every row is checked before any applicant is explained (errors name the rows at fault;
    values outside a feature's range are said once for the whole input).
    """
    check_flag("progress", progress)
    what_in, what_out = what
    if not isinstance(recourse, Recourse):
        raise TypeError(f"`recourse` must be a Recourse, got {type(recourse).__name__}")
    if not hasattr(recourse, "engine_"):
        raise ValueError("`recourse` is not fitted yet; call recourse.fit(X_train) first")
    if not isinstance(applicants, pd.DataFrame):
        raise TypeError(f"`{what_in}` must be a pandas DataFrame, got {type(applicants).__name__}")
    if constraints is not None and not (
        isinstance(constraints, Constraints) or callable(constraints)
    ):
        raise TypeError(
            "`constraints` must be a Constraints, a function of an applicant's row returning "
            f"one, or None, got {type(constraints).__name__}"
        )
    if limit is not None and (not isinstance(limit, int | np.integer) or isinstance(limit, bool)):
        raise TypeError(f"`limit` must be None or an int >= 0, got {limit!r}")
    if limit is not None and limit < 0:
        raise ValueError(f"`limit` must be None or an int >= 0, got {limit!r}")
    if key is not None and not isinstance(key, Mapping):
        raise TypeError(f"`key` must be a mapping of your settings, got {type(key).__name__}")
    path = path_argument(out, what_out, "a file path (str or Path)")
    if isinstance(out, str) and out.endswith(("/", os.sep)):  # the Path dropped the slash
        raise IsADirectoryError(
            f"`{what_out}` must be a file (csv or JSON Lines), got the folder name {out!r}"
        )
    fmt = _format(path, format, what_out)
    if path.is_dir():
        raise IsADirectoryError(
            f"`{what_out}` must be a file (csv or JSON Lines), got the folder {path}"
        )
    if len(applicants) == 0:
        raise ValueError(f"`{what_in}` has no applicant rows")
    ids = [applicant_id(label) for label in applicants.index]  # as the lines write them
    if any(not i.strip() for i in ids):  # written, then refused as a damaged line on resume
        blank = [n for n, i in enumerate(ids) if not i.strip()]
        raise ValueError(
            f"applicant ids must not be blank, got {counted(len(blank), 'blank id')} in "
            f"`{what_in}` (rows {shown_rows(blank)}, counted from 0)"
        )
    twice = sorted(i for i, n in Counter(ids).items() if n > 1)
    if twice:
        raise ValueError(
            f"applicant ids must be unique, got {twice[:5]!r} more than once in `{what_in}`"
            + (
                "'s index; set_index(an id column) or reset_index(drop=True)"
                if what_in == "applicants"
                else ""
            )
        )
    # every row, before any work: errors name rows, and out-of-range values are said once
    codes = recourse.codec_.to_codes(applicants, what=what_in)  # (n, d)
    check_not_refused(recourse.schema, codes, applicants.index, recourse.view_.refused)
    range_notice(recourse.schema, codes, applicants.index, recourse.scales_)
    unread_notice(recourse.schema, applicants.columns, what_in)
    shared: Constraints | None = None
    rules: list[Constraints | None] | None = None  # each applicant's, from a function
    if isinstance(constraints, Constraints) or constraints is None:
        shared = constraints
    else:
        rules = _per_applicant(recourse, applicants, ids, constraints)
    per_row = [shared] * len(ids) if rules is None else rules  # each applicant's rules
    # values outside their query's bounds, said once for the file, of denied applicants (the
    # model is asked only when some rules have bounds)
    bounded = [i for i, mine in enumerate(per_row) if mine is not None and mine.bounds]
    outside: list[str] = []
    if bounded:
        denied = recourse.view_.proba(codes[bounded]) < recourse.threshold
        for i in np.asarray(bounded)[denied].tolist():
            mine = per_row[i]
            assert mine is not None  # bounded rules only
            schema = mine.apply(recourse.schema)
            outside += outside_bounds(mine, schema, codes[[i]], applicants.index[[i]])
    bounds_notice(outside)
    digest = dict(zip(ids, input_digests(codes, rules), strict=True))
    settings = batch_key(recourse, constraints, fmt, key)  # a bad `key` claims no file
    with _writing(path, what_out) as handle:
        return _explain_rest(
            recourse,
            applicants,
            ids,
            digest,
            per_row,
            path,
            handle,
            key=settings,
            names=names or {},
            ruled=rules is not None,
            fmt=fmt,
            limit=limit,
            progress=progress,
            what=what,
        )


@contextmanager
def _writing(path: Path, what_out: str) -> Iterator[IO[bytes]]:
    """``path`` open for appending, unbuffered (a write that fails leaves nothing to flush
    on closing), made with its folder if missing, and locked while this run writes it: a
    second run on the same file at once is refused, where the two of them wrote each
    applicant twice (session 45 audit). The lock goes with the handle, also when the process
    dies. (No lock on Windows, which has no ``fcntl``, nor on a file system without locks.)"""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("ab", buffering=0)
    except OSError as err:
        raise type(err)(f"`{what_out}` {path}: cannot write it ({err.strerror or err})") from err
    with handle:
        lock_exclusive(
            handle.fileno(),
            f"`{what_out}` {path} is being written by another run right now; wait for it to "
            f"finish (rerun then to resume), or pass another `{what_out}`",
        )
        yield handle


def _append(handle: IO[bytes], text: str, path: Path, what_out: str, saved: int) -> None:
    """Write ``text`` to the end of ``handle`` and to disk; a failure (a full disk, a size
    limit) names ``what_out`` and says that the ``saved`` applicants' lines are kept."""
    try:
        view = memoryview(text.encode("utf-8"))
        while view:  # a raw write may take part of it
            view = view[handle.write(view) or 0 :]
        os.fsync(handle.fileno())
    except OSError as err:
        raise type(err)(
            f"`{what_out}` {path}: cannot write ({err.strerror or err}); the lines of the "
            f"{counted(saved, 'applicant')} done before it are kept: make room and rerun the "
            "same command to resume"
        ) from err


def _explain_rest(
    recourse: Recourse,
    applicants: pd.DataFrame,
    ids: list[str],
    digest: dict[str, str],
    per_row: list[Constraints | None],
    path: Path,
    handle: IO[bytes],
    *,
    key: dict[str, Any],
    names: Mapping[str, str],
    ruled: bool,
    fmt: str,
    limit: int | None,
    progress: bool,
    what: tuple[str, str],
) -> BatchReport:
    """The applicants of ``ids`` without a line in ``path`` (locked, open as ``handle``),
    explained and appended one line each, after checking the file is this batch's."""
    what_in, what_out = what
    _claim(path, key, what_out, names)
    done = finished(path, fmt)
    changed = [i for i in ids if i in done and done[i] != digest[i]]
    if changed:  # plans made for other values: not these applicants' any more
        their = " (or the constraints your function gives them)" if ruled else ""
        raise ForeignRunError(
            f"`{what_out}` {path} holds plans for {counted(len(changed), 'applicant')} whose "
            f"values in `{what_in}`{their} differ from the ones the plans were made for (ids "
            f"{shown_rows(changed)}; another input, or edited rows?); pass another "
            f"`{what_out}`, or delete {path} to start over"
        )
    already = np.array([i in done for i in ids], dtype=bool)  # (n,) with a line
    todo = np.flatnonzero(~already)[:limit]  # positions
    before = int(already.sum())
    new_file = path.stat().st_size == 0
    fields = columns(recourse.k)

    def csv_line(row: dict[str, Any] | None) -> str:  # None: the header
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=fields)
        if row is None:
            writer.writeheader()
        else:
            writer.writerow(row)
        return text.getvalue()

    # the bar counts the whole input, so a resumed batch shows where it starts
    bar = tqdm(
        total=len(ids), initial=before, disable=not progress, desc="recourse", unit="applicant"
    )
    new = 0
    try:
        if new_file and fmt == "csv":
            _append(handle, csv_line(None), path, what_out, before)
        # out-of-range and out-of-bounds values and unread columns were said once, above
        tags = ("cfx_value_range", "cfx_query_bounds", "cfx_unread_columns")
        with bar, held((recourse_log,), *tags):
            for i in todo:
                (res,) = recourse.explain(applicants.iloc[[i]], constraints=per_row[i])
                if fmt == "csv":
                    text = csv_line(record(res, recourse.k, digest[ids[i]]))
                else:  # one line: JSON escapes newlines
                    text = json.dumps(record(res, recourse.k, digest[ids[i]], blank=None)) + "\n"
                _append(handle, text, path, what_out, before + new)
                new += 1
                bar.update(1)
    except KeyboardInterrupt:
        log.warning(
            "`%s` %s: %d of %d applicants done (%d by this run), each line saved; rerun the "
            "same command to resume",
            what_out,
            path,
            before + new,
            len(ids),
            new,
        )
        raise
    return BatchReport(path, len(ids), before, len(todo))


def _per_applicant(
    recourse: Recourse, applicants: pd.DataFrame, ids: list[str], rules: PerApplicant
) -> list[Constraints | None]:
    """Each applicant's constraints from ``rules(row)``, checked against the schema before
    any applicant is explained; errors name the applicant."""
    out: list[Constraints | None] = []
    checked: set[str] = set()
    for i, (_, row) in enumerate(applicants.iterrows()):
        try:
            mine = rules(row.copy())  # a function that edits its row edits no applicant
        except Exception as err:
            err.add_note(f"(in `constraints`, called for applicant {ids[i]!r})")
            raise
        if mine is not None and not isinstance(mine, Constraints):
            raise TypeError(
                f"`constraints` must return a Constraints or None for each applicant, got "
                f"{type(mine).__name__} for applicant {ids[i]!r}"
            )
        text = _rules_text(mine)
        if mine is not None and text not in checked:  # one check per distinct rule set
            try:
                mine.apply(recourse.schema)
            except Exception as err:
                err.add_note(f"(the `constraints` of applicant {ids[i]!r})")
                raise
            checked.add(text)
        out.append(mine)
    return out


def _format(path: Path, format: str | None, what_out: str) -> str:
    suffix = path.suffix.lower()
    if format is None and suffix == ".json":
        raise ValueError(
            f"`{what_out}` {path}: a batch writes JSON Lines (one object per line), which "
            "json.load cannot read as one document; name it .jsonl, or pass format='json' to "
            "write JSON Lines to it anyway"
        )
    spreadsheet = (".xlsx", ".xls", ".xlsm", ".ods", ".parquet", ".feather", ".pkl")
    if suffix in spreadsheet:  # CSV text under an .xlsx name: Excel refuses to open it
        raise ValueError(
            f"`{what_out}` {path}: a batch is written as CSV or JSON Lines text, not as a "
            f"{suffix} file; name it .csv (which spreadsheets open) or .jsonl"
        )
    lines = suffix in (".jsonl", ".ndjson")
    fmt = format or ("json" if lines else "csv")
    if fmt not in BATCH_FORMATS:
        raise ValueError(f"batch `format` must be one of {BATCH_FORMATS}, got {fmt!r}")
    if (fmt == "csv" and lines) or (fmt == "json" and suffix == ".csv"):
        log.warning("`%s` %s is written as %s, which its name does not say", what_out, path, fmt)
    return fmt


def columns(k: int) -> list[str]:
    """A batch line's fields for ``k`` plans: the applicant's, then per plan ``plan_i``,
    ``usable_i`` (valid and breaking no constraint; only DiCE's plans can be unusable),
    ``changes_i``, ``cost_i``, ``proba_after_i``, ``plausibility_i``."""
    per = PER_PLAN
    head = ["index", "input_digest", "status", "proba", "reason", "method", "seconds"]
    return [*head, "n_counterfactuals"] + [f"{name}_{i}" for i in range(1, k + 1) for name in per]


def input_digests(
    codes: np.ndarray, constraints: Sequence[Constraints | None] | None = None
) -> list[str]:
    """Per applicant, a digest of the values a plan was made for (the schema's codes
    ``(n, d)``, so 24 and 24.0 read alike) and, when given, of each applicant's own
    ``constraints`` (in any order of their rules): a rerun tells an applicant whose values
    or rules changed from one done."""
    rows = np.ascontiguousarray(codes, dtype=np.float64)  # (n, d)
    out = []
    for i, row in enumerate(rows):
        h = hashlib.sha256(row.tobytes())
        if constraints is not None:
            h.update(_rules_text(constraints[i]).encode())
        out.append(h.hexdigest()[:16])
    return out


def record(res: RecourseResult, k: int, digest: str, *, blank: Any = "") -> dict[str, Any]:
    """One applicant as one flat record (CSV line / JSON object) of :func:`columns`;
    ``digest`` of its values, from :func:`input_digests`; ``blank`` fills the fields of plans
    it has not (an empty CSV cell; None, JSON's null)."""
    line: dict[str, Any] = {
        "index": res.index if isinstance(res.index, int | str) else applicant_id(res.index),
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
        if cf is None:
            line.update({f"{name}_{i}": blank for name in PER_PLAN})
            continue
        line[f"plan_{i}"] = cf.plan
        line[f"usable_{i}"] = bool(cf.valid and not cf.violations)
        line[f"changes_{i}"] = "; ".join(
            f"{c.feature}: {_short(c.before)} -> {_short(c.after)}" for c in cf.changes
        )
        line[f"cost_{i}"] = round(cf.cost, 6)
        line[f"proba_after_{i}"] = round(cf.proba_after, 6)
        line[f"plausibility_{i}"] = round(cf.plausibility, 6)
    return line


def applicant_id(label: Any) -> str:
    """An applicant's id as a line records it and a resume matches it: ``str`` of its index
    label (``7`` and ``"7"`` are one id; a timestamp keeps its time)."""
    return label if isinstance(label, str) else str(label)


def finished(out: Path, fmt: str) -> dict[str, str]:
    """Applicants already in ``out`` (by id), each with the digest of the values its plan was
    made for; a last line cut short by a crash is cut off first (in bytes: CSV lines end in
    ``\\r\\n``)."""
    if not out.exists() or out.stat().st_size == 0:
        return {}
    data = out.read_bytes()
    if not data.endswith(b"\n"):
        data = data[: data.rfind(b"\n") + 1]
        os.truncate(out, len(data))  # the whole lines stay as they are
    text = data.decode("utf-8", errors="replace")
    rows: list[tuple[int, Any]] = []  # (line number, row)
    try:
        if fmt == "json":
            for n, line in enumerate(text.splitlines(), start=1):
                if line.strip():
                    rows.append((n, json.loads(line)))
        elif fmt == "csv":
            reader = csv.DictReader(io.StringIO(text, newline=""))
            end = 1  # the header's; a row starts on the line after the last one's end
            for row in reader:
                rows.append((end + 1, row))
                end = reader.line_num
        else:
            raise ValueError(f"batch `format` must be one of {BATCH_FORMATS}, got {fmt!r}")
    except ValueError as err:
        raise ForeignRunError(
            f"{out} is not a batch file cfx can resume (a damaged or edited line: {err}); "
            "pass another file, or delete it to start over"
        ) from None
    done: dict[str, str] = {}
    lines: dict[str, int] = {}
    for n, row in rows:
        # a line cfx wrote: an id, a 16-digit digest and a status (an edited or half-quoted
        # line was read as an applicant, and the one it swallowed redone; session 45 audit)
        fine = isinstance(row, dict) and (  # CSV: None stands for a field too many or few
            fmt == "json" or (None not in row and None not in row.values())
        )
        ident = str(row.get("index", "")) if fine else ""
        digest = str(row.get("input_digest", "")) if fine else ""
        if not (ident and _DIGEST.fullmatch(digest) and row.get("status") in STATUSES):
            raise ForeignRunError(
                f"{out} is not a batch file cfx can resume (line {n} is damaged or edited: "
                "not a line cfx wrote); mend or delete that line (its applicant is redone), "
                "or delete the file to start over"
            )
        if ident in done:  # two runs wrote it at once (before the lock), or a pasted line
            raise ForeignRunError(
                f"{out} holds applicant {ident!r} twice (lines {lines[ident]} and {n}): keep "
                "one line of each applicant, then rerun to resume"
            )
        done[ident], lines[ident] = digest, n
    return done


def batch_key(
    recourse: Recourse,
    constraints: Constraints | PerApplicant | None,
    fmt: str,
    key: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What a batch's lines depend on, as JSON reads it back (defaults filled in, as the
    fitted ``recourse`` holds them); the applicants themselves are resumed by id and digest.
    ``model_probe`` (the approval probabilities of up to :data:`PROBE_ROWS` training rows)
    is compared within :data:`PROBE_TOLERANCE`, everything else exactly."""
    scm = recourse.scm
    p = recourse.train_proba_
    rows = np.unique(np.linspace(0, len(p) - 1, min(len(p), PROBE_ROWS)).round().astype(int))
    settings = {
        "layout": LAYOUT,
        "k": recourse.k,
        "method": recourse.method_,
        "cost": recourse.cost,
        "approved": recourse.approved,
        "threshold": recourse.threshold,
        "target_proba": recourse.goal_,  # the threshold when not given: the same plans
        "max_changes": recourse.max_changes,
        "support": recourse.support,
        "plausibility_weight": recourse.plausibility_weight,
        "random_state": recourse.random_state,
        "scm": None
        if scm is None
        else {
            "parents": {c: sorted(ps) for c, ps in scm.parents.items()},
            "equations": {c: _name(f) for c, f in scm.equations.items()},
        },
        "phrases": None
        if recourse.phrases is None
        else {n: _name(f) for n, f in recourse.phrases.items()},
        "constraints": None
        if constraints is None
        else _constraints(constraints)
        if isinstance(constraints, Constraints)
        else PER_APPLICANT,  # each line's digest covers its own
        "schema_sha256": _schema_sha256(recourse.schema),
        "train_sha256": recourse.train_sha256_,
        "model_probe": [round(float(v), 6) for v in p[rows]],
        "format": fmt,
    }
    loaded: dict[str, Any] = json.loads(json.dumps(_plain(settings), sort_keys=True))
    try:
        loaded["key"] = json.loads(json.dumps(dict(key or {}), sort_keys=True))
    except TypeError as err:
        raise TypeError(f"`key` must be JSON-serialisable: {err}") from None
    return loaded  # tuples as lists, as the file holds them


_NAMES = {
    "train_sha256": "the training rows (train_sha256)",
    "schema_sha256": "the schema",
    "model_probe": "the model (its approval probabilities on the training rows)",
}


def _claim(
    path: Path, key: dict[str, Any], what_out: str, names: Mapping[str, str] | None = None
) -> None:
    """Make ``path`` this batch's: refuse a file written with other settings, naming them;
    the key file is written (atomically) when the batch starts."""
    key_file = path.with_name(path.name + ".key.json")
    if path.is_file() and path.stat().st_size > 0:
        try:
            earlier = json.loads(key_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            earlier = None
        if not isinstance(earlier, dict) or earlier.get("layout") != LAYOUT:
            why = "has no readable key file" if earlier is None else "was written by an older cfx"
            raise ForeignRunError(
                f"`{what_out}` {path} {why} ({key_file.name}), so a rerun cannot tell whether "
                f"its lines were made with these settings; pass another `{what_out}`, or "
                f"delete {path} to start over"
            )
        if not _same_model(earlier.get("model_probe"), key["model_probe"]):
            earlier = {**earlier, "model_probe": "another"}  # named among the changes
        else:
            earlier = {**earlier, "model_probe": key["model_probe"]}
        if earlier != key:
            raise ForeignRunError(
                f"`{what_out}` {path} holds the results of a run with other settings "
                f"({changes(earlier, key, {**_NAMES, **(names or {})})}); pass another "
                f"`{what_out}`, or delete "
                f"{path} to start over"
            )
        return  # the key file stays as written when the batch began
    path.parent.mkdir(parents=True, exist_ok=True)
    # a crash never leaves half a key, a full disk no temporary (it left OUT.key.json.partial)
    write_atomic(key_file, json.dumps(key, indent=2, sort_keys=True) + "\n")


def _same_model(before: object, now: list[float]) -> bool:
    """Whether two probes read as one model: the same rows, within PROBE_TOLERANCE."""
    if not isinstance(before, list) or len(before) != len(now):
        return False
    try:
        gap = max((abs(float(a) - b) for a, b in zip(before, now, strict=True)), default=0.0)
    except (TypeError, ValueError):
        return False
    return gap <= PROBE_TOLERANCE


_LATER_FIELDS = {"max_shift": None, "transition_costs": None}
"""FeatureSpec fields added after batches were first keyed, with their defaults: left out of
the digest at the default, so that a batch begun by an older cfx resumes (sessions 42, 43)."""


def _schema_sha256(schema: Any) -> str:
    """A digest of what the schema says about each feature (not its description), with
    numbers as floats, so that ``lower=0`` and ``lower=0.0`` read alike."""
    specs = [
        {
            f.name: _plain(getattr(spec, f.name), floats=True)
            for f in dataclasses.fields(spec)
            if f.name != "description"
            and not (f.name in _LATER_FIELDS and getattr(spec, f.name) == _LATER_FIELDS[f.name])
        }
        for spec in schema.features
    ]
    text = json.dumps({"features": specs, "target": schema.target}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _rules_text(constraints: Constraints | None) -> str:
    """One applicant's rules as text, the same for the same rules in any order; numbers as
    floats, since a bound computed from a row reads 35 or 35.0 as the frame's dtypes go."""
    rules = None if constraints is None else _constraints(constraints, floats=True)
    return json.dumps(rules, sort_keys=True)


def _constraints(constraints: Constraints, *, floats: bool = False) -> dict[str, Any]:
    """The rules as JSON holds them, in any order given (numbers as floats with ``floats``)."""
    fields = {f.name: getattr(constraints, f.name) for f in dataclasses.fields(constraints)}
    fields["immutable"] = sorted(constraints.immutable)  # the same rules in any order
    fields["mutable"] = sorted(constraints.mutable)
    fields["transitions"] = {  # a whitelist is a set of categories
        name: None if allowed is None else {c: sorted(to) for c, to in allowed.items()}
        for name, allowed in constraints.transitions.items()
    }
    if not constraints.transition_costs:  # added later (session 44): older digests still match
        del fields["transition_costs"]
    return {name: _plain(value, floats=floats) for name, value in fields.items()}


def _plain(value: Any, *, floats: bool = False) -> Any:
    """``value`` for JSON: mappings sorted by key, sequences as lists, numpy scalars as
    Python's (numbers as floats with ``floats``), anything else as its repr."""
    if isinstance(value, Mapping):
        return {
            str(k): _plain(v, floats=floats)
            for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))
        }
    if isinstance(value, Sequence | np.ndarray) and not isinstance(value, str):
        return [_plain(v, floats=floats) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        return float(value) if floats else value
    return repr(value)


def _name(function: Any) -> str:
    return str(getattr(function, "__qualname__", type(function).__name__))
