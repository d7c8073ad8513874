"""``Recourse``: actionable, diverse counterfactuals for denied applicants, one verb, ``explain``.

::

    from cfx.data.credit import load_german
    from cfx.recourse import Recourse
    from cfx.zoo import german_split, load_credit_model

    data = load_german()
    train, test = german_split()
    rec = Recourse(load_credit_model("logistic"), data.schema, k=3).fit(data.X.iloc[train])
    for res in rec.explain(data.X.iloc[test[:5]]):
        print(res.status, res.plan)

Methods (``method=``): ``"milp"`` exact for additive (linear/logistic) models
(:mod:`cfx.recourse.milp`), ``"tree"`` exact for gradient-boosted trees
(:mod:`cfx.recourse.tree`), ``"search"`` for any ``predict_proba`` (:mod:`cfx.recourse.search`),
``"dice-random"``/``"dice-genetic"``/``"dice-kdtree"`` to run dice-ml through the same API
(:mod:`cfx.recourse.dice`); ``"auto"`` picks milp, tree or search from the model.

Every cfx method shares one selection step (:mod:`cfx.recourse.select`): counterfactuals are
valid (checked with ``model.predict_proba`` itself), break no constraint, carry no redundant
change, use pairwise different feature sets, and come from inside the data support when possible
(``support``: the share of the 5 nearest training applicants the model approves must reach it;
``plausibility_weight`` trades the remaining cost against a higher share).
The exact methods' optimum is always a candidate: with ``support > 0`` the MILP's optimum joins
the search's candidates, and the tree enumeration's candidates are extended by the search when
none of them is supported; ``RecourseResult.min_cost`` keeps the proven optimum's cost. With
``support=0`` the exact methods return their exact, diverse optima and nothing else (each
numeric change then rounded to a printable step, which may cost a step more: see
``ActionSpace.readable``).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from numbers import Real
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd

from cfx.data.schema import FeatureSchema
from cfx.errors import Notice, UnknownNameError, check_int, check_real, check_seed, counted
from cfx.recourse.causal import AdditiveSCM
from cfx.recourse.dice import DICE_METHODS, DiceRecourse
from cfx.recourse.milp import LinearMILP
from cfx.recourse.model import ModelView, check_model, model_family
from cfx.recourse.plan import GERMAN_PHRASES, Phrase, describe, plan
from cfx.recourse.proposal import Evaluate, Method, Proposal
from cfx.recourse.result import Change, Counterfactual, RecourseResult, Status
from cfx.recourse.search import GridSearch
from cfx.recourse.select import Choice, DataSupport, Realise, choose
from cfx.recourse.space import (
    COSTS,
    ActionSpace,
    Codec,
    Constraints,
    CostName,
    Scales,
    check_columns,
    first_rows,
)
from cfx.recourse.tree import TreeMILP
from cfx.reprs import settings_repr

MethodName = Literal["auto", "milp", "tree", "search", "dice-random", "dice-genetic", "dice-kdtree"]
METHODS: tuple[str, ...] = get_args(MethodName)
N_NEIGHBORS = 5
log = logging.getLogger(__name__)


class Recourse:
    """Recourse for denied applicants of a binary credit model (scikit-learn style).

    Parameters (keyword-only after ``schema``, stored unchanged, validated in :meth:`fit`):

    * ``model``: anything with ``predict_proba(X: DataFrame) -> (n, 2)`` over the schema's
      columns; a torch module through :class:`~cfx.recourse.model.TorchClassifier`.
    * ``approved``: the model's class label that means approved (``None``, the default, means
      1, the zoo's and ``load_german``'s ``y``). A model of the probability of default (class
      1 = bad) takes ``approved=0``, one trained on other labels names its own
      (``approved="good"``, ``approved=2``: the default is refused for classes other than 0
      and 1); a label not among the model's ``classes_`` is an error. A model
      of default read with the default is a model read backwards that no check can refuse
      (its classes are 0 and 1 too), so :meth:`fit` warns when, left at the default, the
      model approves fewer than half of ``X_train``; pass ``approved=1`` to say class 1 is
      right.
    * ``schema``: the :class:`~cfx.data.schema.FeatureSchema` (kinds, ranges, actionability).
    * ``k``: counterfactuals per applicant (at most; pairwise different feature sets).
    * ``method``: see the module docstring; ``cost``: ``"mad"`` (numeric changes in median
      absolute deviations) or ``"range"`` (in data ranges); categories cost their feature's
      ``cost`` per step: one per change, per rank along an ordinal order, or as the
      feature's ``transition_costs`` price it.
    * ``threshold``: approved when ``P(approved) >= threshold``.
    * ``target_proba``: the approval probability every plan must reach (default: ``threshold``).
      A plan that only just reaches the threshold flips back with the smallest change in the
      model or the applicant's figures; ``target_proba=0.6`` leaves a margin. Who counts as
      denied still follows ``threshold``.
    * ``max_changes``: at most this many features per action (``None``: no limit).
    * ``support``: required share of the 5 nearest training applicants that the model approves
      (when no candidate reaches it, the best by the same order are returned; 0 disables the data
      support altogether and selects by cost alone: exact optima for milp/tree, up to the
      printable step of a numeric change).
    * ``plausibility_weight``: the plausibility term of the selection, ``cost + weight * (1 -
      share)``: with the default 15, each denied neighbour adds 3 to a candidate's cost (three
      category changes), so an all-approved neighbourhood is preferred unless it costs that
      much more. 0 selects by cost alone.
    * ``scm``: an :class:`~cfx.recourse.causal.AdditiveSCM` for causal recourse (search only).
      Consequences keep the schema's rules: an immutable feature may not be a child (an error
      at ``fit``), and a plan whose consequences move a child against its direction, or one
      the query's constraints freeze, is not offered. (An intervention that merely holds a
      child where it is cannot be written as a change, so such a plan is offered only when it
      also sets the child to another allowed value.)
    * ``phrases``: wording of changes per feature, ``{name: (before, after) -> str}``; other
      features get a generic phrase. Default: German Credit's wording (DM, months, ...) for a
      schema of the German Credit features, none otherwise.
    * ``random_state``: seed of the DiCE methods, which draw from Python's and numpy's global
      random states: cfx sets them from it for each applicant and puts the caller's back
      afterwards (``None``: DiCE draws from the global states as they are).

    Learned in :meth:`fit`: ``codec_``, ``scales_`` (MAD and ranges), ``support_`` (data
    support), ``goal_`` (the probability plans must reach), ``method_`` (resolved name),
    ``engine_``, ``scm_``, ``train_sha256_`` (a digest of the training rows, as codes) and
    ``train_proba_`` (the model's approval probabilities on them, ``(n,)``): a batch file
    records both to tell another model or other data (see
    :func:`~cfx.recourse.batch.explain_to_file`).
    """

    __repr__ = settings_repr  # the arguments given, defaults left out

    def __init__(
        self,
        model: Any,
        schema: FeatureSchema,
        *,
        approved: Hashable | None = None,
        k: int = 3,
        method: MethodName = "auto",
        cost: CostName = "mad",
        threshold: float = 0.5,
        target_proba: float | None = None,
        max_changes: int | None = None,
        support: float = 0.8,
        plausibility_weight: float = 15.0,
        scm: AdditiveSCM | None = None,
        phrases: Mapping[str, Phrase] | None = None,
        random_state: int | None = 0,
    ) -> None:
        self.model = model
        self.schema = schema
        self.approved = approved
        self.k = k
        self.method = method
        self.cost = cost
        self.threshold = threshold
        self.target_proba = target_proba
        self.max_changes = max_changes
        self.support = support
        self.plausibility_weight = plausibility_weight
        self.scm = scm
        self.phrases = phrases
        self.random_state = random_state

    # --------------------------------------------------------------------------------------------
    def _check_params(self) -> None:
        check_model(self.model)
        if not isinstance(self.schema, FeatureSchema):
            raise TypeError(f"`schema` must be a FeatureSchema, got {type(self.schema).__name__}")
        check_int("k", self.k)
        if self.method not in METHODS:
            raise UnknownNameError(f"`method` must be one of {METHODS}, got {self.method!r}")
        if self.cost not in COSTS:
            raise UnknownNameError(f"`cost` must be one of {COSTS}, got {self.cost!r}")
        check_real("threshold", self.threshold, low=0, high=1, open_low=True, open_high=True)
        aim = self.target_proba
        if aim is not None:
            want = (
                f"`target_proba` must be None or a number in [threshold, 1) = "
                f"[{self.threshold}, 1), got {aim!r}"
            )
            if not isinstance(aim, Real) or isinstance(aim, bool):
                raise TypeError(want)
            if not self.threshold <= aim < 1:
                raise ValueError(want)
        check_real("support", self.support, low=0, high=1)
        check_real("plausibility_weight", self.plausibility_weight, low=0)
        Constraints(max_changes=self.max_changes)  # validates it
        check_seed("random_state", self.random_state)
        if self.scm is not None and not isinstance(self.scm, AdditiveSCM):
            raise TypeError(f"`scm` must be an AdditiveSCM or None, got {type(self.scm).__name__}")
        if self.phrases is not None:
            if not isinstance(self.phrases, Mapping):
                raise TypeError(
                    "`phrases` must be a mapping {feature: (before, after) -> str}, got "
                    f"{type(self.phrases).__name__}"
                )
            unknown = [str(n) for n in self.phrases if n not in self.schema.names]
            if unknown:
                raise UnknownNameError(
                    f"`phrases` names features the schema does not have: {unknown!r}; "
                    f"features: {list(self.schema.names)!r}"
                )
            wrong = [str(n) for n, p in self.phrases.items() if not callable(p)]
            if wrong:
                raise TypeError(
                    f"`phrases` values must be callables (before, after) -> str; not for {wrong!r}"
                )
        if self.scm is not None and self.method not in ("auto", "search"):
            raise ValueError(
                f"causal recourse (`scm`) needs method='search' or 'auto', got {self.method!r}"
            )

    def fit(self, X_train: pd.DataFrame) -> Recourse:
        """Learn MAD scales, ranges, the data support and the method's view of the model."""
        self._check_params()
        if not isinstance(X_train, pd.DataFrame):
            raise TypeError(f"`X_train` must be a pandas DataFrame, got {type(X_train).__name__}")
        check_columns(X_train, self.schema.names, "X_train")
        unread_notice(self.schema, X_train.columns, "X_train")
        codec = Codec(self.schema, X_train)
        Z = codec.to_codes(X_train, what="X_train")
        if len(Z) < 2:
            raise ValueError(f"`X_train` needs at least 2 rows, got {len(Z)}")
        range_notice(self.schema, Z, X_train.index, training=True)
        scales = Scales.learn(self.schema, Z, self.cost)
        view = ModelView(self.model, codec, self.approved)
        try:  # the first calls of the model: a column mismatch shows here
            view.read_refused(Z[0])
            view.read_encoder(Z)
            p_train = view.proba(Z)
            approved = p_train >= self.threshold
        except (KeyError, ValueError) as err:
            text = str(err).lower()
            if not (isinstance(err, KeyError) or "missing" in text or "feature names" in text):
                raise
            raise ValueError(
                f"`model.predict_proba` failed on a frame of the schema's {len(codec.names)} "
                f"columns: {type(err).__name__}: {err}. cfx calls the model with exactly those "
                "columns, in the order its `feature_names_in_` gives (scikit-learn's) or else "
                "the schema's; a model that needs other columns, or another order it does not "
                "record, must be wrapped to supply them"
            ) from err
        _warn_unseen_categories(self.schema, Z, view.refused)
        view.read_bounds(Z[0], Z)
        # judged at 0.5, whatever the threshold: a higher one denies more by design
        share = float((p_train >= 0.5).mean())
        if self.approved is None and share < 0.5:
            _backwards_notice(share, len(Z))
        self.codec_ = codec
        self.scales_ = scales
        self.view_ = view
        self.support_ = DataSupport(codec, scales, Z, approved, n_neighbors=N_NEIGHBORS)
        self.train_sha256_ = hashlib.sha256(
            np.ascontiguousarray(Z, np.float64).tobytes()
        ).hexdigest()
        self.train_proba_ = np.asarray(p_train, dtype=np.float64)
        self.goal_ = float(self.threshold if self.target_proba is None else self.target_proba)
        self.search_ = GridSearch(Z, threshold=self.goal_)
        if self.scm is not None:
            _check_scm_children(self.schema, self.scm)
        self.scm_ = None if self.scm is None else self.scm.fitted_copy(X_train, codec, scales)
        self.method_, self.engine_ = self._engine(Z, approved)
        return self

    def _engine(self, Z: np.ndarray, approved: np.ndarray) -> tuple[str, Method]:
        method = self.method
        if method == "auto":
            family = model_family(self.model) if self.scm is None else "other"
            try:
                if family == "linear":
                    return "milp", LinearMILP(self.view_, Z, self.scales_, threshold=self.goal_)
                if family == "tree":
                    return "tree", TreeMILP(self.view_, Z, threshold=self.goal_)
            except (TypeError, ValueError) as err:  # its exact method cannot read it
                import warnings

                warnings.warn(
                    f"method='auto' uses 'search' for this {family}-looking model (no proven "
                    f"optimum, no certificate when nothing is found): {err}",
                    Notice,
                    stacklevel=3,
                )
            return "search", self.search_
        if method == "milp":
            return method, LinearMILP(self.view_, Z, self.scales_, threshold=self.goal_)
        if method == "tree":
            return method, TreeMILP(self.view_, Z, threshold=self.goal_)
        if method == "search":
            return method, self.search_
        if method in DICE_METHODS:
            engine = DiceRecourse(
                self.view_,
                Z,
                approved,
                method=method,
                threshold=self.goal_,
                random_state=self.random_state,
            )
            return method, engine
        raise ValueError(f"`method` must be one of {METHODS}, got {method!r}")

    # --------------------------------------------------------------------------------------------
    def explain(
        self, applicants: pd.DataFrame | pd.Series, *, constraints: Constraints | None = None
    ) -> list[RecourseResult]:
        """Recourse for each applicant (row), under the schema and optional per-query
        ``constraints``; one :class:`~cfx.recourse.result.RecourseResult` per row, in order."""
        if not hasattr(self, "engine_"):
            raise ValueError("this Recourse is not fitted yet; call fit(X_train) first")
        if constraints is not None and not isinstance(constraints, Constraints):
            raise TypeError(
                f"`constraints` must be a Constraints or None, got {type(constraints).__name__}"
            )
        if isinstance(applicants, pd.Series):  # one applicant
            applicants = applicants.to_frame().T.infer_objects()
        Z = self.codec_.to_codes(applicants)  # (n, d), validated
        check_not_refused(self.schema, Z, applicants.index, self.view_.refused)
        unread_notice(self.schema, applicants.columns, "applicants")
        if not applicants.index.is_unique:
            import warnings

            repeated = applicants.index[applicants.index.duplicated()].unique()[:5].tolist()
            warnings.warn(
                f"`applicants` repeat index labels ({repeated!r}): each result carries its "
                "row's label as `index`, so those rows' results share one (results are in row "
                "order); applicants.reset_index(drop=True) gives every row its own",
                Notice,
                stacklevel=2,
            )
        range_notice(self.schema, Z, applicants.index, self.scales_)
        schema = self.schema if constraints is None else constraints.apply(self.schema)
        max_changes = self.max_changes
        if constraints is not None and constraints.max_changes is not None:
            max_changes = constraints.max_changes
        t0 = time.perf_counter()
        p0 = self.view_.proba(Z)  # (n,) re-checked with the model itself with the results
        if constraints is not None:  # said of denied applicants, whose plans it concerns
            denied = p0 < self.threshold
            bounds_notice(outside_bounds(constraints, schema, Z[denied], applicants.index[denied]))
        share = (time.perf_counter() - t0) / max(1, len(Z))
        return [
            self._explain_one(z0, float(p), index, schema, max_changes, share)
            for z0, p, index in zip(Z, p0, applicants.index, strict=True)
        ]

    def counterfactual_frame(
        self,
        counterfactuals: RecourseResult | Sequence[RecourseResult] | Sequence[Counterfactual],
    ) -> pd.DataFrame:
        """The counterfactual applicants (``cf.values``, in the schema's terms) as a frame in
        the training frame's dtypes, one row per counterfactual in order: what the model was
        handed, so ``model.predict_proba(rec.counterfactual_frame(res))`` checks the plans
        with your own model.

        Results (one, or the list :meth:`explain` returns) give their counterfactuals with
        the index ``(applicant, rank)``: the applicant's row label and the plan's rank from 1,
        as :func:`~cfx.recourse.to_frame`'s ``index`` and ``rank`` columns, so each row says
        whose plan it is (an applicant without recourse has no rows). Counterfactuals alone
        are numbered from 0.
        """
        if not hasattr(self, "codec_"):
            raise ValueError("this Recourse is not fitted yet; call fit(X_train) first")
        wrong = TypeError(
            "`counterfactuals` must be a RecourseResult, a sequence of RecourseResult (as "
            "explain returns) or a sequence of Counterfactual, got "
            + (
                "one Counterfactual; pass [cf]"
                if isinstance(counterfactuals, Counterfactual)
                else type(counterfactuals).__name__
            )
        )
        if isinstance(counterfactuals, RecourseResult):
            items: list[object] = [counterfactuals]
        elif isinstance(counterfactuals, Iterable) and not isinstance(
            counterfactuals, Counterfactual | str
        ):
            items = list(counterfactuals)  # a generator is read once, here
        else:
            raise wrong
        index = None
        if items and all(isinstance(res, RecourseResult) for res in items):
            results = [res for res in items if isinstance(res, RecourseResult)]
            cfs = [cf for res in results for cf in res.counterfactuals]
            index = pd.MultiIndex.from_tuples(
                [(res.index, rank) for res in results for rank in range(1, len(res) + 1)],
                names=["applicant", "rank"],
            )
        elif all(isinstance(cf, Counterfactual) for cf in items):
            cfs = [cf for cf in items if isinstance(cf, Counterfactual)]
        else:
            kinds = sorted({type(item).__name__ for item in items})
            raise TypeError(
                "`counterfactuals` must be a RecourseResult, a sequence of RecourseResult (as "
                "explain returns) or a sequence of Counterfactual, not a mix: got "
                + ", ".join(kinds)
            )
        if not cfs:  # e.g. an infeasible result's: no rows, the columns' dtypes as ever
            return self.codec_.to_frame(np.empty((0, self.codec_.d)), index=index)
        rows = pd.DataFrame([dict(cf.values) for cf in cfs], columns=list(self.codec_.names))
        return self.codec_.to_frame(self.codec_.to_codes(rows, what="counterfactuals"), index=index)

    def _realise(self, z0: np.ndarray) -> Realise:
        if self.scm_ is None:
            return lambda A: A
        scm = self.scm_
        return lambda A: scm.propagate(z0, A)

    def _explain_one(
        self,
        z0: np.ndarray,
        p0: float,
        index: Hashable,
        schema: FeatureSchema,
        max_changes: int | None,
        seconds: float,
    ) -> RecourseResult:
        t0 = time.perf_counter()

        def done(
            status: Status, cfs: tuple[Counterfactual, ...], reason: str, prop: Proposal | None
        ) -> RecourseResult:
            return RecourseResult(
                index=index,
                status=status,
                proba=p0,
                counterfactuals=cfs,
                reason=reason,
                method=self.method_,
                seconds=seconds + time.perf_counter() - t0,
                min_cost=None if prop is None else prop.min_cost,
                max_proba=None if prop is None else prop.max_proba,
            )

        if p0 >= self.threshold:  # said in `reason` too: a CSV line's was blank
            return done("approved", (), "already approved; nothing to change", None)
        space = ActionSpace.build(schema, z0, self.scales_, max_changes, self.view_.refused)
        if not space.movable.any():  # a proof for every method: nothing may change
            why = (
                "no feature may change: every feature is immutable under these constraints, or "
                "its only allowed value is the applicant's own"
            )
            nothing = Proposal(actions=space.z0[None, :0], infeasible=True, max_proba=p0)
            return done("infeasible", (), why, nothing)
        realise = self._realise(z0)

        def evaluate(A: np.ndarray) -> np.ndarray:
            return self.view_.proba(realise(A))

        # with data support on, the search supplies the diverse candidates and the MILP its
        # optimum (and its proof when there is none); without, the MILP gives all k
        augment = self.method_ == "milp" and self.support > 0

        def accept(A: np.ndarray) -> np.ndarray:
            return self.support_.share(realise(A)) >= self.support - 1e-12

        if self.engine_ is self.search_:
            proposal = self.search_.propose(space, k=self.k, evaluate=evaluate, accept=accept)
        else:
            proposal = self.engine_.propose(space, k=1 if augment else self.k, evaluate=evaluate)
        if proposal.infeasible:
            return done("infeasible", (), proposal.reason, proposal)
        if self.method_ in DICE_METHODS:
            cfs = self._raw(space, p0, proposal.actions)
            usable = not all(_unusable(cf) for cf in cfs)
            reason = _dice_notes(cfs)
            if usable and len(cfs) < self.k:  # `reason` says why fewer than k (was blank)
                fewer = f"{len(cfs)} of {self.k} plans: DiCE returned no more"
                reason = f"{fewer}; {reason}" if reason else fewer
            if not usable:
                found = proposal.reason or "no usable counterfactual"
                reason = f"{found}; {reason}" if reason else found
            return done("recourse" if usable else "not_found", cfs, reason, proposal)
        actions = proposal.actions
        if augment:
            extra = self.search_.propose(space, k=self.k, evaluate=evaluate, accept=accept)
            actions = np.concatenate([actions, extra.actions])
        choice = self._choose(space, actions, evaluate, realise)
        if self.method_ == "tree" and self.support > 0 and choice.supported_found == 0:
            # the enumeration stops at two changes; look further for a supported action
            extra = self.search_.propose(space, k=self.k, evaluate=evaluate, accept=accept)
            if len(extra.actions):
                actions = np.concatenate([choice.actions, extra.actions])
                choice = self._choose(space, actions, evaluate, realise)
        cfs = self._checked(space, p0, choice.actions, choice.points, choice.support, realise)
        if not cfs:
            reason = proposal.reason or "no valid, non-redundant counterfactual was found"
            if choice.ruled_out:
                reason += (
                    " (with the causal model, plans whose consequences move an immutable "
                    "feature, or one against its direction or out of its allowed range, are "
                    "not offered)"
                )
            return done("not_found", (), reason, proposal)
        return done("recourse", cfs, self._fewer(len(cfs), choice), proposal)

    def _fewer(self, n: int, choice: Choice) -> str:
        """What to know about the ``n`` plans: that none reaches the data support (they are
        the best found by the same order), and why ``n``, not ``k`` (empty when neither applies)."""
        notes = []
        if self.support > 0 and choice.supported_found == 0:
            notes.append(
                f"no plan found reaches the data support (support={self.support:g}: the share "
                f"of the {N_NEIGHBORS} nearest training applicants the model approves); these "
                "are the best found in the same order (cost plus the plausibility term), and "
                "a larger k searches further"
            )
        hidden = choice.valid_found - n  # distinct valid feature sets not shown
        if n >= self.k:
            pass
        elif self.support > 0 and choice.supported_found > 0 and hidden > 0:
            notes.append(
                f"{n} of {self.k} plans: {hidden} more valid plan(s) with other features fall "
                f"below the data support (support={self.support:g}: the share of the "
                f"{N_NEIGHBORS} nearest training applicants the model approves); support=0 "
                "lists them"
            )
        elif self.method_ == "milp" and self.support == 0:
            # the MILP's diversity cuts rule out an earlier plan's supersets too
            notes.append(
                f"{n} of {self.k} plans: method 'milp' finds no other valid plan that leaves "
                "out a feature of every earlier plan (its diversity rule); method='search' "
                "also tries plans that add features to an earlier one"
            )
        elif self.method_ == "tree":
            notes.append(
                f"{n} of {self.k} plans: method 'tree' found no other valid plan with another "
                "set of features among the plans of up to two changes it enumerates (a budget "
                "of pairs) and, when none of those works, its leaf MILP; method='search' "
                "looks further"
            )
        else:
            notes.append(
                f"{n} of {self.k} plans: no other valid plan changing another set of features "
                "was found (the search is not exhaustive)"
            )
        return "; ".join(notes)

    def _choose(
        self, space: ActionSpace, actions: np.ndarray, evaluate: Evaluate, realise: Realise
    ) -> Choice:
        weight = float(self.plausibility_weight) if self.support > 0 else 0.0
        return choose(
            space,
            actions,
            k=self.k,
            evaluate=evaluate,
            realise=realise,
            threshold=self.goal_,
            support=self.support_,
            min_support=float(self.support),
            weight=weight,
            allowed=None if self.scm_ is None else self._consequences_allowed(space, realise),
        )

    def _consequences_allowed(
        self, space: ActionSpace, realise: Realise
    ) -> Callable[[np.ndarray], np.ndarray]:
        """Actions whose causal consequences keep the rules of the features they move: an
        immutable one (under the query's constraints) stays put, one with a direction moves
        only that way from the applicant's value (a plan that lowered savings, which may only
        grow, as a consequence of an action was offered before), and a numeric one stays in
        its allowed range (the schema's bounds, the query's and ``max_shift``: a consequence
        took y to 15 under a bound of 8, and shortened terms a bound kept from shortening)."""
        names = space.schema.names
        children = [names.index(c) for c in self.scm_.parents] if self.scm_ is not None else []
        z0 = space.z0

        def ok(A: np.ndarray) -> np.ndarray:
            moved = realise(A)
            keep = np.ones(len(A), dtype=bool)
            for j in children:
                went = moved[:, j] - z0[j]
                acted = np.abs(A[:, j] - z0[j]) > 1e-9
                direction = space.schema.features[j].direction
                if not space.movable[j]:
                    keep &= acted | (np.abs(went) <= 1e-9)
                    continue
                if space.numeric[j]:  # where it lands, unless it did not move
                    inside = (moved[:, j] >= space.lo[j] - 1e-9) & (
                        moved[:, j] <= space.hi[j] + 1e-9
                    )
                    keep &= acted | (np.abs(went) <= 1e-9) | inside
                if direction == "increase":
                    keep &= acted | (went >= -1e-9)
                elif direction == "decrease":
                    keep &= acted | (went <= 1e-9)
            return keep

        return ok

    # --------------------------------------------------------------------------------------------
    def _checked(
        self,
        space: ActionSpace,
        p0: float,
        actions: np.ndarray,
        points: np.ndarray,
        share: np.ndarray,
        realise: Realise,
    ) -> tuple[Counterfactual, ...]:
        """Re-check the chosen counterfactuals with ``model.predict_proba`` itself (valid, and
        undoing any single action loses validity) and build the results."""
        if len(actions) == 0:
            return ()
        changed = space.changed(actions)
        rows, feats = np.nonzero(changed & (changed.sum(axis=1) >= 2)[:, None])
        reverted = actions[rows].copy()
        reverted[np.arange(len(rows)), feats] = space.z0[feats]
        p = self.view_.check(np.concatenate([space.z0[None], points, realise(reverted)]))
        if p[0] >= self.threshold:  # the fast path disagreed with the model; trust the model
            return ()
        p_cf, p_rev = p[1 : len(points) + 1], p[len(points) + 1 :]
        out = []
        for i in range(len(actions)):
            redundant = bool((p_rev[rows == i] >= self.goal_).any())
            if p_cf[i] < self.goal_ or redundant:
                log.warning("dropping a counterfactual that failed the model re-check")
                continue
            out.append(self._counterfactual(space, p0, actions[i], points[i], p_cf[i], share[i]))
        return tuple(out)

    def _raw(
        self, space: ActionSpace, p0: float, actions: np.ndarray
    ) -> tuple[Counterfactual, ...]:
        """Counterfactuals as a method returned them (DiCE), scored but not post-processed,
        listed as cfx lists its own: valid ones that break no constraint first, then valid
        ones, then by cost (DiCE's order put an invalid or costlier one in ``res.plan``'s
        place; DiCE cannot enforce ``max_changes``)."""
        if len(actions) == 0:
            return ()
        p = self.view_.check(actions)
        share = self.support_.share(actions)
        found = [
            self._counterfactual(space, p0, a, a, float(pa), float(s))
            for a, pa, s in zip(actions, p, share, strict=True)
        ]
        return tuple(sorted(found, key=lambda cf: (_unusable(cf), not cf.valid, cf.cost)))

    def _counterfactual(
        self,
        space: ActionSpace,
        p0: float,
        action: np.ndarray,
        point: np.ndarray,
        proba: float,
        share: float,
    ) -> Counterfactual:
        codec = self.codec_
        phrases = self.phrases if self.phrases is not None else default_phrases(self.schema)
        costs = space.feature_costs(action[None])[0]
        acted = space.changed(action[None])[0]
        moved = space.changed(point[None])[0] & ~acted
        changes = []
        for is_action, mask in ((True, acted), (False, moved)):
            for j in np.flatnonzero(mask).tolist():
                spec = space.schema.features[j]
                before, after = codec.value(j, space.z0[j]), codec.value(j, point[j])
                changes.append(
                    Change(
                        feature=spec.name,
                        before=before,
                        after=after,
                        cost=float(costs[j]) if is_action else 0.0,
                        action=is_action,
                        text=describe(spec, before, after, phrases),
                    )
                )
        return Counterfactual(
            changes=tuple(changes),
            values={name: codec.value(j, point[j]) for j, name in enumerate(codec.names)},
            cost=float(costs.sum()),
            proba_before=p0,
            proba_after=float(proba),
            plausibility=float(share),
            distance=float(self.support_.distance(point[None])[0]),
            plan=plan(changes),
            valid=bool(proba >= self.goal_),
            # the point reached, consequences included: a consequence outside its range is one
            violations=tuple(space.violations(point)),
        )


def unread_notice(schema: FeatureSchema, columns: Iterable[Hashable], what: str) -> None:
    """Warn once (tagged ``cfx_unread_columns``) about the ``columns`` of ``what`` that are
    neither a feature of ``schema`` nor its target: only the schema's features reach the model
    and the plans, so a column left out of the schema (an id, or a feature forgotten in it)
    would otherwise be dropped in silence."""
    other = [str(c) for c in columns if c not in schema.names and c != schema.target]
    if other:
        log.warning(
            "`%s` has %s the schema does not name, not read: %s%s; only the schema's features "
            "reach the model and the plans",
            what,
            counted(len(other), "column"),
            ", ".join(other[:8]),
            ", ..." if len(other) > 8 else "",
            extra={"cfx_unread_columns": True},
        )


def range_notice(
    schema: FeatureSchema,
    Z: np.ndarray,
    index: pd.Index,
    scales: Scales | None = None,
    *,
    training: bool = False,
) -> None:
    """Warn once (tagged ``cfx_value_range``) about applicants' numeric values ``Z`` ``(n, d)``
    outside their feature's range (an age of 200, an installment-rate code 9): the schema's
    bounds, else, with the fitted ``scales``, the range of the training data. They are kept,
    since ranges bound where a plan may go, not who may ask, but the model has seen no one
    like them and a typo is likely. With ``training``, ``Z`` is the training data, checked
    against the schema's bounds (which it was not: plans stay inside them, so bounds the data
    crosses are likely wrong)."""
    found: list[str] = []
    count = 0
    for j, spec in enumerate(schema.features):
        if spec.kind != "numeric":
            continue
        low, high = spec.lower, spec.upper
        if scales is not None:  # the schema's bounds, else the training data's min and max
            low, high = float(scales.lower[j]), float(scales.upper[j])
        below = -np.inf if low is None else low
        above = np.inf if high is None else high
        outside = np.flatnonzero((Z[:, j] < below) | (Z[:, j] > above))
        count += len(outside)
        for i in outside[: max(0, 5 - len(found))].tolist():
            value = Z[i, j]
            shown = int(value) if spec.integer and float(value).is_integer() else float(value)
            found.append(
                f"row {_label(index[i])!r}: {spec.name} = {shown} ({low:g}..{high:g})"
                if low is not None and high is not None
                else f"row {_label(index[i])!r}: {spec.name} = {shown}"
            )
    if count and training:
        log.warning(
            "%d X_train value(s) lie outside their feature's bounds in the schema, e.g. %s; "
            "plans stay inside the bounds: check the schema's lower/upper against the data",
            count,
            "; ".join(found),
            extra={"cfx_value_range": True},
        )
    elif count:
        log.warning(
            "%d applicant value(s) lie outside their feature's range (the schema's bounds, "
            "else the training data's), e.g. %s; kept as given (ranges bound where a plan may "
            "go), but the model has seen no one like them: check them for typos",
            count,
            "; ".join(found),
            extra={"cfx_value_range": True},
        )


def outside_bounds(
    constraints: Constraints, schema: FeatureSchema, Z: np.ndarray, index: pd.Index
) -> list[str]:
    """The applicants' values ``Z`` ``(n, d)`` (rows labelled by ``index``) outside the query
    ``bounds`` of ``constraints`` (``schema`` is the query's), one description each."""
    found: list[str] = []
    for name in constraints.bounds:
        j = schema.names.index(name)
        spec = schema.features[j]
        if spec.kind != "numeric":
            continue  # the schema refused bounds on a category
        low = -np.inf if spec.lower is None else spec.lower
        high = np.inf if spec.upper is None else spec.upper
        for i in np.flatnonzero((Z[:, j] < low) | (Z[:, j] > high)).tolist():
            value = float(Z[i, j])
            away = (spec.direction == "increase" and value > high) or (
                spec.direction == "decrease" and value < low
            )
            found.append(
                f"row {_label(index[i])!r}: {name} = {value:g} outside [{low:g}, {high:g}]"
                + (f", and direction {spec.direction!r} keeps it there" if away else "")
            )
    return found


def bounds_notice(found: Sequence[str]) -> None:
    """Warn once (tagged ``cfx_query_bounds``) about denied applicants' values outside their
    query's bounds (:func:`outside_bounds`): bounds limit where a changed value may go, so a
    plan may keep the value as it is (a bank's limit given as a bound is not enforced on the
    applicant), and with a ``direction`` pointing away from the bounds the feature cannot
    move at all."""
    if found:
        log.warning(
            "%d applicant value(s) lie outside the bounds of `constraints`, e.g. %s. Bounds "
            "limit where a changed value may go, so a plan may leave such a value as it is; to "
            "hold plans to the bound, pass the applicant with the value moved into it and add "
            "that change to the plan",
            len(found),
            "; ".join(found[:5]),
            extra={"cfx_query_bounds": True},
        )


def _unusable(cf: Counterfactual) -> bool:
    """Misses the approval probability or breaks a constraint (only DiCE's plans can)."""
    return not cf.valid or bool(cf.violations)


def _dice_notes(cfs: Sequence[Counterfactual]) -> str:
    """Which of DiCE's plans (numbered as listed) miss the approval probability or break a
    constraint, and how; empty when none does. DiCE's plans are not pruned, so a reader of
    them (the CLI's text, a CSV's ``reason``) must be told."""
    notes = []
    for i, cf in enumerate(cfs, start=1):
        why = ([] if cf.valid else ["does not reach the approval probability"]) + [
            f"breaks a constraint ({v})" for v in cf.violations
        ]
        if why:
            notes.append(f"plan {i} {' and '.join(why)}")
    if not notes:
        return ""
    return "; ".join(notes) + " (DiCE's plans are not pruned; usable ones are listed first)"


def _backwards_notice(share: float, n: int) -> None:
    """A Notice that a model read with the default ``approved`` (class 1) approves ``share``
    of the ``n`` training applicants, fewer than half: a model of the probability of default
    reads that way, and its plans would be plans to be denied."""
    import warnings

    warnings.warn(
        f"the model approves {share:.0%} of the {n} applicants in X_train (P >= 0.5), taking "
        "its class 1 as approved (the default `approved`). If its class 1 means default (a "
        "model of the probability of default), it is read backwards: pass approved=0. If "
        "class 1 does mean approved, pass approved=1 to say so",
        Notice,
        stacklevel=3,
    )


def _label(row: object) -> object:
    """A row label as the user wrote it: ``400``, not ``np.int64(400)``."""
    return row.item() if isinstance(row, np.generic) else row


def default_phrases(schema: FeatureSchema) -> Mapping[str, Phrase]:
    """German Credit's wording for a schema of the German Credit features (the same names);
    none for any other schema, whose ``credit_amount`` need not be in DM."""
    from cfx.data.credit import german_schema

    return GERMAN_PHRASES if set(schema.names) == set(german_schema().names) else {}


def _check_scm_children(schema: FeatureSchema, scm: AdditiveSCM) -> None:
    """An error for an immutable feature that ``scm`` makes a child: an action on a parent
    would change what may not change (plans said so only as a consequence). A child with a
    direction rule is held to it by the selection (:meth:`Recourse._consequences_allowed`)."""
    stuck = [c for c in scm.parents if c in schema.names and not schema[c].mutable]
    if stuck:
        raise ValueError(
            f"`scm` makes immutable feature(s) {stuck!r} the child of "
            f"{[list(scm.parents[c]) for c in stuck]!r}: an action on a parent would change "
            "them; leave them out of `parents` or make them mutable in the schema"
        )


def check_not_refused(
    schema: FeatureSchema, Z: np.ndarray, index: pd.Index, refused: tuple[frozenset[int], ...]
) -> None:
    """An error naming the first applicant with a category the model fails on (found at
    fit: :meth:`~cfx.recourse.model.ModelView.read_refused`), before the model is called."""
    for j, codes in enumerate(refused):
        if not codes:
            continue
        bad = np.isin(Z[:, j], list(codes))
        if bad.any():
            spec = schema.features[j]
            first = int(np.flatnonzero(bad)[0])
            rows = first_rows(index, bad)
            raise ValueError(
                f"`applicants` rows {rows!r} have {spec.name} = "
                f"{spec.categories[int(Z[first, j])]!r}, a category the model fails on (no "
                "row of X_train has it, and the model refuses it, e.g. a OneHotEncoder with "
                "handle_unknown='error'); the model cannot score them"
            )


def _warn_unseen_categories(
    schema: FeatureSchema, Z: np.ndarray, refused: tuple[frozenset[int], ...]
) -> None:
    """A Notice naming the categories of mutable features no training row has that a plan
    can reach (``transitions`` may rule them out). Those the model takes, a plan may propose
    though the model never learnt them; those it refuses (``refused``: scikit-learn's
    OneHotEncoder by default refuses unknown categories) no plan proposes."""
    unseen: dict[str, list[str]] = {}
    out: dict[str, list[str]] = {}
    for j, spec in enumerate(schema.features):
        if spec.kind == "numeric" or not spec.mutable:
            continue
        seen = {spec.categories[int(c)] for c in np.unique(Z[:, j])}
        reachable = set(spec.categories)
        if spec.transitions is not None:  # only from a training row's category
            reachable = {t for c in seen for t in spec.transitions.get(c, ())}
        missing = [c for c in spec.categories if c not in seen and c in reachable]
        gone = [c for c in missing if spec.categories.index(c) in refused[j]]
        if gone:
            out[spec.name] = gone
        if len(gone) < len(missing):
            unseen[spec.name] = [c for c in missing if c not in gone]
    said = []
    if unseen:
        said.append(
            f"schema categories no row of X_train has: {unseen!r}. Plans may propose them, "
            "though the model never saw them: drop them from the schema, or for a categorical "
            "feature leave them out of its `transitions`, unless the model is meant to handle "
            "them"
        )
    if out:
        said.append(
            f"schema categories no row of X_train has and the model refuses (it fails on "
            f"them, e.g. a OneHotEncoder with handle_unknown='error'): {out!r}. No plan "
            "proposes them"
        )
    if said:
        import warnings

        warnings.warn("; ".join(said), Notice, stacklevel=3)
