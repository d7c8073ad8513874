"""Tree ensembles: enumeration and the MILP over leaves against brute force on a small GBM."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from cfx.data.schema import FeatureSchema, FeatureSpec
from cfx.recourse import Constraints, Recourse
from cfx.recourse.space import ActionSpace
from cfx.recourse.tree import TreeMILP

SCHEMA = FeatureSchema(
    features=(
        FeatureSpec("a", "numeric", lower=0, upper=20, integer=True),
        FeatureSpec("b", "numeric", lower=0, upper=20, integer=True, cost=2.0),
        FeatureSpec("c", "categorical", ("u", "v", "w"), cost=1.5),
    ),
    target="y",
)


@pytest.fixture(scope="module")
def small_gbm():
    rng = np.random.default_rng(0)
    n = 600
    X = pd.DataFrame(
        {
            "a": rng.integers(0, 21, n),
            "b": rng.integers(0, 21, n),
            "c": rng.choice(["u", "v", "w"], n),
        }
    )
    score = X["a"] + 0.7 * X["b"] + np.where(X["c"] == "w", 6, 0) + rng.normal(0, 2, n)
    y = (score > 18).astype(int)
    encoder = ColumnTransformer(
        [
            ("num", StandardScaler(), ["a", "b"]),
            ("cat", OneHotEncoder(categories=[["u", "v", "w"]]), ["c"]),
        ],
        sparse_threshold=0.0,
    )
    model = Pipeline(
        [
            ("encode", encoder),
            ("model", GradientBoostingClassifier(n_estimators=25, max_depth=2, random_state=0)),
        ]
    )
    model.fit(X, y)
    return model, X


def _brute_force(rec, model, z0, max_changes):
    """Cheapest approved point over the whole integer grid (the oracle)."""
    grid = np.array(list(itertools.product(range(21), range(21), range(3))), dtype=float)
    space = ActionSpace.build(SCHEMA, z0, rec.scales_, None)
    changed = space.changed(grid).sum(axis=1)
    grid = grid[(changed >= 1) & (changed <= max_changes)]
    p = model.predict_proba(rec.codec_.to_frame(grid))[:, 1]
    cost = space.cost(grid)
    ok = p >= 0.5
    return cost[ok].min() if ok.any() else np.inf


def test_tree_scores_reproduce_the_model(small_gbm):
    model, X = small_gbm
    rec = Recourse(model, SCHEMA, method="tree").fit(X)
    Z = rec.codec_.to_codes(X.iloc[:50])
    expected = model.decision_function(X.iloc[:50])
    assert np.allclose(rec.engine_.score(Z), expected, atol=1e-9)


def test_enumeration_and_milp_match_brute_force(small_gbm):
    model, X = small_gbm
    rec = Recourse(model, SCHEMA, method="tree", k=1, support=0.0).fit(X)
    engine: TreeMILP = rec.engine_
    applicants = pd.DataFrame({"a": [2, 5, 0, 9], "b": [3, 1, 0, 4], "c": ["u", "v", "u", "v"]})
    applicants = applicants[model.predict_proba(applicants)[:, 1] < 0.5]
    assert len(applicants) >= 3
    for z0 in rec.codec_.to_codes(applicants):
        space = ActionSpace.build(SCHEMA, z0, rec.scales_, None)
        values = engine.candidates(space)

        def evaluate(A):
            return rec.view_.proba(A)

        # enumeration: exact among actions with at most two changes
        _, best, _ = engine.enumerate(space, values, evaluate, limit=3)
        assert best == pytest.approx(_brute_force(rec, model, z0, 2), abs=1e-9)
        # the MILP over leaves: exact over any number of changes
        prop = engine.solve(space, values, k=1, evaluated=0)
        assert prop.min_cost == pytest.approx(_brute_force(rec, model, z0, 3), abs=1e-9)
        assert model.predict_proba(rec.codec_.to_frame(prop.actions))[0, 1] >= 0.5


def test_milp_certifies_infeasibility(small_gbm):
    model, X = small_gbm
    rec = Recourse(model, SCHEMA, method="tree", support=0.0).fit(X)
    applicant = pd.DataFrame({"a": [0], "b": [0], "c": ["u"]})
    # only b may move, and only up to 2: nothing reaches the threshold
    limits = Constraints(immutable=("a", "c"), bounds={"b": (None, 2)})
    (res,) = rec.explain(applicant, constraints=limits)
    assert res.status == "infeasible"
    assert "no allowed action reaches P(approved) = 0.5" in res.reason
    # the same with three features free but at most one change: proven by enumeration
    limits = Constraints(bounds={"a": (None, 3), "b": (None, 3)}, immutable=("c",), max_changes=1)
    (res,) = rec.explain(applicant, constraints=limits)
    assert res.status == "infeasible" and "enumerated" in res.reason


def test_german_gbm_results_are_valid_and_allowed(german, split, credit_models, denied):
    model = credit_models["gbm"]
    rec = Recourse(model, german.schema).fit(german.X.iloc[split[0]])
    assert rec.method_ == "tree"
    results = rec.explain(denied["gbm"].iloc[:6])
    for res in results:
        assert res.status == "recourse"
        rows = pd.DataFrame([dict(cf.values) for cf in res.counterfactuals])
        rows = rows.astype(german.X.dtypes.to_dict())
        assert (model.predict_proba(rows)[:, 1] >= 0.5).all()
        assert all(cf.violations == () for cf in res.counterfactuals)


def test_priced_category_changes_keep_the_tree_methods_exact(small_gbm):
    """c -> w priced at a tenth of a step: the MILP over leaves still finds the brute
    force's cheapest plan under the priced costs, and for some applicant that optimum is
    cheaper than the unpriced one (at 1.5 a change, c -> w was never part of its best plan)."""
    model, X = small_gbm
    priced = SCHEMA.replace("c", transition_costs={"u": {"w": 0.1}, "v": {"w": 0.1}})
    applicants = pd.DataFrame({"a": [2, 5, 0, 9], "b": [3, 1, 0, 4], "c": ["u", "v", "u", "v"]})
    applicants = applicants[model.predict_proba(applicants)[:, 1] < 0.5]
    cheaper = 0
    for schema in (SCHEMA, priced):
        rec = Recourse(model, schema, method="tree", k=1, support=0.0).fit(X)
        optima = []
        for z0 in rec.codec_.to_codes(applicants):
            space = ActionSpace.build(schema, z0, rec.scales_, None)
            values = rec.engine_.candidates(space)
            prop = rec.engine_.solve(space, values, k=1, evaluated=0)
            grid = np.array(list(itertools.product(range(21), range(21), range(3))), dtype=float)
            grid = grid[space.changed(grid).any(axis=1)]
            ok = model.predict_proba(rec.codec_.to_frame(grid))[:, 1] >= 0.5
            assert prop.min_cost == pytest.approx(space.cost(grid)[ok].min(), abs=1e-9)
            optima.append(prop.min_cost)
        if schema is SCHEMA:
            free = optima
        else:
            cheaper = sum(p < f - 1e-9 for p, f in zip(optima, free, strict=True))
    assert cheaper >= 1


def test_an_exponential_loss_booster_is_not_solved_on_the_wrong_scale():
    """loss='exponential' gives p = sigmoid(2 F): the tree MILP set its bar on F and proved
    "no recourse" at a target the search reached."""
    import warnings

    rng = np.random.default_rng(0)
    X = pd.DataFrame({f"x{i}": rng.integers(0, 2, 200).astype(float) for i in range(3)})
    y = ((X.sum(axis=1) + rng.normal(0, 0.7, 200)) > 1.5).astype(int)
    specs = tuple(FeatureSpec(f"x{i}", "numeric", lower=0, upper=1, integer=True) for i in range(3))
    schema = FeatureSchema(specs, "y")
    model = GradientBoostingClassifier(loss="exponential", n_estimators=20, random_state=0)
    model.fit(X, y)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rec = Recourse(model, schema, support=0.0, target_proba=0.7).fit(X)
    assert rec.method_ == "search"
    assert any("logistic of its decision_function" in str(w.message) for w in caught)
    with pytest.raises(ValueError, match="`method='tree'` needs a gradient-boosting classifier"):
        Recourse(model, schema, method="tree", support=0.0).fit(X)
