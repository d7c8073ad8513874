"""DiCE behind the same API: raw output, scored and checked, never post-processed."""

from __future__ import annotations

import pandas as pd

from cfx.recourse import Constraints, Recourse


def test_dice_random_through_the_adapter(german, split, credit_models, denied):
    rec = Recourse(credit_models["logistic"], german.schema, method="dice-random", k=2)
    rec.fit(german.X.iloc[split[0]])
    (res,) = rec.explain(denied["logistic"].iloc[[0]])
    assert res.method == "dice-random"
    assert res.status == "recourse" and res.counterfactuals  # seeded: not an empty loop below
    for cf in res.counterfactuals:
        assert cf.valid == (cf.proba_after >= 0.5)
        # immutables are never passed to DiCE as features to vary
        assert not set(cf.features) & set(german.schema.immutable)
    # listed as cfx lists its own plans: valid first, then cheapest (DiCE's order was kept)
    order = [(not cf.valid, cf.cost) for cf in res.counterfactuals]
    assert order == sorted(order)
    many = Recourse(credit_models["logistic"], german.schema, method="dice-random", k=6)
    (more,) = many.fit(german.X.iloc[split[0]]).explain(denied["logistic"].iloc[[1]])
    order = [(not cf.valid, cf.cost) for cf in more.counterfactuals]
    assert len(order) > 2 and order == sorted(order)


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


def test_dice_is_asked_to_vary_only_what_the_applicant_may_change(hand):
    """The adapter's `features_to_vary` and `permitted_range` (a mutant that varied every
    feature passed the test above, which allows 'not_found' and then checks no plan)."""
    from dataclasses import replace

    from cfx.data.schema import FeatureSchema
    from cfx.recourse.space import ActionSpace

    model, schema, X = hand
    rec = Recourse(model, schema, method="dice-random", support=0.0).fit(X)
    # x2 fixed by the schema; the applicant is x1 = 2 (0..10), x2 = 1, c = "b" (a/b/c)
    fixed = FeatureSchema(
        features=tuple(replace(f, mutable=False) if f.name == "x2" else f for f in schema.features),
        target=schema.target,
    )
    applicant = pd.DataFrame({"x1": [2], "x2": [1.0], "c": ["b"]})
    z0 = rec.codec_.to_codes(applicant)[0]
    space = ActionSpace.build(fixed, z0, rec.scales_, None)
    vary, ranges = rec.engine_.permitted(space)
    assert vary == ["x1", "c"]  # never x2
    assert ranges == {"x1": [0.0, 10.0], "c": ["b", "a", "c"]}  # the applicant's own first


def test_dice_ranges_reach_back_to_an_applicant_outside_the_allowed_range(hand):
    """Known answer: x1 allowed in 3..8 (bounds tighter than the schema's 0..10). DiCE's range
    must still hold the query itself, so an applicant at x1 = 2 gets [2, 8] (not [3, 8]) and
    one at x1 = 9 gets [3, 9]."""
    from dataclasses import replace

    from cfx.data.schema import FeatureSchema
    from cfx.recourse.space import ActionSpace

    model, schema, X = hand
    rec = Recourse(model, schema, method="dice-random", support=0.0).fit(X)
    bounded = FeatureSchema(
        features=tuple(
            replace(f, lower=3, upper=8) if f.name == "x1" else f for f in schema.features
        ),
        target=schema.target,
    )
    for x1, want in [(2, [2.0, 8.0]), (9, [3.0, 9.0])]:
        applicant = pd.DataFrame({"x1": [x1], "x2": [1.0], "c": ["b"]})
        space = ActionSpace.build(bounded, rec.codec_.to_codes(applicant)[0], rec.scales_, None)
        _, ranges = rec.engine_.permitted(space)
        assert ranges["x1"] == want


def test_kdtree_finding_nothing_says_why(hand):
    """dice-kdtree draws training applicants who share the immutable values; no training row
    has x2 = 1.0, so nothing can be found, and the reason says so (it was DiCE's 'kindly
    check your configuration')."""
    model, schema, X = hand
    rec = Recourse(model, schema, method="dice-kdtree", support=0.0).fit(X)
    applicant = pd.DataFrame({"x1": [1], "x2": [1.0], "c": ["a"]})  # logit -1.7: denied
    (res,) = rec.explain(applicant, constraints=Constraints(immutable=("x2",)))
    assert res.status == "not_found"
    assert "dice-kdtree proposes only training applicants who share" in res.reason


def test_fewer_dice_plans_than_k_are_said_in_the_reason(hand):
    """dice-kdtree returned 1 plan of 3 with a blank reason, where the README promises the
    reason explains fewer than k plans (session 45 audit)."""
    model, schema, X = hand
    rec = Recourse(model, schema, method="dice-kdtree", support=0.0, k=50).fit(X)
    (res,) = rec.explain(pd.DataFrame({"x1": [1], "x2": [1.0], "c": ["a"]}))
    n = len(res.counterfactuals)
    assert res.status == "recourse" and 0 < n < 50
    assert res.reason.startswith(f"{n} of 50 plans: DiCE returned no more")


def test_dice_leaves_the_callers_random_states_and_repeats_its_plans(
    german, split, credit_models, denied
):
    """dice-random reseeded Python's and numpy's global states with its random_seed (every
    explain reset the caller's draws); dice-genetic drew from them unseeded, so the same call
    gave other plans."""
    import random

    import numpy as np

    legacy = np.random  # the global state DiCE draws from, which a caller may use too
    applicant = denied["logistic"].iloc[[0]]
    for method in ("dice-random", "dice-genetic"):
        rec = Recourse(credit_models["logistic"], german.schema, method=method, k=2)
        rec.fit(german.X.iloc[split[0]])
        random.seed(7)
        legacy.seed(7)
        expected = (random.random(), legacy.rand())
        random.seed(7)
        legacy.seed(7)
        (first,) = rec.explain(applicant)
        assert (random.random(), legacy.rand()) == expected, method
        legacy.rand(5)  # the global states elsewhere: the plans do not follow them
        (again,) = rec.explain(applicant)
        plans = [[(c.features, c.cost) for c in r.counterfactuals] for r in (first, again)]
        assert plans[0] == plans[1] and plans[0], method


def test_dice_plans_that_break_a_constraint_are_said_and_never_recommended(hand):
    """DiCE cannot hold `max_changes`: an audit got status 'recourse' and, as the plan, three
    changes under max_changes=2, with nothing in the text or CSV saying so."""
    model, schema, X = hand
    rec = Recourse(model, schema, method="dice-random", support=0.0, k=4).fit(X)
    applicants = pd.DataFrame({"x1": [1, 2, 0, 1], "x2": [1.0, 0.5, 1.5, 0.2], "c": ["a"] * 4})
    broke = 0
    for res in rec.explain(applicants, constraints=Constraints(max_changes=1)):
        bad = [i for i, cf in enumerate(res.counterfactuals, 1) if cf.violations]
        broke += len(bad)
        for i in bad:
            assert f"plan {i} breaks a constraint (changes " in res.reason
        usable = [cf for cf in res.counterfactuals if cf.valid and not cf.violations]
        assert (res.status == "recourse") == bool(usable)
        if usable:  # the recommended plan is one of them, listed first
            assert res.counterfactuals[0] is usable[0] and res.plan == usable[0].plan
        else:  # a heuristic found none: not worded as a proof that there is none
            assert res.status == "not_found"
            assert res.plan.startswith("no plan found under these constraints")
    assert broke  # the case is exercised
