"""The selection every cfx method shares: valid, non-redundant, supported, diverse, cheap.

From a method's candidate actions for one applicant, :func:`choose` keeps the allowed and valid
ones, removes redundant changes (a change is redundant when undoing it alone keeps the decision;
undone greedily, the costliest first, until none is left), and picks up to ``k`` with pairwise
different sets of changed features, cheapest first, preferring candidates inside the data
support (:class:`DataSupport`): a counterfactual that the model approves while the real
applicants around it are mostly denied is an artefact of the model, not advice. The order is
``cost + weight * (1 - share)``: among points that reach the minimum share, a point whose
neighbours are all approved may cost up to ``weight * (1 - share)`` more than a less supported
one and still come first (the plausibility term of the objective). The chosen counterfactuals
keep that order, best first, so asking for more plans adds them after the first (sorted by
cost alone, asking for two plans could put a cheaper, less supported one in front of the one
``k = 1`` recommends); a method that searches deeper for a larger ``k`` may find a better
first plan among its extra candidates. Numeric changes are first rounded as a plan prints them
(:meth:`ActionSpace.readable`: to the nearest printable step, and away from the applicant, both
judged), so what is judged valid is the plan an applicant reads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from cfx.errors import check_int
from cfx.recourse.proposal import Evaluate
from cfx.recourse.space import ActionSpace, Codec, Scales, unique_rows

Realise = Callable[[np.ndarray], np.ndarray]


class DataSupport:
    """Plausibility from the training data, in a standardised space.

    Numeric features and ordinal codes are standardised (training mean and standard deviation),
    categorical features one-hot encoded: the usual encoding of credit models (for the cfx credit
    models it is exactly their input space). ``share(Z)`` is the fraction of the
    ``n_neighbors`` nearest training applicants that the model approves (the yNN of Pawelczyk
    et al., 2021, CARLA); ``distance(Z)`` the distance to the nearest approved one.
    """

    def __init__(
        self,
        codec: Codec,
        scales: Scales,
        Z_train: np.ndarray,
        approved: np.ndarray,
        *,
        n_neighbors: int = 5,
    ) -> None:
        n_neighbors = check_int("n_neighbors", n_neighbors)  # numpy's integers too
        self.codec = codec
        self.scales = scales
        self.n_neighbors = min(n_neighbors, len(Z_train))
        self.train = self.embed(Z_train)  # (N, m)
        self.train_sq = (self.train**2).sum(axis=1)  # (N,)
        self.approved = np.asarray(approved, dtype=bool)  # (N,)

    def embed(self, Z: np.ndarray) -> np.ndarray:
        """Codes ``(n, d)`` -> standardised / one-hot rows ``(n, m)``."""
        parts = []
        for j in range(self.codec.d):
            if self.codec.numeric[j] or self.codec.ordinal[j]:
                parts.append(((Z[:, j] - self.scales.center[j]) / self.scales.spread[j])[:, None])
            else:
                n_cat = len(self.codec.lookup[j])
                parts.append(np.eye(n_cat)[Z[:, j].astype(np.int64)])
        return np.concatenate(parts, axis=1)

    def _sq_distances(self, Z: np.ndarray) -> np.ndarray:
        E = self.embed(Z)  # (n, m)
        sq = (E**2).sum(axis=1)[:, None] + self.train_sq[None] - 2.0 * E @ self.train.T
        return np.maximum(sq, 0.0)  # (n, N)

    def share(self, Z: np.ndarray) -> np.ndarray:
        """``(n,)`` share of the nearest training applicants that the model approves."""
        if len(Z) == 0:
            return np.zeros(0)
        sq = self._sq_distances(Z)
        nearest = np.argpartition(sq, self.n_neighbors - 1, axis=1)[:, : self.n_neighbors]
        return self.approved[nearest].mean(axis=1)

    def distance(self, Z: np.ndarray) -> np.ndarray:
        """``(n,)`` distance to the nearest approved training applicant (standardised units)."""
        if len(Z) == 0 or not self.approved.any():
            return np.full(len(Z), np.nan)
        return np.sqrt(self._sq_distances(Z)[:, self.approved].min(axis=1))


@dataclass(frozen=True)
class Choice:
    """The counterfactuals chosen for one applicant (rows aligned), best first."""

    actions: np.ndarray  # (c, d) intervention points
    points: np.ndarray  # (c, d) where the actions lead (= actions without a causal model)
    cost: np.ndarray  # (c,)
    support: np.ndarray  # (c,) share of approved nearest training applicants
    valid_found: int  # distinct valid, non-redundant candidates seen
    supported_found: int  # ... of which inside the data support
    ruled_out: int = 0  # valid candidates ``allowed`` refused (e.g. for their consequences)


def prune(
    space: ActionSpace,
    actions: np.ndarray,
    evaluate: Evaluate,
    threshold: float,
    allowed: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """Undo redundant changes of valid ``actions`` ``(n, d)``: while undoing one change keeps a
    row approved (and, with ``allowed``, allowed), undo the costliest such change. Returns the
    pruned rows ``(n, d)``."""
    A = actions.copy()
    pending = np.ones(len(A), dtype=bool)
    for _ in range(space.d):
        changed = space.changed(A) & pending[:, None]  # (n, d)
        changed[changed.sum(axis=1) < 2] = False  # one change: undoing it gives the applicant
        rows, feats = np.nonzero(changed)
        if len(rows) == 0:
            break
        reverted = A[rows].copy()
        reverted[np.arange(len(rows)), feats] = space.z0[feats]
        still = evaluate(reverted) >= threshold  # (r,)
        if allowed is not None and still.any():  # a change a rule needs is not redundant
            still &= allowed(reverted)
        pending[:] = False
        if not still.any():
            break
        saving = space.feature_costs(A[rows])[np.arange(len(rows)), feats]
        saving = np.where(still, saving, -np.inf)
        order = np.lexsort((-saving, rows))  # per row, the largest saving first
        first = order[np.r_[True, rows[order][1:] != rows[order][:-1]]]
        first = first[still[first]]
        A[rows[first]] = reverted[first]
        pending[rows[first]] = True
    return A


def choose(
    space: ActionSpace,
    actions: np.ndarray,
    *,
    k: int,
    evaluate: Evaluate,
    realise: Realise,
    threshold: float,
    support: DataSupport,
    min_support: float,
    weight: float = 0.0,
    shortlist: int = 4,
    allowed: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Choice:
    """Pick up to ``k`` valid, non-redundant, diverse, supported actions (see module).

    Among candidates whose support share reaches ``min_support``, the order is
    ``cost + weight * (1 - share)``; when none does, all are, in the same order.
    ``allowed`` (actions ``(n, d)`` -> bool ``(n,)``, e.g. what their causal consequences
    do) drops more candidates once redundant changes are undone."""
    empty = Choice(np.zeros((0, space.d)), np.zeros((0, space.d)), np.zeros(0), np.zeros(0), 0, 0)
    if len(actions) == 0:
        return empty
    A = space.clip(actions)
    # judged, and re-checked, as printed: each value rounded to its nearest printable step,
    # which the model may reject, and away from the applicant, which keeps the method's side
    near, away = space.readable(A, nearest=True), space.readable(A)
    A = near if np.array_equal(near, away) else np.concatenate([near, away])  # whole numbers: one
    A = A[space.changed(A).any(axis=1) & _allowed(space, A)]
    A = A[unique_rows(A)[0]]
    if len(A) == 0:
        return empty
    A = A[evaluate(A) >= threshold]
    A = prune(space, A, evaluate, threshold, allowed)
    A = A[unique_rows(A)[0]]
    ruled_out = 0
    if allowed is not None and len(A):
        keep = allowed(A)
        ruled_out = int((~keep).sum())
        A = A[keep]
    if len(A) == 0:
        return replace(empty, ruled_out=ruled_out)
    cost = space.cost(A)
    sets = space.changed(A)
    # shortlist: the `shortlist` cheapest rows of every feature set
    order = np.argsort(cost, kind="stable")
    _, set_id = unique_rows(sets)
    rank = np.zeros(len(A), dtype=np.int64)
    seen: dict[int, int] = {}
    for i in order:
        rank[i] = seen.get(int(set_id[i]), 0)
        seen[int(set_id[i])] = rank[i] + 1
    short = order[rank[order] < shortlist]
    points = realise(A[short])
    share = support.share(points)
    ok = share >= min_support - 1e-12
    # a feature set none of whose shortlisted candidates reaches the support has its costlier
    # ones judged too: cut at the shortlist alone, a deeper search (a larger k) found cheaper,
    # unsupported candidates that pushed the set's supported plan out, the first plan got
    # worse and the reason said no plan reached the support (a user review: 33 of 80 denied
    # applicants of a GBM)
    rest = order[(rank[order] >= shortlist) & ~np.isin(set_id[order], set_id[short[ok]])]
    if len(rest):
        more = realise(A[rest])
        short = np.concatenate([short, rest])
        points = np.concatenate([points, more])
        share = np.concatenate([share, support.share(more)])
        ok = share >= min_support - 1e-12
    # cheapest first, where every denied neighbour adds weight / n_neighbors to the cost; when
    # none reaches the support, in the same order (ranked by share alone, a plan costing 8.7
    # came before one costing 0.8 with one approved neighbour fewer; session 45 audit)
    keep = ok if ok.any() else np.ones_like(ok)
    score = cost[short[keep]] + weight * (1.0 - share[keep])
    order = np.argsort(score, kind="stable")
    candidates, shares, pts = short[keep][order], share[keep][order], points[keep][order]
    picked: list[int] = []
    used: set[int] = set()
    for pos, i in enumerate(candidates):
        if int(set_id[i]) in used:
            continue
        used.add(int(set_id[i]))
        picked.append(pos)
        if len(picked) == k:
            break
    picked_arr = np.array(picked, dtype=np.int64)  # best first, in the selection's order
    sel = candidates[picked_arr]
    return Choice(
        actions=A[sel],
        points=pts[picked_arr],
        cost=cost[sel],
        support=shares[picked_arr],
        valid_found=len(seen),
        supported_found=len({int(set_id[i]) for i in short[ok]}),
        ruled_out=ruled_out,
    )


def _allowed(space: ActionSpace, A: np.ndarray) -> np.ndarray:
    """``(n,)`` rows of ``A`` ``(n, d)`` that break no constraint of ``space`` (vectorised
    :meth:`ActionSpace.violations`)."""
    changed = space.changed(A)
    ok = ~(changed & ~space.movable).any(axis=1)
    num = space.numeric & space.movable
    inside = (space.lo - 1e-9 <= A) & (space.hi + 1e-9 >= A)
    whole = ~space.integer | (np.abs(A - np.round(A)) <= 1e-9)
    ok &= ~(changed & num & ~(inside & whole)).any(axis=1)
    for j in np.flatnonzero(~space.numeric & space.movable).tolist():
        moved = changed[:, j]
        ok &= ~moved | np.isin(np.round(A[:, j]), space.targets[j])
    if space.max_changes is not None:
        ok &= changed.sum(axis=1) <= space.max_changes
    return ok
