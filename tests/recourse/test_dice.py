"""DiCE behind the same API: raw output, scored and checked, never post-processed."""

from __future__ import annotations

from cfx.recourse import Recourse


def test_dice_random_through_the_adapter(german, split, credit_models, denied):
    rec = Recourse(credit_models["logistic"], german.schema, method="dice-random", k=2)
    rec.fit(german.X.iloc[split[0]])
    (res,) = rec.explain(denied["logistic"].iloc[[0]])
    assert res.method == "dice-random"
    assert res.status in ("recourse", "not_found")
    for cf in res.counterfactuals:
        assert cf.valid == (cf.proba_after >= 0.5)
        # immutables are never passed to DiCE as features to vary
        assert not set(cf.features) & set(german.schema.immutable)
