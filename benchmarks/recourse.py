"""Loan recourse side by side: cfx's methods and DiCE (random, genetic, kdtree) on German Credit.

    python benchmarks/recourse.py                 # all denied test applicants (>= 50 per model)
    python benchmarks/recourse.py --n 3           # smoke test
    python benchmarks/recourse.py --models gbm --methods cfx dice-random

Same models (``load_credit_model``: logistic, gbm, mlp), same denied applicants (the rows of
``german_split()``'s test part that each model denies), same immutable set (the schema's:
credit history, personal status and sex, dependants, foreign worker), k = 3 counterfactuals,
threshold 0.5, one applicant per call, one thread. ``cfx`` is ``method="auto"`` (milp for the
logistic model, tree for the GBM, search for the MLP), ``cfx-search`` the model-agnostic search on
all three; DiCE runs through cfx's adapter, which passes DiCE the movable features and per-
applicant ranges that encode the direction rules, and returns DiCE's output untouched. Each
method gets one untimed warm-up call before the timed applicants.

Every metric is recomputed here from the counterfactual rows and the model, independently of
what the methods report about themselves:

* time per applicant: median, p90, p99 (wall clock around ``explain``);
* coverage: share of applicants with >= 1 valid counterfactual; validity: share of returned
  counterfactuals the model approves (P >= 0.5);
* cost: L1 distance in MADs over numeric features (MAD of the training rows; 1 where it is 0)
  plus the number of changed categorical and ordinal features;
* sparsity: changed features per counterfactual; redundancy: changed features whose undoing
  alone keeps the counterfactual approved (mean per counterfactual, and share with any);
* yNN (k = 5): share of the 5 nearest training applicants, in the model's encoded input space,
  that the model approves (Pawelczyk et al., 2021);
* diversity: mean pairwise Jaccard distance between the changed-feature sets of an applicant's
  counterfactuals, and mean pairwise cost distance (same units as cost);
* constraint violations: counterfactuals that change an immutable feature, move against a
  direction rule, leave a schema range (or move further than its ``max_shift``), break an
  integer step or a categorical transition.

Writes ``benchmarks/results/recourse.json`` and ``recourse.md`` (a Markdown table) and prints the
table plus the issue's bars for cfx.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd
from _provenance import provenance
from sklearn.neighbors import NearestNeighbors

from cfx.data.credit import load_german
from cfx.data.schema import FeatureSchema
from cfx.recourse import Recourse
from cfx.zoo import german_split, load_credit_model

MODELS = ("logistic", "gbm", "mlp")
METHODS = ("cfx", "cfx-search", "dice-random", "dice-genetic", "dice-kdtree")
THRESHOLD = 0.5
K_NEIGHBOURS = 5
RESULTS = Path(__file__).resolve().parent / "results"


# ------------------------------------------------------------------------------------------------
# metrics (independent of cfx's own bookkeeping)


def mad_scales(X: pd.DataFrame, schema: FeatureSchema) -> dict[str, float]:
    out = {}
    for name in schema.numeric:
        col = X[name].to_numpy(dtype=float)
        mad = float(np.median(np.abs(col - np.median(col))))
        out[name] = mad if mad > 0 else 1.0
    return out


def changed_features(x: pd.Series, cf: pd.Series, schema: FeatureSchema) -> list[str]:
    out = []
    for spec in schema.features:
        a, b = x[spec.name], cf[spec.name]
        if spec.kind == "numeric":
            if abs(float(a) - float(b)) > 1e-9:
                out.append(spec.name)
        elif str(a) != str(b):
            out.append(spec.name)
    return out


def cost(x: pd.Series, cf: pd.Series, schema: FeatureSchema, mad: dict[str, float]) -> float:
    total = 0.0
    for name in changed_features(x, cf, schema):
        if schema[name].kind == "numeric":
            total += abs(float(cf[name]) - float(x[name])) / mad[name]
        else:
            total += 1.0
    return total


def violations(x: pd.Series, cf: pd.Series, schema: FeatureSchema) -> list[str]:
    out = []
    for name in changed_features(x, cf, schema):
        spec = schema[name]
        if not spec.mutable:
            out.append("immutable")
            continue
        if spec.kind == "numeric":
            a, b = float(x[name]), float(cf[name])
            if (spec.direction == "increase" and b < a) or (spec.direction == "decrease" and b > a):
                out.append("direction")
            if (spec.lower is not None and b < spec.lower) or (
                spec.upper is not None and b > spec.upper
            ):
                out.append("range")
            if spec.max_shift is not None and abs(b - a) > spec.max_shift + 1e-9:
                out.append("range")  # further from the applicant's value than allowed
            if spec.integer and b != round(b):
                out.append("integer")
        elif str(cf[name]) not in spec.allowed_targets(str(x[name])):
            out.append("direction" if spec.kind == "ordinal" else "transition")
    return out


def as_model_frame(rows: pd.DataFrame, like: pd.DataFrame) -> pd.DataFrame:
    """Counterfactual rows with the training frame's dtypes (DiCE returns strings)."""
    out = rows[list(like.columns)].copy()
    for name in like.columns:
        out[name] = out[name].astype(like[name].dtype)
    return out


class Scorer:
    """Recomputes every per-counterfactual metric for one model."""

    def __init__(self, model: Any, X_train: pd.DataFrame, schema: FeatureSchema) -> None:
        self.model = model
        self.X_train = X_train
        self.schema = schema
        self.mad = mad_scales(X_train, schema)
        self.encode = model[:-1].transform
        approved = model.predict_proba(X_train)[:, 1] >= THRESHOLD
        self.approved = approved
        self.nn = NearestNeighbors(n_neighbors=K_NEIGHBOURS).fit(self.encode(X_train))

    def proba(self, rows: pd.DataFrame) -> np.ndarray:
        return self.model.predict_proba(as_model_frame(rows, self.X_train))[:, 1]

    def score(self, x: pd.Series, cfs: pd.DataFrame) -> list[dict[str, Any]]:
        if len(cfs) == 0:
            return []
        cfs = as_model_frame(cfs, self.X_train)
        p = self.proba(cfs)
        _, idx = self.nn.kneighbors(self.encode(cfs))
        ynn = self.approved[idx].mean(axis=1)
        out = []
        for i in range(len(cfs)):
            cf = cfs.iloc[i]
            changed = changed_features(x, cf, self.schema)
            redundant = 0
            if p[i] >= THRESHOLD and len(changed) >= 2:
                reverts = pd.concat([cfs.iloc[[i]]] * len(changed), ignore_index=True)
                for r, name in enumerate(changed):
                    reverts.loc[r, name] = x[name]
                redundant = int((self.proba(reverts) >= THRESHOLD).sum())
            out.append(
                {
                    "valid": bool(p[i] >= THRESHOLD),
                    "cost": cost(x, cf, self.schema, self.mad),
                    "changed": changed,
                    "redundant": redundant,
                    "ynn": float(ynn[i]),
                    "violations": violations(x, cf, self.schema),
                }
            )
        return out


def diversity(x: pd.Series, cfs: pd.DataFrame, scorer: Scorer, scored: list[dict]) -> tuple:
    if len(scored) < 2:
        return None, None
    jac, dist = [], []
    for i in range(len(scored)):
        for j in range(i + 1, len(scored)):
            a, b = set(scored[i]["changed"]), set(scored[j]["changed"])
            jac.append(1.0 - len(a & b) / max(1, len(a | b)))
            dist.append(cost(cfs.iloc[i], cfs.iloc[j], scorer.schema, scorer.mad))
    return float(np.mean(jac)), float(np.mean(dist))


# ------------------------------------------------------------------------------------------------
# runs


def run(
    model_name: str, method: str, n: int, k: int, seed: int, support: float | None
) -> dict[str, Any]:
    data = load_german()
    train, test = german_split(seed=seed)
    X_train = data.X.iloc[train]
    model = load_credit_model(model_name, seed=seed)
    p_test = model.predict_proba(data.X.iloc[test])[:, 1]
    denied = data.X.iloc[test][p_test < THRESHOLD]
    if n > 0:
        denied = denied.iloc[:n]
    cfx_method = {"cfx": "auto", "cfx-search": "search"}.get(method, method)
    t0 = time.perf_counter()
    extra = {} if support is None else {"support": support}
    rec = Recourse(model, data.schema, k=k, method=cfx_method, random_state=seed, **extra)  # type: ignore[arg-type]
    rec.fit(X_train)
    fit_seconds = time.perf_counter() - t0
    scorer = Scorer(model, X_train, data.schema)
    rec.explain(denied.iloc[[0]])  # untimed warm-up (imports, caches), for every method alike
    times, per_cf, per_applicant = [], [], []
    statuses: dict[str, int] = {}
    for i in range(len(denied)):
        x = denied.iloc[i]
        t0 = time.perf_counter()
        res = rec.explain(denied.iloc[[i]])[0]
        times.append(time.perf_counter() - t0)
        statuses[res.status] = statuses.get(res.status, 0) + 1
        cfs = pd.DataFrame([dict(cf.values) for cf in res.counterfactuals])
        scored = scorer.score(x, cfs)
        per_cf.extend(scored)
        jac, dist = diversity(x, cfs, scorer, scored)
        per_applicant.append(
            {
                "covered": any(s["valid"] for s in scored),
                "certified_infeasible": res.status == "infeasible",
                "n_cfs": len(scored),
                "diversity_sets": jac,
                "diversity_cost": dist,
            }
        )
    return summarise(model_name, method, rec, fit_seconds, times, per_cf, per_applicant, statuses)


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def summarise(
    model_name: str,
    method: str,
    rec: Recourse,
    fit_seconds: float,
    times: list[float],
    per_cf: list[dict],
    per_applicant: list[dict],
    statuses: dict[str, int],
) -> dict[str, Any]:
    ms = np.array(times) * 1000.0
    valid = [c for c in per_cf if c["valid"]]
    kinds: dict[str, int] = {}
    for c in per_cf:
        for v in set(c["violations"]):
            kinds[v] = kinds.get(v, 0) + 1
    n_app = len(per_applicant)
    covered = sum(a["covered"] for a in per_applicant)
    certified = sum(a["certified_infeasible"] and not a["covered"] for a in per_applicant)
    return {
        "model": model_name,
        "method": method,
        "resolved_method": getattr(rec, "method_", method),
        "applicants": n_app,
        "fit_s": round(fit_seconds, 3),
        "time_ms_median": float(np.median(ms)),
        "time_ms_p90": float(np.percentile(ms, 90)),
        "time_ms_p99": float(np.percentile(ms, 99)),
        "coverage": covered / n_app,
        "certified_infeasible": certified,
        "statuses": statuses,
        "cfs": len(per_cf),
        "cfs_per_applicant": len(per_cf) / n_app,
        "validity": _mean([c["valid"] for c in per_cf]),
        "cost_mean": _mean([c["cost"] for c in valid]),
        "cost_median": float(np.median([c["cost"] for c in valid])) if valid else None,
        "changed_mean": _mean([len(c["changed"]) for c in valid]),
        "changed_median": float(np.median([len(c["changed"]) for c in valid])) if valid else None,
        "redundant_mean": _mean([c["redundant"] for c in valid]),
        "redundant_share": _mean([c["redundant"] > 0 for c in valid]),
        "ynn": _mean([c["ynn"] for c in valid]),
        "diversity_sets": _mean([a["diversity_sets"] for a in per_applicant]),
        "diversity_cost": _mean([a["diversity_cost"] for a in per_applicant]),
        "violating_cfs": sum(bool(c["violations"]) for c in per_cf),
        "violations_by_kind": kinds,
    }


# ------------------------------------------------------------------------------------------------
# report


COLUMNS = [
    ("model", "model", "{}"),
    ("method", "method", "{}"),
    ("applicants", "n", "{}"),
    ("time_ms_median", "median ms", "{:.1f}"),
    ("time_ms_p90", "p90 ms", "{:.1f}"),
    ("time_ms_p99", "p99 ms", "{:.1f}"),
    ("coverage", "coverage", "{:.1%}"),
    ("certified_infeasible", "certified infeasible", "{}"),
    ("validity", "validity", "{:.1%}"),
    ("cost_mean", "cost (L1/MAD+cat)", "{:.2f}"),
    ("changed_median", "changed (median)", "{:.1f}"),
    ("changed_mean", "changed (mean)", "{:.2f}"),
    ("redundant_mean", "redundant/cf", "{:.2f}"),
    ("ynn", "yNN", "{:.3f}"),
    ("diversity_sets", "diversity (sets)", "{:.2f}"),
    ("violating_cfs", "violating cfs", "{}"),
]


def markdown(rows: list[dict[str, Any]]) -> str:
    head = "| " + " | ".join(title for _, title, _ in COLUMNS) + " |"
    rule = "|" + "|".join("---" for _ in COLUMNS) + "|"
    lines = [head, rule]
    for row in rows:
        cells = []
        for key, _, fmt in COLUMNS:
            value = row.get(key)
            cells.append("n/a" if value is None else fmt.format(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def bars(rows: list[dict[str, Any]]) -> list[str]:
    """The issue's bars for cfx (``method == "cfx"``), per model, against DiCE in the same run."""
    out = []
    by = {(r["model"], r["method"]): r for r in rows}
    for model in dict.fromkeys(r["model"] for r in rows):
        cfx = by.get((model, "cfx"))
        if cfx is None:
            continue
        checks = [
            ("coverage >= 99% (rest certified)", cfx["coverage"] >= 0.99
             or cfx["coverage"] * cfx["applicants"] + cfx["certified_infeasible"]
             >= cfx["applicants"]),
            ("0 constraint violations", cfx["violating_cfs"] == 0),
            ("median changed <= 2", (cfx["changed_median"] or 0) <= 2),
            ("redundancy 0", (cfx["redundant_mean"] or 0) == 0),
            ("yNN >= 0.85", (cfx["ynn"] or 0) >= 0.85),
            ("median <= 50 ms", cfx["time_ms_median"] <= 50),
            ("p99 <= 500 ms", cfx["time_ms_p99"] <= 500),
        ]  # fmt: skip
        rnd, gen = by.get((model, "dice-random")), by.get((model, "dice-genetic"))
        if rnd is not None:
            checks.append((
                "L1/MAD <= DiCE-random",
                (cfx["cost_mean"] or np.inf) <= (rnd["cost_mean"] or np.inf),
            ))  # fmt: skip
            checks.append((
                ">= 3x faster than DiCE-random",
                rnd["time_ms_median"] >= 3 * cfx["time_ms_median"],
            ))  # fmt: skip
        if gen is not None:
            checks.append((
                ">= 10x faster than DiCE-genetic",
                gen["time_ms_median"] >= 10 * cfx["time_ms_median"],
            ))  # fmt: skip
        for name, ok in checks:
            out.append(f"{model:9s} {'PASS' if ok else 'FAIL'}  {name}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=0, help="applicants per model (0 = all denied)")
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--support", type=float, default=None, help="cfx's data support")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    rows = []
    for model_name in args.models:
        for method in args.methods:
            t0 = time.perf_counter()
            row = run(model_name, method, args.n, args.k, args.seed, args.support)
            rows.append(row)
            print(
                f"{model_name:9s} {method:13s} {row['applicants']} applicants in"
                f" {time.perf_counter() - t0:.1f} s (median {row['time_ms_median']:.1f} ms)",
                flush=True,
            )
    table = markdown(rows)
    checks = bars(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {
        "command": (
            f"python benchmarks/recourse.py --n {args.n} --k {args.k} --seed {args.seed}"
            f" --models {' '.join(args.models)} --methods {' '.join(args.methods)}"
        ),
        "threads": os.environ.get("OMP_NUM_THREADS"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "k": args.k,
        "threshold": THRESHOLD,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "provenance": provenance(),
    }
    (args.out / "recourse.json").write_text(
        json.dumps({"meta": meta, "rows": rows, "bars": checks}, indent=2, default=str)
    )
    (args.out / "recourse.md").write_text(
        f"# Recourse benchmark\n\n`{meta['command']}` ({meta['date']})\n\n{table}\n\n"
        "Bars (cfx = method auto):\n\n```\n" + "\n".join(checks) + "\n```\n"
    )
    print()
    print(table)
    print()
    print("\n".join(checks))


if __name__ == "__main__":
    main()
