"""Model-agnostic recourse: a batched, sparsity-first search over a grid of actions.

The search needs nothing but approval probabilities, which it asks for a whole level of
candidates at a time (one batched ``predict_proba`` call per level), so it works for MLPs, torch
modules and black boxes alike. It is in the family of growing-sphere and grid searches
(Laugel et al., 2018, "Comparison-based inverse classification for interpretability in machine
learning"; the batched, sparsity-ordered variant follows the "actionable recourse" enumeration of
Ustun, Spangher & Liu, 2019, FAT*).

Levels, each one batch:

1. every single-feature action on the grid: each category an applicant may move to, and for a
   numeric feature a ladder of values on each allowed side, dense near the applicant
   (``|delta| ~ (i / n) ** 1.5``) plus quantiles of the training data on that side;
2. every pair of single actions on different features that raise the approval probability
   without reaching the threshold alone (at most ``pair_options`` per feature, spread over the
   ladder);
3. while fewer than ``k`` distinct valid feature sets are known, or none of the valid rows passes
   ``accept`` (the data-support test), and ``max_changes`` allows: a beam of the ``beam`` most
   probable invalid rows, each extended by one more action;
4. refinement: the valid candidates of each level, each numeric change moved back towards
   the applicant (1/8 ... 7/8 of the way), so the selection can find the cheapest valid point;
   level by level, so that searching deeper only adds candidates.

Guarantee: every returned action satisfies the action space (checked) and the shared selection
keeps only valid, non-redundant ones; among the evaluated grid, the cheapest valid action is
found. Nothing is promised off the grid: use ``method="milp"``/``"tree"`` for exact answers.
"""

from __future__ import annotations

import numpy as np

from cfx.recourse.proposal import Accept, Evaluate, Proposal
from cfx.recourse.space import ActionSpace, unique_rows


class GridSearch:
    """Batched, sparsity-first grid search for recourse on any ``predict_proba`` (see module).

    Reference: in the family of Laugel et al., "Comparison-based inverse classification for
    interpretability in machine learning", 2018; the sparsity-ordered enumeration follows
    Ustun, Spangher & Liu, "Actionable recourse in linear classification", FAT* 2019.

    ``reference`` holds the training codes ``(n, d)`` whose quantiles shape the numeric ladders.
    """

    def __init__(
        self,
        reference: np.ndarray,
        *,
        threshold: float = 0.5,
        ladder: int = 12,
        pair_options: int = 8,
        beam: int = 40,
        max_level: int = 4,
    ) -> None:
        self.reference = reference
        self.threshold = threshold
        self.ladder = ladder
        self.pair_options = pair_options
        self.beam = beam
        self.max_level = max_level

    def options(self, space: ActionSpace) -> tuple[np.ndarray, np.ndarray]:
        """Single-feature actions on the grid: ``(features (o,), values (o,))``."""
        feats: list[np.ndarray] = []
        values: list[np.ndarray] = []
        for j in np.flatnonzero(space.movable).tolist():
            if space.numeric[j]:
                vals = numeric_ladder(space, j, self.reference[:, j], self.ladder)
            else:
                vals = np.array(space.targets[j], dtype=np.float64)
            feats.append(np.full(len(vals), j))
            values.append(vals)
        if not feats:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        return np.concatenate(feats), np.concatenate(values)

    def propose(
        self, space: ActionSpace, *, k: int, evaluate: Evaluate, accept: Accept | None = None
    ) -> Proposal:
        """Candidate actions (valid ones only). ``accept`` (rows ``(n, d)`` -> bool ``(n,)``,
        e.g. the data-support test) makes the search go deeper while no valid row passes it."""
        z0, thr = space.z0, self.threshold
        limit = min(self.max_level, space.max_changes or self.max_level)
        feat, val = self.options(space)
        if len(feat) == 0:
            return Proposal(actions=np.zeros((0, space.d)), reason="no feature may change")
        p0 = float(evaluate(z0[None])[0])
        singles = _rows(z0, [feat], [val])  # (o, d)
        p1 = evaluate(singles)
        evaluated = len(singles)
        pool = [singles[p1 >= thr]]
        best = float(p1.max())
        helpful = (p1 > p0) & (p1 < thr)  # options worth combining
        level_rows, level_p = singles[helpful], p1[helpful]

        if limit >= 2 and helpful.sum() >= 2:
            keep = _spread(feat, np.flatnonzero(helpful), self.pair_options)
            a, b = np.triu_indices(len(keep), k=1)
            a, b = keep[a], keep[b]
            distinct = feat[a] != feat[b]
            a, b = a[distinct], b[distinct]
            pairs = _rows(z0, [feat[a], feat[b]], [val[a], val[b]])
            p2 = evaluate(pairs)
            evaluated += len(pairs)
            best = max(best, float(p2.max(initial=0.0)))
            pool.append(pairs[p2 >= thr])
            level_rows, level_p = pairs[p2 < thr], p2[p2 < thr]

        level = 2
        while (
            level < limit
            and len(level_rows)
            and (_n_sets(space, pool) < k or not _any(space, pool, accept))
        ):
            level += 1
            top = level_rows[np.argsort(-level_p)[: self.beam]]  # (b, d)
            ext_feat, ext_val = feat[helpful], val[helpful]
            rows = np.repeat(top, len(ext_feat), axis=0)  # (b * e, d)
            cols = np.tile(ext_feat, len(top))
            fresh = ~space.changed(rows)[np.arange(len(rows)), cols]
            rows, cols = rows[fresh], cols[fresh]
            rows[np.arange(len(rows)), cols] = np.tile(ext_val, len(top))[fresh]
            rows = rows[unique_rows(rows)[0]]
            p = evaluate(rows)
            evaluated += len(rows)
            best = max(best, float(p.max(initial=0.0)))
            pool.append(rows[p >= thr])
            level_rows, level_p = rows[p < thr], p[p < thr]

        valid = np.concatenate(pool)
        # each level refined on its own: a deeper search (a larger k) adds candidates and
        # never displaces the refinements a shallower one finds (refining the cheapest rows
        # of the whole pool lost a cheap single change to the deeper levels' many rows)
        refined = np.concatenate([refine(space, rows) for rows in pool])
        if len(refined):
            p = evaluate(refined)
            evaluated += len(refined)
            valid = np.concatenate([valid, refined[p >= thr]])
        reason = (
            ""
            if len(valid)
            else (
                f"no action among the {evaluated} evaluated reaches P(approved) = {thr:g}"
                f" (highest approval probability reached: {best:.3f}); the search is not exhaustive"
            )
        )
        return Proposal(actions=valid, evaluated=evaluated, reason=reason, max_proba=best)


def numeric_ladder(space: ActionSpace, j: int, column: np.ndarray, n: int) -> np.ndarray:
    """Allowed new values of numeric feature ``j``: on each side of the applicant, ``n`` steps
    dense near it plus ``n // 2`` training quantiles on that side (whole numbers if integer)."""
    x0, lo, hi = space.z0[j], space.lo[j], space.hi[j]
    frac = (np.arange(1, n + 1) / n) ** 1.5  # (n,)
    values = []
    for far in (lo, hi):
        side = (column < x0) if far < x0 else (column > x0)
        span = far - x0
        if span == 0:
            continue
        values.append(x0 + span * frac)
        inside = column[side & (column >= lo) & (column <= hi)]
        if len(inside):
            values.append(np.quantile(inside, np.linspace(0.0, 1.0, max(2, n // 2))))
    if not values:
        return np.zeros(0)
    out = np.clip(np.concatenate(values), lo, hi)
    if space.integer[j]:
        out = np.round(out)
    out = np.unique(out)
    return out[np.abs(out - x0) > 1e-9]


def refine(space: ActionSpace, valid: np.ndarray, *, limit: int = 256) -> np.ndarray:
    """Each numeric change of the cheapest ``limit`` rows of ``valid`` ``(m, d)`` moved back
    towards the applicant by 1/8 ... 7/8 of its size (whole numbers where needed)."""
    if len(valid) == 0:
        return valid
    rows = valid[np.argsort(space.cost(valid))[:limit]]
    changed = space.changed(rows) & space.numeric  # (r, d)
    r, j = np.nonzero(changed)
    if len(r) == 0:
        return np.zeros((0, space.d))
    frac = np.arange(1, 8) / 8.0  # (7,)
    out = np.repeat(rows[r], len(frac), axis=0)  # (c * 7, d)
    cols = np.repeat(j, len(frac))
    start = space.z0[cols]
    target = rows[r, j].repeat(len(frac))
    moved = start + (target - start) * np.tile(frac, len(r))
    out[np.arange(len(out)), cols] = np.where(space.integer[cols], np.round(moved), moved)
    out = out[space.changed(out).any(axis=1)]
    return out[unique_rows(out)[0]]


def _rows(z0: np.ndarray, feats: list[np.ndarray], vals: list[np.ndarray]) -> np.ndarray:
    """Copies of ``z0`` with ``feats[i]`` set to ``vals[i]`` (each list entry one change)."""
    n = len(feats[0])
    out = np.repeat(z0[None], n, axis=0)  # (n, d)
    idx = np.arange(n)
    for f, v in zip(feats, vals, strict=True):
        out[idx, f.reshape(-1)] = v.reshape(-1)
    return out


def _spread(feat: np.ndarray, idx: np.ndarray, per_feature: int) -> np.ndarray:
    """At most ``per_feature`` of the option indices ``idx`` per feature, evenly spread."""
    keep = []
    for j in np.unique(feat[idx]):
        mine = idx[feat[idx] == j]
        if len(mine) > per_feature:
            mine = mine[np.unique(np.linspace(0, len(mine) - 1, per_feature).round().astype(int))]
        keep.append(mine)
    return np.concatenate(keep) if keep else np.zeros(0, dtype=np.int64)


def _any(space: ActionSpace, pool: list[np.ndarray], accept: Accept | None) -> bool:
    """Does any of the 256 cheapest valid rows pass ``accept``?"""
    if accept is None:
        return True
    rows = np.concatenate(pool)
    rows = rows[np.argsort(space.cost(rows), kind="stable")[:256]]
    return bool(len(rows)) and bool(accept(rows).any())


def _n_sets(space: ActionSpace, pool: list[np.ndarray]) -> int:
    rows = np.concatenate(pool)
    if len(rows) == 0:
        return 0
    return len(unique_rows(space.changed(rows))[0])
