"""Contract over every recourse method: deterministic, the user's model untouched, one result
per applicant in order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cfx.recourse import Recourse, RecourseResult, to_frame

CASES = [
    ("logistic", "milp"),
    ("logistic", "search"),
    ("gbm", "tree"),
    ("mlp", "search"),
    ("logistic", "dice-random"),
]


@pytest.mark.parametrize(("name", "method"), CASES)
def test_contract(german, split, credit_models, denied, name, method):
    model = credit_models[name]
    X_train = german.X.iloc[split[0]]
    before = model.predict_proba(X_train)
    params = model.get_params(deep=True)
    rows = denied[name].iloc[:2]
    runs = []
    for _ in range(2):
        rec = Recourse(model, german.schema, k=2, method=method, random_state=0).fit(X_train)
        runs.append(rec.explain(rows))
    first, second = runs
    assert [r.index for r in first] == list(rows.index)
    assert all(isinstance(r, RecourseResult) for r in first)
    for a, b in zip(first, second, strict=True):
        assert [cf.plan for cf in a.counterfactuals] == [cf.plan for cf in b.counterfactuals]
        assert [cf.cost for cf in a.counterfactuals] == [cf.cost for cf in b.counterfactuals]
    assert np.array_equal(model.predict_proba(X_train), before)
    assert model.get_params(deep=True).keys() == params.keys()


@pytest.mark.parametrize("name", ["logistic", "gbm", "mlp"])
def test_counterfactual_frame_hands_the_plans_to_your_model_as_it_was_trained(
    german, split, credit_models, denied, name
):
    """cf.values are in the schema's terms (categories as strings); the frame is what the
    model reads: the training dtypes, and the probabilities the plans were checked at."""
    X_train = german.X.iloc[split[0]]
    rec = Recourse(credit_models[name], german.schema, k=3).fit(X_train)
    results = rec.explain(denied[name].iloc[:3])
    cfs = [cf for res in results for cf in res.counterfactuals]
    frame = rec.counterfactual_frame(cfs)
    assert len(frame) == len(cfs) >= 3
    assert frame.dtypes.to_dict() == X_train.dtypes.to_dict()
    p = credit_models[name].predict_proba(frame)[:, 1]
    np.testing.assert_allclose(p, [cf.proba_after for cf in cfs], atol=1e-9)
    assert (p >= 0.5).all()
    assert len(rec.counterfactual_frame(results[0])) == len(results[0].counterfactuals)
    empty = rec.counterfactual_frame([])
    assert len(empty) == 0 and list(empty.columns) == list(german.schema.names)
    with pytest.raises(TypeError, match="a RecourseResult, a sequence of RecourseResult"):
        rec.counterfactual_frame(cfs[0])
    # explain's list as it is: each row says whose plan it is, as to_frame's index and rank
    whose = rec.counterfactual_frame(results)
    labels = denied[name].index[:3]
    assert list(whose.index.names) == ["applicant", "rank"]
    assert list(whose.index) == [
        (label, rank) for label, res in zip(labels, results, strict=True)
        for rank in range(1, len(res) + 1)
    ]  # fmt: skip
    pd.testing.assert_frame_equal(whose.reset_index(drop=True), frame)
    plans = to_frame(results).set_index(["index", "rank"])
    assert list(plans.index) == list(whose.index)  # every applicant here has recourse
    np.testing.assert_allclose(
        credit_models[name].predict_proba(whose)[:, 1], plans["proba_after"], atol=1e-9
    )
    with pytest.raises(TypeError, match="not a mix: got Counterfactual, RecourseResult"):
        rec.counterfactual_frame([results[0], cfs[0]])


def test_a_fitted_recourse_pickles_and_plans_as_before(german, split, credit_models, denied):
    """A fitted Recourse saved with pickle (as joblib does, to serve it) gives the same plans
    loaded back; it failed on the schema's read-only mappings."""
    import pickle

    rec = Recourse(credit_models["gbm"], german.schema).fit(german.X.iloc[split[0]])
    rows = denied["gbm"].iloc[:3]
    again = pickle.loads(pickle.dumps(rec))
    assert [r.plan for r in again.explain(rows)] == [r.plan for r in rec.explain(rows)]
