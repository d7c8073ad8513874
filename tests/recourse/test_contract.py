"""Contract over every recourse method: deterministic, the user's model untouched, one result
per applicant in order."""

from __future__ import annotations

import numpy as np
import pytest

from cfx.recourse import Recourse, RecourseResult

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
