"""Exact minimum-cost recourse for linear and logistic models, as a MILP (HiGHS).

For a model whose log-odds are additive over features, ``logit(x) = b + sum_j g_j(x_j)`` with
``g_j`` affine for numeric features (a logistic regression behind scalers, ordinal codes and
one-hot encoders), the cheapest action that gets an applicant approved solves a small
mixed-integer linear program (Ustun, Spangher & Liu, 2019, "Actionable recourse in linear
classification", FAT*):

    minimise    sum_j  w_j / s_j * t_j  +  sum_{j,c} w_{jc} * b_{jc}
    subject to  L0 + sum_j |a_j| t_j + sum_{j,c} gain_{jc} b_{jc} >= logit(threshold)
                t_j in [tmin_j u_j, tmax_j u_j] (integer for integer features), u_j binary
                sum_c b_{jc} <= 1, b binary                       (one new category per feature)
                sum_j u_j + sum_{j,c} b_{jc} <= max_changes
                sum_{j in S} (changed_j) <= |S| - 1   for every earlier solution's feature set S

``t_j`` is the move of numeric feature ``j`` in the direction that raises the log-odds (the other
direction can never help a linear model), ``b_{jc}`` switches categorical feature ``j`` to an
allowed category ``c`` that raises them. The last constraint (a "no-good cut") makes each next
solution use a different feature set, and no superset of an earlier one, so the k solutions are
diverse; each is the exact minimum under the cuts before it. Each is also minimal: were a change
redundant, dropping it would give a cheaper feasible solution. When even the best allowed action
(the top ``max_changes`` per-feature gains) stays below the threshold, the problem is infeasible;
the returned certificate gives that highest reachable probability and the constraints that bind.

The model's log-odds are read by probing it (``decision_function``) one feature at a time, and
the additivity is verified on training rows to 1e-6, so any additive model works whatever its
encoder; a non-additive model is refused with a clear error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from cfx.errors import counted
from cfx.recourse.model import ModelView
from cfx.recourse.proposal import Evaluate, Proposal
from cfx.recourse.space import ActionSpace, Scales

_EPS = 1e-7  # log-odds margin above the threshold (the model is checked again afterwards)


@dataclass(frozen=True)
class AdditiveLogit:
    """``logit(z) = intercept + sum_j slope_j (z_j - ref_j)`` for numeric features plus
    ``table_j[z_j]`` for categorical ones (tables are 0 at the reference category)."""

    intercept: float
    ref: np.ndarray  # (d,)
    slope: np.ndarray  # (d,) per unit of numeric feature j; 0 for categories
    # per feature: (n_categories,) log-odds vs the reference; -inf where the model refuses one
    tables: tuple[np.ndarray, ...]

    def contributions(self, Z: np.ndarray) -> np.ndarray:
        """``(n, d)`` per-feature log-odds contributions relative to the reference row."""
        out = (Z - self.ref) * self.slope
        for j, table in enumerate(self.tables):
            if len(table):
                out[:, j] = table[Z[:, j].astype(np.int64)]
        return out

    def logit(self, Z: np.ndarray) -> np.ndarray:
        return self.intercept + self.contributions(Z).sum(axis=1)

    @classmethod
    def read(cls, view: ModelView, Z_train: np.ndarray, scales: Scales) -> AdditiveLogit:
        """Probe ``view`` one feature at a time around a training row; verify on the rest."""
        codec = view.codec
        ref = Z_train[0].copy()
        probes, owners = [], []
        for j in range(codec.d):
            if codec.numeric[j]:
                values = np.array([scales.lower[j], scales.upper[j]])
                if values[1] == values[0]:
                    values[1] += 1.0
            else:  # the categories the model takes (refused ones: never proposed)
                values = np.arange(len(codec.lookup[j]), dtype=np.float64)
                values = values[~np.isin(values, list(view.refused[j]))]
            P = np.repeat(ref[None], len(values), axis=0)
            P[:, j] = values
            probes.append(P)
            owners.append(values)
        L = view.logit(np.concatenate([ref[None], *probes]))
        intercept, L = float(L[0]), L[1:]
        slope = np.zeros(codec.d)
        tables: list[np.ndarray] = []
        start = 0
        for j, values in enumerate(owners):
            block = L[start : start + len(values)] - intercept
            start += len(values)
            if codec.numeric[j]:
                slope[j] = (block[1] - block[0]) / (values[1] - values[0])
                tables.append(np.zeros(0))
            else:  # -inf for a refused category: no gain, never chosen
                table = np.full(len(codec.lookup[j]), -np.inf)
                table[values.astype(np.int64)] = block
                tables.append(table)
        additive = cls(intercept=intercept, ref=ref, slope=slope, tables=tuple(tables))
        sample = Z_train[:: max(1, len(Z_train) // 64)]
        error = np.abs(additive.logit(sample) - view.logit(sample)).max()
        if not error <= 1e-6 * (1.0 + np.abs(intercept)):
            raise ValueError(
                "`method='milp'` needs a model whose log-odds are additive over features with"
                " numeric features entering linearly (e.g. a logistic regression behind scalers"
                f" and one-hot encoders); this model is off by {error:.3g} log-odds on training"
                " rows. Use method='search' (any model) or 'tree' (gradient-boosted trees)."
            )
        return additive


@dataclass(frozen=True)
class _Options:
    """The MILP's columns for one applicant (beneficial moves only)."""

    feature: np.ndarray  # (v,) feature of each column
    kind: np.ndarray  # (v,) 0 = numeric move t, 1 = numeric switch u, 2 = category b
    value: np.ndarray  # (v,) category code (kind 2); nan otherwise
    gain: np.ndarray  # (v,) log-odds per unit (t) / per switch (b); 0 for u
    cost: np.ndarray  # (v,) action cost per unit (t) / per switch (b); 0 for u
    low: np.ndarray  # (v,) column bounds
    high: np.ndarray  # (v,)
    integer: np.ndarray  # (v,) bool
    sign: np.ndarray  # (d,) +1 / -1: direction that raises the log-odds (numeric features)

    def max_gain(self, d: int) -> np.ndarray:
        """``(d,)`` largest log-odds gain of each feature under the constraints."""
        best = np.zeros(d)
        per = np.where(self.kind == 0, self.gain * self.high, self.gain)
        np.maximum.at(best, self.feature, np.where(self.kind == 1, 0.0, per))
        return best


class LinearMILP:
    """Exact minimum-cost, diverse recourse for additive (linear/logistic) models (see module).

    Reference: Ustun, Spangher & Liu, "Actionable recourse in linear classification", FAT*
    2019.

    ``time_limit`` bounds each HiGHS solve in seconds (a solve stopped early is reported as not
    proven optimal, never as infeasible).
    """

    def __init__(
        self,
        view: ModelView,
        Z_train: np.ndarray,
        scales: Scales,
        *,
        threshold: float = 0.5,
        time_limit: float = 2.0,
    ) -> None:
        self.view = view
        self.threshold = threshold
        self.time_limit = time_limit
        self.additive = AdditiveLogit.read(view, Z_train, scales)
        self.scales = scales

    def options(self, space: ActionSpace) -> _Options:
        """The beneficial moves open to the applicant, one MILP column each."""
        rows: list[tuple[int, int, float, float, float, float, float, bool]] = []
        sign = np.zeros(space.d)
        base = self.additive.contributions(space.z0[None])[0]
        for j in np.flatnonzero(space.movable).tolist():
            w = space.weight[j]
            if space.numeric[j]:
                a = float(self.additive.slope[j])
                if abs(a) < 1e-12:
                    continue
                x0, lo, hi = space.z0[j], space.lo[j], space.hi[j]
                sign[j] = np.sign(a)
                # t = |new - x0| in the beneficial direction; allowed new values in [lo, hi]
                tmin, tmax = (lo - x0, hi - x0) if a > 0 else (x0 - hi, x0 - lo)
                tmin = max(tmin, 0.0)
                if tmax <= 0:
                    continue
                whole = bool(space.integer[j]) and float(x0).is_integer()
                tmin = max(tmin, 1.0) if whole else tmin
                if tmin > tmax:
                    continue
                rows.append(
                    (j, 0, np.nan, abs(a), float(w / space.scale[j]), 0.0, float(tmax), whole)
                )
                rows.append((j, 1, np.nan, 0.0, 0.0, float(tmin), 1.0, True))  # low holds tmin
            else:
                for c in space.targets[j]:
                    gain = self.additive.tables[j][c] - base[j]
                    if gain <= 1e-12:
                        continue
                    steps = space.steps[j][c]
                    rows.append((j, 2, float(c), float(gain), float(w * steps), 0.0, 1.0, True))
        if not rows:
            empty = np.zeros(0)
            return _Options(
                empty.astype(int), empty.astype(int), empty, empty, empty, empty, empty,
                empty.astype(bool), sign,
            )  # fmt: skip
        f, kind, value, gain, cost, low, high, integer = (
            np.array(c) for c in zip(*rows, strict=True)
        )
        return _Options(f, kind, value, gain, cost, low, high, integer.astype(bool), sign)

    def propose(self, space: ActionSpace, *, k: int, evaluate: Evaluate) -> Proposal:
        opts = self.options(space)
        L0 = float(self.additive.logit(space.z0[None])[0])
        tau = float(np.log(self.threshold) - np.log1p(-self.threshold))
        gains = opts.max_gain(space.d)
        limit = space.max_changes or space.d
        reach = L0 + np.sort(gains)[::-1][:limit].sum()
        if reach < tau + _EPS and self.solve(space, opts, L0, tau + _EPS, [])[0] is None:
            return Proposal(
                actions=np.zeros((0, space.d)),
                infeasible=True,
                reason=self.explain_infeasible(space, opts, L0, reach),
                max_proba=_sigmoid(reach),
            )
        cuts: list[np.ndarray] = []
        found: list[np.ndarray] = []
        min_cost = None
        for _ in range(k):
            z, value = self.solve(space, opts, L0, tau + _EPS, cuts)
            if z is None:
                break
            if min_cost is None:
                min_cost = value
            found.append(z)
            cuts.append(space.changed(z[None])[0])
        return Proposal(
            actions=np.array(found).reshape(-1, space.d),
            evaluated=len(found),
            max_proba=_sigmoid(reach),
            min_cost=min_cost,
        )

    def solve(
        self,
        space: ActionSpace,
        opts: _Options,
        L0: float,
        tau: float,
        cuts: list[np.ndarray],
    ) -> tuple[np.ndarray | None, float]:
        """One HiGHS solve: the cheapest action reaching log-odds ``tau`` under ``cuts``."""
        v = len(opts.feature)
        if v == 0:
            return None, np.inf
        is_t, is_u, is_b = opts.kind == 0, opts.kind == 1, opts.kind == 2
        rows, lower, upper = [], [], []
        rows.append(opts.gain)  # validity: L0 + gains >= tau
        lower.append(tau - L0)
        upper.append(np.inf)
        changed = np.zeros((space.d, v))  # changed_j as a sum of columns (u or b's)
        changed[opts.feature[is_u], np.flatnonzero(is_u)] = 1.0
        changed[opts.feature[is_b], np.flatnonzero(is_b)] = 1.0
        for j in np.unique(opts.feature):
            t_col = np.flatnonzero(is_t & (opts.feature == j))
            u_col = np.flatnonzero(is_u & (opts.feature == j))
            if len(t_col):  # tmin u <= t <= tmax u
                row = np.zeros(v)
                row[t_col], row[u_col] = 1.0, -opts.high[t_col]
                rows.append(row)
                lower.append(-np.inf)
                upper.append(0.0)
                row = np.zeros(v)
                row[t_col], row[u_col] = 1.0, -opts.low[u_col]
                rows.append(row)
                lower.append(0.0)
                upper.append(np.inf)
            else:  # at most one new category
                rows.append(changed[j])
                lower.append(0.0)
                upper.append(1.0)
        if space.max_changes is not None:
            rows.append(changed.sum(axis=0))
            lower.append(0.0)
            upper.append(float(space.max_changes))
        for cut in cuts:
            rows.append(changed[cut].sum(axis=0))
            lower.append(-np.inf)
            upper.append(float(cut.sum() - 1))
        col_low = np.where(is_u, 0.0, 0.0)
        col_high = np.where(is_t, opts.high, 1.0)
        result = milp(
            c=opts.cost,
            integrality=opts.integer.astype(np.int64),
            bounds=Bounds(col_low, col_high),
            constraints=LinearConstraint(np.array(rows), np.array(lower), np.array(upper)),
            options={"time_limit": self.time_limit, "mip_rel_gap": 1e-9},
        )
        if result.x is None or result.status not in (0, 1):
            return None, np.inf
        x = result.x
        z = space.z0.copy()
        for col in np.flatnonzero(is_t).tolist():
            j = opts.feature[col]
            step = round(x[col]) if opts.integer[col] else x[col]
            z[j] = space.z0[j] + opts.sign[j] * step
        for col in np.flatnonzero(is_b & (x > 0.5)).tolist():
            z[opts.feature[col]] = opts.value[col]
        return z, float(result.fun)

    def explain_infeasible(
        self, space: ActionSpace, opts: _Options, L0: float, reach: float
    ) -> str:
        """Why no action works: the highest reachable probability and what holds it back."""
        relaxed = _relaxed_gain(self.additive, space, self.scales)
        gains = opts.max_gain(space.d)
        held = relaxed - gains  # log-odds each feature's constraints withhold
        limit = space.max_changes or space.d
        names = space.schema.names
        parts = []
        for j in np.argsort(-held)[:3]:
            if held[j] <= 1e-9:
                break
            spec = space.schema.features[j]
            if not spec.mutable:
                why = "is immutable"
            elif spec.kind == "categorical":
                why = "may only make the allowed transitions"
            elif spec.kind == "numeric" and spec.max_shift is not None:  # the cap, with its way
                way = "move" if spec.direction == "any" else f"only {spec.direction}, by"
                why = (
                    f"may {way} at most {spec.max_shift:g} from {space.z0[j]:g} (within "
                    f"[{space.lo[j]:g}, {space.hi[j]:g}])"
                )
            elif spec.direction != "any" and (
                not space.numeric[j]  # an ordinal feature's codes
                or (spec.direction == "increase") != (self.additive.slope[j] > 0)
            ):  # the way that would help is ruled out (else its bounds hold it back)
                why = f"may only {spec.direction}"
            else:
                why = f"must stay in [{space.lo[j]:g}, {space.hi[j]:g}]"
            lifted = gains.copy()
            lifted[j] = relaxed[j]
            could = _sigmoid(L0 + np.sort(lifted)[::-1][:limit].sum())
            parts.append(f"`{names[j]}` {why} (lifting that alone: up to p = {could:.3f})")
        n_helpful = int((gains > 1e-12).sum())
        if space.max_changes is not None and n_helpful > space.max_changes:
            everything = _sigmoid(L0 + gains.sum())
            parts.append(
                f"at most {counted(space.max_changes, 'change')} (changing all "
                f"{n_helpful} features that could raise it: p = {everything:.3f})"
            )
        text = (
            f"no allowed action reaches P(approved) = {self.threshold:g}: the highest approval"
            f" probability reachable under these constraints is {_sigmoid(reach):.3f}"
            f" (now {_sigmoid(L0):.3f}); the MILP is infeasible."
        )
        if parts:
            text += " What holds it back most: " + "; ".join(parts) + "."
        return text


def _relaxed_gain(additive: AdditiveLogit, space: ActionSpace, scales: Scales) -> np.ndarray:
    """``(d,)`` largest log-odds gain per feature if it were free (range of the data only)."""
    base = additive.contributions(space.z0[None])[0]
    out = np.zeros(space.d)
    for j in range(space.d):
        if space.numeric[j]:
            a = additive.slope[j]
            best = scales.upper[j] if a > 0 else scales.lower[j]
            out[j] = max(0.0, a * (best - space.z0[j]))
        else:
            out[j] = max(0.0, float(additive.tables[j].max() - base[j]))
    return out


def _sigmoid(logit: float) -> float:
    return float(1.0 / (1.0 + np.exp(-logit)))
