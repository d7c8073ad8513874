"""Causal recourse: actions propagate to their descendants through a structural causal model.

"How would I need to interfere the least to flip the decision?" (Karimi, Schölkopf & Valera,
2021, "Algorithmic recourse: from counterfactual explanations to interventions", FAccT). An
action is a set of interventions ``do(x_j = v)``; features downstream of an intervened feature
move with it, through additive mechanisms ``x_c = f_c(parents) + u_c``. The applicant's own noise
``u_c = x_c - f_c(parents(x))`` is kept (abduction), so a child moves by
``f_c(new parents) - f_c(old parents)``, rounded to whole numbers for integer features and
clipped to its range. Only interventions cost anything; consequences are free.

German Credit example (the DAG ``cfx`` documents and tests)::

    scm = AdditiveSCM({
        "duration_in_month": ("credit_amount",),   # the term offered follows the amount borrowed
        "present_residence_since": ("age_in_years",),  # waiting adds years at the address too
    })
    Recourse(model, schema, method="search", scm=scm).fit(X_train).explain(denied)

Why this DAG: amount and duration are the most correlated pair in the data (r = 0.62) and the
causal direction is the lending practice (a bigger loan is repaid over a longer term); age and
time at the present address (r = 0.27) share their cause, the passing of time, and age is the one
an applicant acts on (by waiting). Reducing the amount now also shortens the term, at the cost of
the amount change only. The mechanisms are fitted by least squares on the training data unless
given (``equations``: child -> callable taking a frame of the parents' values and returning the
child's values).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from cfx.recourse.space import Codec, Scales
from cfx.reprs import settings_repr

Equation = Callable[[pd.DataFrame], np.ndarray]


class AdditiveSCM:
    """A structural causal model with additive noise over some of the schema's features.

    Reference: Karimi, Schölkopf & Valera, "Algorithmic recourse: from counterfactual
    explanations to interventions", FAccT 2021.

    ``parents``: child -> tuple of parent features (a DAG; children numeric or ordinal, parents
    of any kind). ``equations``: optional child -> ``f(parents_frame) -> values``, one finite
    value per row (anything else is an error naming the equation); children without one get a
    linear mechanism fitted by least squares (categorical parents one-hot).
    Fitted by ``Recourse.fit`` (on a copy) unless already fitted.
    """

    __repr__ = settings_repr  # the arguments given, defaults left out

    def __init__(
        self,
        parents: Mapping[str, tuple[str, ...]],
        *,
        equations: Mapping[str, Equation] | None = None,
    ) -> None:
        if not isinstance(parents, Mapping) or not parents:
            raise TypeError(
                f"`parents` must be a non-empty mapping child -> parents, got {parents!r}"
            )
        for child, named in parents.items():  # ("credit_amount") is a str: its letters
            if isinstance(named, str):
                raise TypeError(
                    f"`parents[{child!r}]` must be a tuple of feature names, got the string "
                    f"{named!r}; did you mean ({named!r},)?"
                )
        self.parents = {c: tuple(p) for c, p in parents.items()}
        self.equations = dict(equations or {})
        unknown = sorted(set(self.equations) - set(self.parents))
        if unknown:
            raise ValueError(f"`equations` for {unknown!r}, which have no entry in `parents`")
        for child, equation in self.equations.items():  # a string failed at explain
            if not callable(equation):
                raise TypeError(
                    f"`equations[{child!r}]` must be a function of the parents' frame "
                    f"returning one value per row, got {type(equation).__name__}"
                )
        self.order = _topological(self.parents)
        self.fitted_ = False

    def fit(self, X: pd.DataFrame, codec: Codec, scales: Scales) -> AdditiveSCM:
        """Fit the linear mechanisms of children without equations on the frame ``X``."""
        names = set(codec.names)
        for child, parents in self.parents.items():
            missing = sorted({child, *parents} - names)
            if missing:
                raise ValueError(f"the causal model names unknown features {missing!r}")
            if not (codec.numeric | codec.ordinal)[codec.names.index(child)]:
                raise ValueError(
                    f"causal child `{child}` must be numeric or ordinal (additive mechanism)"
                )
        self.codec_ = codec
        self.lower_ = scales.lower.copy()
        self.upper_ = scales.upper.copy()
        Z = codec.to_codes(X, what="X")
        self.coef_: dict[str, np.ndarray] = {}
        for child in self.order:
            if child not in self.parents or child in self.equations:
                continue
            design = self._design(Z, child)  # (n, 1 + p)
            target = Z[:, codec.names.index(child)]
            self.coef_[child], *_ = np.linalg.lstsq(design, target, rcond=None)
        self.fitted_ = True
        return self

    def fitted_copy(self, X: pd.DataFrame, codec: Codec, scales: Scales) -> AdditiveSCM:
        """``self`` when fitted, else a fitted copy (the user's object is left unchanged)."""
        return self if self.fitted_ else copy.deepcopy(self).fit(X, codec, scales)

    def _design(self, Z: np.ndarray, child: str) -> np.ndarray:
        codec = self.codec_
        parts = [np.ones((len(Z), 1))]
        for parent in self.parents[child]:
            j = codec.names.index(parent)
            if codec.numeric[j] or codec.ordinal[j]:
                parts.append(Z[:, j, None])
            else:
                parts.append(np.eye(len(codec.lookup[j]))[Z[:, j].astype(np.int64)][:, 1:])
        return np.concatenate(parts, axis=1)

    def mechanism(self, Z: np.ndarray, child: str) -> np.ndarray:
        """``f_child(parents)`` ``(n,)`` on codes ``Z`` ``(n, d)``."""
        if child in self.equations:
            frame = self.codec_.to_frame(Z)[list(self.parents[child])]
            out = np.asarray(self.equations[child](frame), dtype=np.float64).reshape(-1)
            if out.shape != (len(Z),):  # numpy's broadcast error named nothing
                raise ValueError(
                    f"`equations[{child!r}]` must return one value per row of its frame "
                    f"({len(Z)}), got {out.size}"
                )
            bad = ~np.isfinite(out)
            if bad.any():  # a NaN child read as "did not move": the consequence was dropped
                row = frame.iloc[int(np.argmax(bad))].to_dict()
                raise ValueError(
                    f"`equations[{child!r}]` must return finite values, got {out[bad][0]} "
                    f"for the parents {row} ({int(bad.sum())} of {len(Z)} rows)"
                )
            return out
        return self._design(Z, child) @ self.coef_[child]

    def propagate(self, z0: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Where the interventions ``actions`` ``(n, d)`` (``z0`` with the acted-on features
        set) lead: non-intervened descendants move with their parents. Returns ``(n, d)``."""
        if not self.fitted_:
            raise RuntimeError("the causal model is not fitted; call Recourse.fit first")
        codec = self.codec_
        out = actions.copy()
        acted = np.abs(actions - z0) > 1e-9  # (n, d)
        base = z0[None]
        for child in self.order:
            j = codec.names.index(child)
            if child not in self.parents:
                continue
            shift = self.mechanism(out, child) - self.mechanism(base, child)[0]  # (n,)
            new = z0[j] + shift
            if codec.ordinal[j]:
                new = np.clip(np.round(new), 0, len(codec.lookup[j]) - 1)
            else:
                spec = codec.schema.features[j]
                new = np.clip(new, self.lower_[j], self.upper_[j])
                if spec.integer:
                    new = np.round(new)
            new = np.where(np.abs(shift) > 1e-12, new, z0[j])  # untouched rows stay put
            out[:, j] = np.where(acted[:, j], actions[:, j], new)
        return out


def _topological(parents: Mapping[str, tuple[str, ...]]) -> list[str]:
    """Features in an order where parents come first; raises on a cycle, naming it."""
    order: list[str] = []
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done

    def visit(node: str, path: list[str]) -> None:
        if state.get(node) == 2:
            return
        if state.get(node) == 1:
            cycle = [*path[path.index(node) :], node]
            raise ValueError(f"`parents` has a cycle (child -> parent): {' -> '.join(cycle)}")
        state[node] = 1
        for parent in parents.get(node, ()):
            visit(parent, [*path, node])
        state[node] = 2
        order.append(node)

    for node in parents:
        visit(node, [])
    return order
