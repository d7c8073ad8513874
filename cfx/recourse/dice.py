"""DiCE (dice-ml) behind cfx's recourse API, for side-by-side comparisons.

Mothilal, Sharma & Tan, 2020, "Explaining machine learning classifiers through diverse
counterfactual explanations" (FAT*). ``method="dice-random" | "dice-genetic" | "dice-kdtree"``
runs dice-ml's sampler of that name and returns its counterfactuals *as they are*: cfx's
selection (pruning of redundant changes, data support, diversity by feature set) is not applied,
so that a comparison shows DiCE itself. Each counterfactual still reports its model probability
(``valid``) and the constraints it breaks (``violations``).

DiCE's only constraints are ``features_to_vary`` and per-feature ranges; the adapter passes the
strongest translation of cfx's action space it can: the movable features, numeric ranges that
include the direction rules (age: from the applicant's age up), and for categories the allowed
targets plus the current one. Categorical transitions beyond that cannot be expressed; DiCE
may break them, and the result says so. Integer steps cannot be expressed either: a fraction
DiCE proposes for a whole-number feature is rounded (half to even) before cfx scores and
reports it, so the plan shows the point the model was scored on.

DiCE draws from Python's and numpy's global random states, and its random sampler reseeds both
with its ``random_seed``. With an int ``random_state`` (the default, 0) every sampler runs from
states set by it, and the caller's global states are put back afterwards: a plan is the same on
every call, and the caller's own draws are not moved by DiCE. With ``random_state=None`` DiCE
draws from the global states as they are (and advances them). DiCE's per-call progress bar is
silenced.

DiCE runs with its own defaults, as the comparison is of DiCE itself; one of them can be slow:
its post-hoc sparsity step is a linear search at the data's precision (up to 10,000 model
calls per feature and plan), so a feature recorded to the cent under narrow bounds can take
minutes for one applicant (an audit's random forest, uncommitted script: over 110 s, where
the same applicant without bounds took 0.3 s). cfx's own methods have no such step.
"""

from __future__ import annotations

import contextlib
import io
import logging
import random
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from cfx.errors import check_seed
from cfx.recourse.model import ModelView
from cfx.recourse.proposal import Evaluate, Proposal
from cfx.recourse.space import ActionSpace

DICE_METHODS = {"dice-random": "random", "dice-genetic": "genetic", "dice-kdtree": "kdtree"}
log = logging.getLogger(__name__)


class _CodecModel:
    """What DiCE calls: ``predict_proba`` on DiCE's frames, routed through cfx's codec so the
    user's model always sees its own training dtypes."""

    def __init__(self, view: ModelView) -> None:
        self.view = view

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = self.view.check(_codes(self.view, X, "X"))
        return np.stack([1.0 - p, p], axis=1)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.argmax(self.predict_proba(X), axis=1)


@contextlib.contextmanager
def _global_states(seed: int | None) -> Iterator[None]:
    """Python's and numpy's global random states set from ``seed`` for the block, and the
    caller's put back after it (DiCE draws from, and reseeds, the global states); ``None``
    leaves them as they are."""
    if seed is None:
        yield
        return
    # the legacy global state is the one DiCE draws from, so it is the one to set and restore
    saved_py, saved_np = random.getstate(), np.random.get_state()  # noqa: NPY002
    try:
        random.setstate(random.Random(seed).getstate())
        np.random.set_state(np.random.RandomState(seed).get_state())  # noqa: NPY002
        yield
    finally:
        random.setstate(saved_py)
        np.random.set_state(saved_np)  # noqa: NPY002


def _codes(view: ModelView, X: pd.DataFrame, what: str) -> np.ndarray:
    """Codes of a DiCE frame (which hands numbers over as objects at times, and may propose
    fractions of a whole-number feature: rounded here, once, so that cfx scores and reports
    the same point)."""
    codec = view.codec
    X = X[list(codec.names)].copy()
    for j, (name, spec) in enumerate(zip(codec.names, codec.schema.features, strict=True)):
        if codec.numeric[j]:
            X[name] = pd.to_numeric(X[name])
            if spec.integer:
                X[name] = X[name].round()
    return codec.to_codes(X, what=what)


class DiceRecourse:
    """dice-ml's ``random``, ``genetic`` or ``kdtree`` sampler as a cfx recourse method.

    Returns DiCE's counterfactuals as they are (cfx's pruning, data-support test and diversity
    by feature set are not applied), each scored by the model and checked against the action
    space, for side-by-side comparisons. ``random_state`` is passed where DiCE takes one.

    Reference: Mothilal, Sharma & Tan, "Explaining machine learning classifiers through diverse
    counterfactual explanations", FAT* 2020.
    """

    def __init__(
        self,
        view: ModelView,
        Z_train: np.ndarray,
        approved: np.ndarray,
        *,
        method: str,
        threshold: float = 0.5,
        random_state: int | None = 0,
    ) -> None:
        import dice_ml

        if method not in DICE_METHODS:
            raise ValueError(f"`method` must be one of {tuple(DICE_METHODS)}, got {method!r}")
        self.view = view
        self.method = method
        self.threshold = threshold
        self.random_state = check_seed("random_state", random_state)
        codec = view.codec
        frame = self._strings(codec.to_frame(Z_train))
        frame["_approved"] = np.asarray(approved, dtype=np.int64)
        numeric = [n for n, is_num in zip(codec.names, codec.numeric, strict=True) if is_num]
        self.data = dice_ml.Data(
            dataframe=frame, continuous_features=numeric, outcome_name="_approved"
        )
        self.model = dice_ml.Model(model=self._model_for_dice(frame), backend="sklearn")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.explainer = dice_ml.Dice(self.data, self.model, method=DICE_METHODS[method])

    def _model_for_dice(self, frame: pd.DataFrame) -> Any:
        """The user's model itself when it takes DiCE's frames (strings for categories) and
        agrees with itself on them, so DiCE is timed as users run it; else a codec shim."""
        sample = frame[list(self.view.codec.names)].iloc[:32]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                direct = np.asarray(self.view.model.predict_proba(sample), dtype=np.float64)
            expected = self.view.check(self.view.codec.to_codes(sample))
            # DiCE asks for class 1: the model itself only where column 1 is approval
            if self.view.positive == 1 and np.abs(direct[:, 1] - expected).max() <= 1e-9:
                return self.view.model
        except Exception as err:  # the model needs its own dtypes
            log.info("dice-ml gets a codec shim: %s", err)
        return _CodecModel(self.view)

    def _strings(self, frame: pd.DataFrame) -> pd.DataFrame:
        codec = self.view.codec
        out = frame.copy()
        for j, name in enumerate(codec.names):
            if not codec.numeric[j]:
                out[name] = out[name].astype(str).astype(object)
        return out

    def permitted(self, space: ActionSpace) -> tuple[list[str], dict[str, list[Any]]]:
        """DiCE's ``features_to_vary`` and ``permitted_range`` for this applicant."""
        codec = self.view.codec
        vary, ranges = [], {}
        for j in np.flatnonzero(space.movable).tolist():
            name = codec.names[j]
            vary.append(name)
            if space.numeric[j]:
                low = min(space.lo[j], space.z0[j])
                high = max(space.hi[j], space.z0[j])
                ranges[name] = [low, high]
            else:
                codes = [int(space.z0[j]), *space.targets[j]]
                ranges[name] = [str(codec.value(j, c)) for c in codes]
        return vary, ranges

    def _why(self) -> str:
        """What to know when DiCE finds nothing: kdtree proposes only training applicants
        who share the applicant's immutable values, which for an immutable number (an age held
        fixed, say) few or none do."""
        if self.method != "dice-kdtree":
            return ""
        return (
            " (dice-kdtree proposes only training applicants who share this applicant's "
            "immutable values, which for an immutable number (an age held fixed, say) few or "
            "none do; dice-random, dice-genetic and cfx's own methods have no such limit)"
        )

    def propose(self, space: ActionSpace, *, k: int, evaluate: Evaluate) -> Proposal:
        codec = self.view.codec
        vary, ranges = self.permitted(space)
        if not vary:
            return Proposal(actions=np.zeros((0, space.d)), reason="no feature may change")
        query = self._strings(codec.to_frame(space.z0[None]))
        kwargs: dict[str, Any] = {}
        if self.method == "dice-random" and self.random_state is not None:
            kwargs["random_seed"] = self.random_state
        try:
            with (
                _global_states(self.random_state),
                warnings.catch_warnings(),
                contextlib.redirect_stderr(io.StringIO()),
                contextlib.redirect_stdout(io.StringIO()),
            ):
                warnings.simplefilter("ignore")
                found = self.explainer.generate_counterfactuals(
                    query,
                    total_CFs=k,
                    desired_class=1,
                    features_to_vary=vary,
                    permitted_range=ranges,
                    stopping_threshold=self.threshold,
                    verbose=False,
                    **kwargs,
                )
            cfs = found.cf_examples_list[0].final_cfs_df
        except Exception as err:  # DiCE raises when it finds nothing
            log.info("dice-ml found no counterfactual: %s", err)
            return Proposal(actions=np.zeros((0, space.d)), reason=f"dice-ml: {err}{self._why()}")
        if cfs is None or len(cfs) == 0:
            reason = f"dice-ml returned nothing{self._why()}"
            return Proposal(actions=np.zeros((0, space.d)), reason=reason)
        actions = _codes(self.view, cfs, "dice-ml counterfactuals")
        return Proposal(actions=actions, evaluated=len(actions))
