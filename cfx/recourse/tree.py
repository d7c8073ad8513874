"""Exact minimum-cost recourse for gradient-boosted trees: enumeration, then a MILP over leaves.

A tree ensemble is piecewise constant: between two consecutive split thresholds of a feature
nothing changes, so the cheapest action only ever needs, per feature, the allowed value closest
to the applicant inside each interval between thresholds (for categories: each allowed
category). With one binary ``w_{jv}`` per such candidate value and one ``y_{tl} in [0, 1]`` per
reachable leaf, the ensemble's score is linear in ``y`` and the leaf an applicant lands in is
pinned down by the splits (Cui, Chen, He & Chen, 2015, "Optimal action extraction for random
forests and boosted trees", KDD; Kantchelian, Tygar & Joseph, 2016; Parmentier & Vidal, 2021,
"Optimal counterfactual explanations in tree ensembles", ICML):

    minimise    sum_{j,v} cost_{jv} w_{jv}
    subject to  sum_v w_{jv} <= 1                                  (x0 kept when all are 0)
                sum_l y_{tl} = 1                                   for every tree t
                sum_{l under left(n)} y_{tl}  <= [x goes left at n]    for every split n
                sum_{l under right(n)} y_{tl} <= [x goes right at n]
                init + rate * sum_{t,l} value_{tl} y_{tl} >= logit(threshold)
                sum w <= max_changes;  no-good cuts on earlier feature sets (diversity)

``[x goes left at n]`` is a sum of the ``w`` (and of ``1 - sum w`` when the applicant's own value
goes left). Splits on features that cannot change are resolved before the solve, so only leaves
the applicant can still reach enter the program. Guarantee: the optimum is the exact minimum-cost
action for the ensemble under the constraints (the value discretisation is lossless); an
infeasible program is a proof that no allowed action gets the applicant approved. A solve that
hits ``time_limit`` returns its best action without the optimality claim.

Solving that MILP takes HiGHS 0.1-0.3 s for the 100-tree credit model, too slow to run for
every applicant, so :meth:`TreeMILP.propose` first *enumerates*: every single change (one value
per cell) and pairs of changes in order of cost, skipping pairs that contain a valid single
change, until no unscored pair is cheaper than the best valid action (and a budget of pairs is
spent, for diversity). That is exact among actions changing at most two features, and exact
overall when ``max_changes <= 2`` or when even the three cheapest single moves together cost no
less (then ``min_cost`` is reported). Only when no action of at most two changes works does the
MILP run: exact for any number of changes, and its infeasibility is the certificate.

The trees split on encoded columns; :class:`~cfx.recourse.model.SeparableEncoding` maps each
column back to its feature (affine for numeric features, a table for categories), so the
pipeline's encoder can be any separable one (scalers, ordinal codes, one-hot).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_array

from cfx.recourse.model import ModelView, is_log_odds, split_pipeline
from cfx.recourse.proposal import Evaluate, Proposal
from cfx.recourse.space import ActionSpace, unique_rows

_EPS = 1e-7


@dataclass(frozen=True)
class _Tree:
    left: np.ndarray  # (nodes,) child index, -1 at leaves
    right: np.ndarray  # (nodes,)
    column: np.ndarray  # (nodes,) encoded column split on
    threshold: np.ndarray  # (nodes,) go left when encoded value <= threshold
    value: np.ndarray  # (nodes,) leaf value already multiplied by the learning rate


@dataclass(frozen=True)
class _Program:
    """The MILP for one applicant (variables: the w's, then the y's)."""

    cost: np.ndarray  # (n_var,)
    integrality: np.ndarray  # (n_var,)
    A: Any  # sparse (rows, n_var)
    lower: np.ndarray  # (rows,)
    upper: np.ndarray  # (rows,)
    score_row: np.ndarray  # (n_var,) score = constant + score_row @ x
    score_constant: float
    w_feature: np.ndarray  # (n_w,) feature of each w
    w_value: np.ndarray  # (n_w,) code of each w


class TreeMILP:
    """Exact minimum-cost, diverse recourse for scikit-learn gradient-boosted trees (see module).

    Reference: Cui, Chen, He & Chen, "Optimal action extraction for random forests and boosted
    trees", KDD 2015; Kantchelian, Tygar & Joseph, 2016; Parmentier & Vidal, "Optimal
    counterfactual explanations in tree ensembles", ICML 2021.

    ``model`` must be a pipeline (separable encoder + ``GradientBoostingClassifier``) or a bare
    ``GradientBoostingClassifier`` on numeric features. ``time_limit``: seconds per HiGHS solve.
    """

    def __init__(
        self,
        view: ModelView,
        Z_train: np.ndarray,
        *,
        threshold: float = 0.5,
        time_limit: float = 0.5,
    ) -> None:
        from sklearn.ensemble import GradientBoostingClassifier

        encoder, final = split_pipeline(view.model)
        if not isinstance(final, GradientBoostingClassifier) or len(final.classes_) != 2:
            raise TypeError(
                "`method='tree'` needs a binary scikit-learn GradientBoostingClassifier (alone or"
                f" ending a pipeline), got {type(final).__name__}; use method='search'"
            )
        if encoder is not None and view.encoding is None:
            raise ValueError(
                "`method='tree'` needs a separable encoder (scalers, ordinal codes, one-hot:"
                " each encoded column depends on one feature); use method='search'"
            )
        if encoder is None and not view.codec.numeric.all():
            raise ValueError(
                "`method='tree'` on a bare GradientBoostingClassifier needs numeric features"
                " only; put the encoder in a pipeline or use method='search'"
            )
        self.view = view
        self.threshold = threshold
        self.time_limit = time_limit
        self.final = final
        self.sign = 1.0 if view.positive == 1 else -1.0
        rate = float(final.learning_rate)
        self.trees = []
        for est in final.estimators_[:, 0]:
            t = est.tree_
            self.trees.append(
                _Tree(
                    left=t.children_left,
                    right=t.children_right,
                    column=t.feature,
                    threshold=t.threshold,
                    value=self.sign * rate * t.value[:, 0, 0],
                )
            )
        sample = Z_train[:: max(1, len(Z_train) // 64)]
        with warnings.catch_warnings():  # an array for a model fitted on a frame's names
            warnings.simplefilter("ignore")
            scores = self.sign * np.asarray(
                final.decision_function(self.encode(sample)), np.float64
            ).reshape(-1)
        if not is_log_odds(scores, view.proba(sample)):
            raise ValueError(  # loss="exponential": p = sigmoid(2 F); the bar would sit on F
                "`method='tree'` needs a gradient-boosting classifier whose predict_proba is the "
                "logistic of its decision_function (loss='log_loss'); this one's is not (e.g. "
                "loss='exponential'). Use method='search'."
            )
        E = self.encode(Z_train[:1])
        raw = float(scores[0])  # the sample's first row is Z_train's: its score, not again
        self.offset = raw - sum(float(tr.value[_leaf(tr, E[0])]) for tr in self.trees)
        width = E.shape[1]
        self.owner = np.full(width, -1)
        if view.encoding is not None:
            for j, cols in enumerate(view.encoding.columns):
                self.owner[cols] = j
        else:  # a bare model's columns: the schema's features in its fitted order
            self.owner[:] = view.columns
        self.cuts = [self.splits_on(j) for j in range(view.codec.d)]

    def encode(self, Z: np.ndarray) -> np.ndarray:
        if self.view.encoding is None:  # a bare model: its columns in its fitted order
            return Z[:, self.view.columns]
        return self.view.encoding.encode(Z)

    def score(self, Z: np.ndarray) -> np.ndarray:
        """``(n,)`` log-odds of approval computed from the trees (for checks)."""
        E = self.encode(Z)
        return self.offset + np.array(
            [sum(float(tr.value[_leaf(tr, e)]) for tr in self.trees) for e in E]
        )

    def candidates(self, space: ActionSpace) -> list[np.ndarray]:
        """Per feature, the applicant's value first, then each allowed category, or for a
        numeric feature one value per distinct pattern of split outcomes: the allowed value
        closest to the applicant among those that send it the same way at every split."""
        out = [np.array([space.z0[j]]) for j in range(space.d)]
        probes: list[tuple[int, np.ndarray]] = []
        for j in np.flatnonzero(space.movable).tolist():
            if not space.numeric[j]:
                out[j] = np.array([space.z0[j], *space.targets[j]], dtype=np.float64)
                continue
            x0, lo, hi = space.z0[j], space.lo[j], space.hi[j]
            cuts = self.cuts[j][0]
            if space.integer[j]:
                near = np.concatenate([np.floor(cuts) + o for o in (-1.0, 0.0, 1.0, 2.0)])
            else:
                delta = 1e-6 * np.maximum(1.0, np.abs(cuts))
                near = np.concatenate([cuts - delta, cuts + delta])
            vals = np.unique(np.clip(np.concatenate([[lo, hi], near]), lo, hi))
            vals = vals[np.abs(vals - x0) > 1e-9]
            if len(vals):
                probes.append((int(j), vals))
        if not probes:
            return out
        # one encoding for all probes: the applicant, then each feature's values in turn
        rows = np.repeat(space.z0[None], 1 + sum(len(v) for _, v in probes), axis=0)
        start = 1
        for j, vals in probes:
            rows[start : start + len(vals), j] = vals
            start += len(vals)
        E = self.encode(rows)  # (1 + n, m)
        start = 1
        for j, vals in probes:
            _, split_cols, split_thr = self.cuts[j]
            block = E[np.r_[0, start : start + len(vals)]][:, split_cols]
            start += len(vals)
            _, group = unique_rows(block <= split_thr)  # (1 + n,) pattern id
            dist = np.abs(vals - space.z0[j])
            order = np.lexsort((dist, group[1:]))  # by pattern, then closest first
            first = order[np.r_[True, group[1:][order][1:] != group[1:][order][:-1]]]
            keep = first[group[1:][first] != group[0]]  # the applicant's own pattern is useless
            out[j] = np.array([space.z0[j], *np.sort(vals[keep])])
        return out

    def splits_on(self, j: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(cut points in feature units, encoded columns, thresholds)`` of the splits on
        numeric feature ``j`` (cut points sorted and unique; columns/thresholds per split)."""
        cols = np.flatnonzero(self.owner == j)
        split_cols, split_thr, cuts = [], [], []
        for tr in self.trees:
            on = np.isin(tr.column, cols) & (tr.left >= 0)
            for col, theta in zip(tr.column[on], tr.threshold[on], strict=True):
                split_cols.append(int(col))
                split_thr.append(float(theta))
                if self.view.encoding is None:
                    cuts.append(theta)
                    continue
                k = int(np.flatnonzero(self.view.encoding.columns[j] == col)[0])
                slope = self.view.encoding.slopes[j][k]
                if slope != 0:
                    cuts.append((theta - self.view.encoding.base[col]) / slope)
        return (
            np.unique(np.array(cuts, dtype=np.float64)),
            np.array(split_cols, dtype=np.int64),
            np.array(split_thr, dtype=np.float64),
        )

    def program(self, space: ActionSpace, values: list[np.ndarray]) -> _Program:
        """Build the MILP for one applicant (see module)."""
        d = space.d
        w_feature = np.concatenate([np.full(len(v) - 1, j) for j, v in enumerate(values)])
        w_value = np.concatenate([v[1:] for v in values])
        n_w = len(w_feature)
        w_start = np.concatenate([[0], np.cumsum([len(v) - 1 for v in values])])
        # encoded rows of every candidate: the applicant with one feature at one value
        Zc = np.repeat(space.z0[None], n_w + 1, axis=0)
        Zc[np.arange(1, n_w + 1), w_feature] = w_value
        Ec = self.encode(Zc)  # (1 + n_w, m); row 0 is the applicant
        costs = space.feature_costs(Zc[1:])[np.arange(n_w), w_feature]

        rows: list[int] = []
        cols: list[int] = []
        data: list[float] = []
        lower: list[float] = []
        upper: list[float] = []

        def add(entries: dict[int, float], low: float, high: float) -> None:
            r = len(lower)
            for c, a in entries.items():
                if a != 0.0:
                    rows.append(r)
                    cols.append(c)
                    data.append(a)
            lower.append(low)
            upper.append(high)

        for j in range(d):
            if len(values[j]) > 1:
                add({int(w_start[j]) + i: 1.0 for i in range(len(values[j]) - 1)}, 0.0, 1.0)
        constant = self.offset
        score: dict[int, float] = {}
        n_var = n_w
        for tr in self.trees:
            leaves, splits = self._reachable(tr, Ec, space, w_feature, w_start, values)
            if len(leaves) == 1:
                constant += float(tr.value[leaves[0]])
                continue
            y = {leaf: n_var + i for i, leaf in enumerate(leaves)}
            n_var += len(leaves)
            add(dict.fromkeys(y.values(), 1.0), 1.0, 1.0)
            for leaf, var in y.items():
                score[var] = float(tr.value[leaf])
            for left_leaves, right_leaves, goes_left, own_left, j in splits:
                # sum y(left) <= sum_{v left} w_v + own_left * (1 - sum_v w_v), same for right
                ws = range(int(w_start[j]), int(w_start[j + 1]))
                for side, own, go in (
                    (left_leaves, own_left, goes_left),
                    (right_leaves, not own_left, ~goes_left),
                ):
                    entries = {y[leaf]: 1.0 for leaf in side if leaf in y}
                    for i, wv in enumerate(ws):
                        entries[wv] = entries.get(wv, 0.0) - float(go[i]) + float(own)
                    add(entries, -np.inf, float(own))
        score_row = np.zeros(n_var)
        for var, v in score.items():
            score_row[var] = v
        cost = np.concatenate([costs, np.zeros(n_var - n_w)])
        integrality = np.concatenate([np.ones(n_w), np.zeros(n_var - n_w)])
        A = coo_array((data, (rows, cols)), shape=(len(lower), n_var)).tocsr()
        return _Program(
            cost=cost,
            integrality=integrality,
            A=A,
            lower=np.array(lower),
            upper=np.array(upper),
            score_row=score_row,
            score_constant=constant,
            w_feature=w_feature,
            w_value=w_value,
        )

    def _reachable(
        self,
        tr: _Tree,
        Ec: np.ndarray,
        space: ActionSpace,
        w_feature: np.ndarray,
        w_start: np.ndarray,
        values: list[np.ndarray],
    ) -> tuple[list[int], list[tuple[list[int], list[int], np.ndarray, bool, int]]]:
        """Leaves the applicant can still reach, and the open splits above them."""
        leaves: list[int] = []
        splits: list[tuple[list[int], list[int], np.ndarray, bool, int]] = []

        def walk(node: int) -> list[int]:
            if tr.left[node] < 0:
                leaves.append(node)
                return [node]
            col, theta = tr.column[node], tr.threshold[node]
            own_left = bool(Ec[0, col] <= theta)
            j = int(self.owner[col])
            if j < 0 or len(values[j]) == 1:
                return walk(tr.left[node] if own_left else tr.right[node])
            span = slice(1 + int(w_start[j]), 1 + int(w_start[j + 1]))
            goes_left = Ec[span, col] <= theta  # (n_values_j - 1,)
            if goes_left.all() and own_left:
                return walk(tr.left[node])
            if not goes_left.any() and not own_left:
                return walk(tr.right[node])
            below_left = walk(tr.left[node])
            below_right = walk(tr.right[node])
            splits.append((below_left, below_right, goes_left, own_left, j))
            return below_left + below_right

        walk(0)
        return leaves, splits

    def propose(self, space: ActionSpace, *, k: int, evaluate: Evaluate) -> Proposal:
        values = self.candidates(space)
        limit = space.max_changes or space.d
        valid, best, evaluated = self.enumerate(space, values, evaluate, limit)
        if len(valid):
            # exact when no action with more changes can be cheaper: either none is allowed,
            # or even the 3 cheapest single moves together cost at least as much
            cheapest = np.sort([self._cheapest_move(space, j, v) for j, v in enumerate(values)])
            proven = limit <= 2 or best <= cheapest[:3].sum() + 1e-12
            return Proposal(actions=valid, evaluated=evaluated, min_cost=best if proven else None)
        if limit <= 2:
            return Proposal(
                actions=np.zeros((0, space.d)),
                evaluated=evaluated,
                infeasible=True,
                reason=(
                    f"no allowed action reaches P(approved) = {self.threshold:g}: every action"
                    f" changing at most {limit} feature(s) was enumerated ({evaluated} actions,"
                    " one per cell of the ensemble's partition)."
                ),
            )
        return self.solve(space, values, k=k, evaluated=evaluated)

    def _cheapest_move(self, space: ActionSpace, j: int, values: np.ndarray) -> float:
        if len(values) < 2:
            return np.inf
        rows = np.repeat(space.z0[None], len(values) - 1, axis=0)
        rows[:, j] = values[1:]
        return float(space.feature_costs(rows)[:, j].min())

    def enumerate(
        self,
        space: ActionSpace,
        values: list[np.ndarray],
        evaluate: Evaluate,
        limit: int,
        *,
        budget: int = 4096,
        chunk: int = 2048,
    ) -> tuple[np.ndarray, float, int]:
        """Every single change and, in order of cost, pairs of changes (skipping pairs that
        contain a valid single change), until ``budget`` pairs are scored and no unscored pair
        is cheaper than the best valid action. Returns ``(valid actions (m, d), their lowest
        cost, number scored)``: the lowest cost is exact among actions of at most 2 changes."""
        feat = np.concatenate([np.full(len(v) - 1, j) for j, v in enumerate(values)])
        val = np.concatenate([v[1:] for v in values])
        if len(feat) == 0:
            return np.zeros((0, space.d)), np.inf, 0
        singles = np.repeat(space.z0[None], len(feat), axis=0)
        singles[np.arange(len(feat)), feat] = val
        cost1 = space.feature_costs(singles)[np.arange(len(feat)), feat]
        ok1 = evaluate(singles) >= self.threshold
        pool = [singles[ok1]]
        best = float(cost1[ok1].min(initial=np.inf))
        evaluated = len(singles)
        if limit >= 2:
            rest = np.flatnonzero(~ok1)
            a, b = np.triu_indices(len(rest), k=1)
            a, b = rest[a], rest[b]
            keep = feat[a] != feat[b]
            a, b = a[keep], b[keep]
            order = np.argsort(cost1[a] + cost1[b], kind="stable")
            a, b = a[order], b[order]
            pair_cost = cost1[a] + cost1[b]
            done = 0
            while done < len(a) and (done < budget or pair_cost[done] < best):
                sl = slice(done, done + chunk)
                rows = np.repeat(space.z0[None], len(a[sl]), axis=0)
                idx = np.arange(len(rows))
                rows[idx, feat[a[sl]]] = val[a[sl]]
                rows[idx, feat[b[sl]]] = val[b[sl]]
                ok = evaluate(rows) >= self.threshold
                pool.append(rows[ok])
                best = min(best, float(pair_cost[sl][ok].min(initial=np.inf)))
                done += len(rows)
                evaluated += len(rows)
        return np.concatenate(pool), best, evaluated

    def solve(
        self, space: ActionSpace, values: list[np.ndarray], *, k: int, evaluated: int
    ) -> Proposal:
        """The MILP over leaves (see module): up to ``k`` diverse exact optima, or a proof."""
        prog = self.program(space, values)
        tau = float(np.log(self.threshold) - np.log1p(-self.threshold)) + _EPS
        base_rows = prog.A
        lower, upper = list(prog.lower), list(prog.upper)
        extra: list[np.ndarray] = [prog.score_row]
        lower.append(tau - prog.score_constant)
        upper.append(np.inf)
        n_var = len(prog.cost)
        n_w = len(prog.w_feature)
        if space.max_changes is not None:
            extra.append(np.concatenate([np.ones(n_w), np.zeros(n_var - n_w)]))
            lower.append(0.0)
            upper.append(float(space.max_changes))
        found: list[np.ndarray] = []
        min_cost = None
        proven = True
        for _ in range(k):
            A = _stack(base_rows, extra)
            result = milp(
                c=prog.cost,
                integrality=prog.integrality,
                bounds=Bounds(0.0, 1.0),
                constraints=LinearConstraint(A, np.array(lower), np.array(upper)),
                options={"time_limit": self.time_limit, "mip_rel_gap": 1e-9},
            )
            if result.status == 2 and not found:
                best = self.max_score(prog, space)
                return Proposal(
                    actions=np.zeros((0, space.d)),
                    evaluated=evaluated,
                    infeasible=True,
                    reason=(
                        f"no allowed action reaches P(approved) = {self.threshold:g}: the highest"
                        f" approval probability reachable under these constraints is"
                        f" {_sigmoid(best):.3f}; the MILP over the trees' leaves is infeasible."
                        f" Immutable: {', '.join(space.schema.immutable) or 'none'}."
                    ),
                    max_proba=_sigmoid(best),
                )
            if result.x is None:
                break
            proven = proven and result.status == 0
            z = space.z0.copy()
            chosen = np.flatnonzero(result.x[:n_w] > 0.5)
            z[prog.w_feature[chosen]] = prog.w_value[chosen]
            if min_cost is None and result.status == 0:
                min_cost = float(result.fun)
            found.append(z)
            changed = space.changed(z[None])[0]
            extra.append(
                np.concatenate([changed[prog.w_feature].astype(float), np.zeros(n_var - n_w)])
            )
            lower.append(-np.inf)
            upper.append(float(changed.sum() - 1))
        reason = "" if found else "the MILP over leaves stopped at its time limit without an action"
        return Proposal(
            actions=np.array(found).reshape(-1, space.d),
            evaluated=evaluated + len(found),
            min_cost=min_cost if proven else None,
            reason=reason,
        )

    def max_score(self, prog: _Program, space: ActionSpace) -> float:
        """Highest log-odds any allowed action reaches (a MILP maximising the score)."""
        n_var = len(prog.cost)
        n_w = len(prog.w_feature)
        extra: list[np.ndarray] = []
        lower, upper = list(prog.lower), list(prog.upper)
        if space.max_changes is not None:
            extra.append(np.concatenate([np.ones(n_w), np.zeros(n_var - n_w)]))
            lower.append(0.0)
            upper.append(float(space.max_changes))
        result = milp(
            c=-prog.score_row,
            integrality=prog.integrality,
            bounds=Bounds(0.0, 1.0),
            constraints=LinearConstraint(_stack(prog.A, extra), np.array(lower), np.array(upper)),
            options={"time_limit": self.time_limit},
        )
        if result.x is None:
            return float("nan")
        return prog.score_constant + float(prog.score_row @ result.x)


def _leaf(tr: _Tree, e: np.ndarray) -> int:
    node = 0
    while tr.left[node] >= 0:
        node = tr.left[node] if e[tr.column[node]] <= tr.threshold[node] else tr.right[node]
    return node


def _stack(A: Any, rows: list[np.ndarray]) -> Any:
    from scipy.sparse import csr_array, vstack

    if not rows:
        return A
    return vstack([A, csr_array(np.array(rows))]).tocsr()


def _sigmoid(logit: float) -> float:
    return float(1.0 / (1.0 + np.exp(-logit)))
