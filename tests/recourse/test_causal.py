"""Causal recourse: interventions propagate to descendants; only interventions cost."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cfx.data.schema import FeatureSchema, FeatureSpec
from cfx.recourse import AdditiveSCM, Recourse

SCHEMA = FeatureSchema(
    features=(
        FeatureSpec("x", "numeric", lower=0, upper=10, integer=True),
        FeatureSpec("y", "numeric", lower=0, upper=30, integer=True),
    ),
    target="t",
)


class ApprovesHighY:
    """Approved when y >= 9.5 (y alone matters)."""

    def predict_proba(self, X):
        p = 1.0 / (1.0 + np.exp(-(X["y"].to_numpy(float) - 9.5)))
        return np.stack([1.0 - p, p], axis=1)


def _train():
    x = np.tile(np.arange(0, 11), 3)
    noise = np.repeat([-1, 0, 1], 11)
    return pd.DataFrame({"x": x, "y": 2 * x + 1 + noise})


def test_acting_upstream_is_cheaper_and_costs_only_the_intervention():
    X = _train()  # MAD of x and of y: 3 and 6
    scm = AdditiveSCM({"y": ("x",)}, equations={"y": lambda parents: 2.0 * parents["x"]})
    rec = Recourse(ApprovesHighY(), SCHEMA, scm=scm, support=0.0, k=2).fit(X)
    assert rec.method_ == "search"
    # x = 1, y = 3 (noise u = 1): do(x = 5) gives y = 11 (approved); do(x = 4) gives y = 9
    (res,) = rec.explain(pd.DataFrame({"x": [1], "y": [3]}))
    best = res.counterfactuals[0]
    assert best.features == ("x",) and best.values["x"] == 5 and best.values["y"] == 11
    (consequence,) = [c for c in best.changes if not c.action]
    assert consequence.feature == "y" and consequence.cost == 0.0
    assert best.cost == pytest.approx(4 / 3)  # |5 - 1| / MAD(x) = 4 / 3, y is free
    assert "as a consequence" in best.plan
    # acting on y directly is the other option: do(y = 10), cost 7 / 6
    other = res.counterfactuals[1]
    assert other.features == ("y",) and other.values["y"] == 10 and other.values["x"] == 1


def test_linear_mechanism_is_fitted_and_user_object_untouched():
    X = _train()
    scm = AdditiveSCM({"y": ("x",)})
    rec = Recourse(ApprovesHighY(), SCHEMA, scm=scm).fit(X)
    assert not scm.fitted_
    intercept, slope = rec.scm_.coef_["y"]
    assert slope == pytest.approx(2.0) and intercept == pytest.approx(1.0)


def test_descendants_whose_parents_do_not_move_stay_where_the_applicant_has_them():
    """Propagation clips a moved descendant to its range; one whose parents did not move is
    the applicant's own value, even outside the range (an applicant may be outside it)."""
    X = _train()
    scm = AdditiveSCM({"y": ("x",)}, equations={"y": lambda parents: 2.0 * parents["x"]})
    rec = Recourse(ApprovesHighY(), SCHEMA, scm=scm, support=0.0).fit(X)
    z0 = np.array([1.0, 35.0])  # y = 35 lies above its range 0..30
    assert rec.scm_.propagate(z0, z0[None]).tolist() == [[1.0, 35.0]]  # nothing moved
    # do(x = 3) moves y by 2 x 2 = 4, to 39, clipped to 30
    assert rec.scm_.propagate(z0, np.array([[3.0, 35.0]])).tolist() == [[3.0, 30.0]]


def test_cycles_and_bad_methods_are_errors():
    with pytest.raises(ValueError, match="cycle"):
        AdditiveSCM({"a": ("b",), "b": ("a",)})
    with pytest.raises(ValueError, match="method='search'"):
        Recourse(ApprovesHighY(), SCHEMA, method="milp", scm=AdditiveSCM({"y": ("x",)})).fit(
            _train()
        )


def test_german_credit_example(german, split, credit_models, denied):
    scm = AdditiveSCM(
        {"duration_in_month": ("credit_amount",), "present_residence_since": ("age_in_years",)}
    )
    rec = Recourse(credit_models["logistic"], german.schema, scm=scm).fit(german.X.iloc[split[0]])
    slope = rec.scm_.coef_["duration_in_month"][1]
    assert 0.001 < slope < 0.005  # about 2.7 months per 1,000 DM
    for res in rec.explain(denied["logistic"].iloc[:6]):
        assert res.status == "recourse"
        for cf in res.counterfactuals:
            assert cf.cost == pytest.approx(sum(c.cost for c in cf.changes if c.action))
            for c in cf.changes:
                if not c.action:
                    assert c.feature in ("duration_in_month", "present_residence_since")


class ApprovesHighX:
    """Approved when x >= 5.5 (x alone matters)."""

    def predict_proba(self, X):
        p = 1.0 / (1.0 + np.exp(-4.0 * (X["x"].to_numpy(float) - 5.5)))
        return np.stack([1.0 - p, p], axis=1)


def test_consequences_keep_a_childs_direction_and_immutable_children_are_refused():
    """y falls as x rises; y may only increase. do(x = 6) would lower y from 16 to 8 'as a
    consequence', which was offered without a violation; now it is not offered (holding y
    up is no change the model needs, so it is pruned as redundant: no plan is left). An
    immutable child is an error at fit (plans moved it as a consequence)."""
    X = _train()
    scm = AdditiveSCM({"y": ("x",)}, equations={"y": lambda parents: 20.0 - 2.0 * parents["x"]})
    rising = SCHEMA.replace("y", direction="increase")
    rec = Recourse(ApprovesHighX(), rising, scm=scm, support=0.0, k=3).fit(X)
    (res,) = rec.explain(pd.DataFrame({"x": [2], "y": [16]}))
    assert res.status == "not_found" and res.counterfactuals == ()
    assert "consequences move an immutable feature, or one against its direction" in res.reason
    free = Recourse(ApprovesHighX(), SCHEMA, scm=scm, support=0.0).fit(X)
    (plain,) = free.explain(pd.DataFrame({"x": [2], "y": [16]}))
    assert plain.counterfactuals[0].values == {"x": 6, "y": 8}  # what the rule now rules out
    with pytest.raises(ValueError, match=r"makes immutable feature\(s\) \['y'\] the child of"):
        Recourse(ApprovesHighX(), SCHEMA.replace("y", mutable=False), scm=scm).fit(X)


def test_pruning_keeps_a_change_the_consequence_rule_needs():
    """do(x = 6, y = 17) is approved (the model reads x alone) and keeps y from falling; the
    y change looked redundant to the pruning, which undid it, and the x-only plan left was
    then refused for its consequence."""
    from cfx.recourse.select import prune
    from cfx.recourse.space import ActionSpace

    X = _train()
    scm = AdditiveSCM({"y": ("x",)}, equations={"y": lambda parents: 20.0 - 2.0 * parents["x"]})
    rising = SCHEMA.replace("y", direction="increase")
    rec = Recourse(ApprovesHighX(), rising, scm=scm, support=0.0).fit(X)
    z0 = np.array([2.0, 16.0])
    space = ActionSpace.build(rising, z0, rec.scales_, None)
    realise = rec._realise(z0)
    allowed = rec._consequences_allowed(space, realise)

    def evaluate(A):
        return rec.view_.proba(realise(A))

    both = np.array([[6.0, 17.0]])
    assert allowed(both).tolist() == [True] and allowed(np.array([[6.0, 16.0]])).tolist() == [False]
    assert prune(space, both, evaluate, 0.5).tolist() == [[6.0, 16.0]]  # the rule unseen
    assert prune(space, both, evaluate, 0.5, allowed).tolist() == [[6.0, 17.0]]


def test_consequences_stay_inside_the_bounds_and_max_shift():
    """do(x = 7) took y from 3 to 15 as a consequence under a query bound of 8, and w by 12
    under max_shift=3, with no violation reported."""
    from cfx.recourse import Constraints

    schema = FeatureSchema(
        features=(
            FeatureSpec("x", "numeric", lower=0, upper=10, integer=True),
            FeatureSpec("y", "numeric", lower=0, upper=30, integer=True),
            FeatureSpec("w", "numeric", lower=0, upper=30, integer=True, max_shift=3),
        ),
        target="t",
    )
    x = np.tile(np.arange(0, 11), 3)
    X = pd.DataFrame({"x": x, "y": 2 * x + 1, "w": 2 * x + 1})
    doubled = {"y": lambda parents: 2.0 * parents["x"], "w": lambda parents: 2.0 * parents["x"]}
    scm = AdditiveSCM({"y": ("x",), "w": ("x",)}, equations=doubled)
    rec = Recourse(ApprovesHighX(), schema, scm=scm, support=0.0, k=3).fit(X)
    applicant = pd.DataFrame({"x": [1], "y": [3], "w": [3]})
    # approval needs x >= 6, whose consequences are y = w = 13: outside both rules
    (res,) = rec.explain(applicant, constraints=Constraints(bounds={"y": (None, 8)}))
    assert res.status == "not_found" and res.counterfactuals == ()
    assert "out of its allowed range" in res.reason
    loose = schema.replace("w", max_shift=None)
    rec = Recourse(ApprovesHighX(), loose, scm=scm, support=0.0, k=1).fit(X)
    (res,) = rec.explain(applicant)  # no bound on y, none on w: offered, no violation
    assert res.counterfactuals[0].values == {"x": 6, "y": 13, "w": 13}  # 2 x + its own 1
    assert res.counterfactuals[0].violations == ()


def test_an_equation_that_is_no_function_or_gives_other_rows_is_named():
    """A string for an equation passed __init__ and fit and failed at explain as "'str'
    object is not callable"; one returning another length failed in numpy's broadcast
    (session-55 audit)."""
    with pytest.raises(TypeError, match=r"`equations\['y'\]` must be a function .* got str"):
        AdditiveSCM({"y": ("x",)}, equations={"y": "2 * x"})
    scm = AdditiveSCM({"y": ("x",)}, equations={"y": lambda parents: np.ones(3)})
    rec = Recourse(ApprovesHighY(), SCHEMA, scm=scm, support=0.0).fit(_train())
    with pytest.raises(ValueError, match=r"`equations\['y'\]` must return one value per row"):
        rec.explain(pd.DataFrame({"x": [1], "y": [3]}))


def test_an_equation_that_gives_nan_is_named_not_read_as_no_consequence():
    """A NaN child value failed the "moved" test, so the child stayed at the applicant's
    value: do(x = 5) silently left y at 3 and the plan acting on x was never found (session
    57; an earlier audit's left-alone item)."""
    undefined_above_3 = {
        "y": lambda parents: np.where(parents["x"] <= 3, 2.0 * parents["x"], np.nan)
    }
    scm = AdditiveSCM({"y": ("x",)}, equations=undefined_above_3)
    rec = Recourse(ApprovesHighY(), SCHEMA, scm=scm, support=0.0).fit(_train())
    with pytest.raises(
        ValueError,
        match=r"`equations\['y'\]` must return finite values, got nan "
        r"for the parents \{'x': 4\}",
    ):
        rec.explain(pd.DataFrame({"x": [1], "y": [3]}))
