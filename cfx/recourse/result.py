"""Frozen results of ``Recourse.explain``: one :class:`RecourseResult` per applicant."""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
import pandas as pd

from cfx.reprs import short_repr

Status = Literal["approved", "recourse", "infeasible", "not_found"]
Value = float | int | str


@dataclass(frozen=True)
class Change:
    """One feature's change. ``action=False`` marks a causal consequence of other actions (it
    costs nothing itself)."""

    feature: str
    before: Value
    after: Value
    cost: float
    action: bool = True
    text: str = ""  # the change in plain words, e.g. "reduce the credit amount from 5,951 ..."


@dataclass(frozen=True)
class Counterfactual:
    """One way to get approved: what to change, what it costs, where it leads."""

    __repr__ = short_repr  # shapes and counts, not every field in full

    changes: tuple[Change, ...]  # actions first, then causal consequences
    values: Mapping[str, Value]  # the whole counterfactual applicant (read-only)
    cost: float  # action cost (interventions only)
    proba_before: float  # approval probability of the applicant
    proba_after: float  # approval probability of the counterfactual (from the model)
    plausibility: float  # share of the nearest training applicants the model approves (yNN)
    distance: float  # distance to the nearest approved training applicant (standardised)
    plan: str  # plain-language plan, e.g. "reduce ...; shorten ..."
    valid: bool = True  # proba_after >= threshold (always true for cfx's own methods)
    violations: tuple[str, ...] = ()  # constraints the action breaks (always empty for cfx's)

    def __post_init__(self) -> None:
        # read-only: a write into cf.values changed the stored result and every frame made
        # from it later (session 50 audit)
        if isinstance(self.values, Mapping):
            object.__setattr__(self, "values", MappingProxyType(dict(self.values)))

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickled (and deep-copied) with ``values`` as a plain dict: the read-only view
        cannot be pickled."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return (_counterfactual, ({**fields, "values": dict(self.values)},))

    @property
    def features(self) -> tuple[str, ...]:
        """The features acted on (causal consequences excluded)."""
        return tuple(c.feature for c in self.changes if c.action)

    @property
    def n_changes(self) -> int:
        """How many features are acted on (causal consequences not counted)."""
        return len(self.features)


def _counterfactual(fields: dict[str, Any]) -> Counterfactual:
    return Counterfactual(**fields)


@dataclass(frozen=True)
class RecourseResult:
    """Recourse for one applicant.

    ``status``: ``"approved"`` (already approved, nothing to do), ``"recourse"`` (at least one
    counterfactual), ``"infeasible"`` (an exact method *proved* that no allowed action gets the
    applicant approved; ``reason`` is the certificate: the highest reachable probability and the
    binding constraints) or ``"not_found"`` (a heuristic found nothing usable; not a proof:
    a DiCE method then still lists the plans it returned, each missing the probability or
    breaking a constraint, and ``plan`` recommends none).
    """

    __repr__ = short_repr  # shapes and counts, not every field in full

    index: Hashable  # the applicant's row label
    status: Status
    proba: float  # approval probability now
    # best first (cost plus the plausibility term; cheapest first with support=0; DiCE's as
    # DiCE returns them, usable ones first: they may repeat a feature set, miss the
    # probability or break a constraint, which `valid`, `violations` and `reason` say);
    # cfx's own have pairwise different feature sets
    counterfactuals: tuple[Counterfactual, ...]
    # why there is no recourse (or "already approved; nothing to change"); with plans: that
    # none reaches the data support, why fewer than k
    reason: str
    method: str  # the method that produced it ("milp", "tree", "search", "dice-random", ...)
    seconds: float  # wall time for this applicant
    min_cost: float | None = None  # proven minimum action cost (exact methods), data support aside
    max_proba: float | None = None  # highest approval probability reachable (exact) or seen

    @property
    def plan(self) -> str:
        """The first (recommended) counterfactual's plan, or the reason there is none (DiCE's
        plans that miss the probability or break a constraint are listed but not
        recommended)."""
        if self.counterfactuals and self.status == "recourse":
            return self.counterfactuals[0].plan
        if self.status == "approved":
            return "already approved; nothing to change"
        if self.status == "not_found":  # a heuristic's: not a proof that there is none
            return f"no plan found under these constraints: {self.reason}"
        return f"no recourse under these constraints: {self.reason}"

    def __len__(self) -> int:
        return len(self.counterfactuals)


def to_frame(results: Sequence[RecourseResult] | RecourseResult) -> pd.DataFrame:
    """One row per counterfactual (or per applicant without one), for CSV/JSON output.

    Columns: ``index``, ``status``, ``rank`` (1 = the recommended plan when ``status`` is
    ``"recourse"``; a DiCE ``"not_found"`` lists unusable plans from 1; 0 when there is none),
    ``proba``, ``proba_after``, ``cost``, ``n_changes``, ``changes`` (``feature: before ->
    after`` joined by ``; ``), ``plan``, ``plausibility``, ``distance``, ``valid`` (reaches the
    approval probability), ``violations`` (constraints it breaks, joined by ``; ``; only
    DiCE's plans can), ``reason``, ``method``, ``seconds``. One result alone is taken as a
    list of one.
    """
    if isinstance(results, RecourseResult):  # `(res,) = rec.explain(...)` then to_frame(res)
        results = [results]
    rows = []
    for res in results:
        if not isinstance(res, RecourseResult):
            raise TypeError(
                "`results` must be RecourseResults (what Recourse.explain returns), got a "
                f"{type(res).__name__} among them"
            )
        base = {
            "index": res.index,
            "status": res.status,
            "proba": res.proba,
            "reason": res.reason,
            "method": res.method,
            "seconds": res.seconds,
        }
        if not res.counterfactuals:
            rows.append({**base, "rank": 0, "plan": res.plan})
        for rank, cf in enumerate(res.counterfactuals, start=1):
            rows.append(
                {
                    **base,
                    "rank": rank,
                    "proba_after": cf.proba_after,
                    "cost": cf.cost,
                    "n_changes": cf.n_changes,
                    "changes": "; ".join(
                        f"{c.feature}: {_short(c.before)} -> {_short(c.after)}" for c in cf.changes
                    ),
                    "plan": cf.plan,
                    "plausibility": cf.plausibility,
                    "distance": cf.distance,
                    "valid": cf.valid,
                    "violations": "; ".join(cf.violations),
                }
            )
    columns = [
        "index", "status", "rank", "proba", "proba_after", "cost", "n_changes", "changes",
        "plan", "plausibility", "distance", "valid", "violations", "reason", "method",
        "seconds",
    ]  # fmt: skip
    frame = pd.DataFrame(rows, columns=columns)
    frame["n_changes"] = frame["n_changes"].astype("Int64")  # whole, blank without a plan
    frame["valid"] = frame["valid"].astype("boolean")  # blank without a plan
    return frame


PLAN_DECIMALS = 6
"""The most decimals a plan's numeric value is printed with, and so the finest step
``ActionSpace.readable`` rounds a change to (1e-6)."""


def exact_decimals(value: float, most: int = PLAN_DECIMALS) -> int | None:
    """The fewest decimals (at most ``most``) that write ``value`` exactly, up to float error
    (``7384.71 -> 2``, ``0.288 -> 3``); None when it needs more. cfx's own plans round their
    numeric changes to a cent or finer (``ActionSpace.readable``), so they print exactly."""
    for d in range(most + 1):
        # float error only: a few units in the last place of the value
        if abs(round(value, d) - value) <= 4 * float(np.spacing(abs(value))):
            return d
    return None


def _short(value: Value) -> str:
    """A value for the ``changes`` column: ``7384.71``, not ``7384.708463674906``: as many
    decimals as write it exactly (up to six), else two from 100 up and six significant digits
    below; never an exponent."""
    if not isinstance(value, float):
        return str(value)
    d = exact_decimals(value)
    if d is not None:
        return np.format_float_positional(value, precision=d, unique=False, trim="-")
    if abs(value) >= 100:
        return np.format_float_positional(value, precision=2, trim="-")
    return np.format_float_positional(value, precision=6, fractional=False, trim="-")
