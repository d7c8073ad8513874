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


def test_dice_fractions_of_whole_number_features_are_rounded_once(german, split, credit_models):
    """DiCE may propose 24.5 months; the adapter rounds it as the model will see it (half to
    even), rather than tripping the applicants' whole-number check."""
    from cfx.recourse.dice import _codes

    rec = Recourse(credit_models["logistic"], german.schema).fit(german.X.iloc[split[0]])
    frame = german.X.iloc[[0, 1]].astype({"duration_in_month": "float64"})
    frame.iloc[:, frame.columns.get_loc("duration_in_month")] = [24.5, 11.6]
    codes = _codes(rec.view_, frame, "dice")
    j = list(rec.codec_.names).index("duration_in_month")
    assert codes[:, j].tolist() == [24.0, 12.0]
