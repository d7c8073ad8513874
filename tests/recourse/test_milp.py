"""The exact MILP for linear/logistic models: known answers, certificates, German Credit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cfx.errors import Notice
from cfx.recourse import Constraints, Recourse


def _applicant(x1=2, x2=1.0, c="a"):
    return pd.DataFrame({"x1": [x1], "x2": [x2], "c": [c]})


def test_known_answer_is_the_closed_form_optimum(hand):
    # logit(x0) = -3.2 + 1 + 1 = -1.2, so the action must add 1.2 log-odds. Gain per unit of
    # cost: x2 1.0 / 1.5, x1 0.5 / 1 (whole steps), c 2.5 / 5. The cheapest is x2 alone:
    # x2 = 1 + 1.2 = 2.2 at cost 1.5 * 1.2 = 1.8 (MAD of both numeric features is 1).
    model, schema, X = hand
    rec = Recourse(model, schema, k=3, support=0.0).fit(X)
    assert rec.method_ == "milp"
    (res,) = rec.explain(_applicant())
    assert res.status == "recourse"
    best = res.counterfactuals[0]
    assert best.features == ("x2",)
    assert best.values["x2"] == pytest.approx(2.2, abs=1e-6)
    assert best.cost == pytest.approx(1.8, abs=1e-6)
    assert res.min_cost == pytest.approx(1.8, abs=1e-6)
    assert best.proba_after >= 0.5 > res.proba
    # the next exact optima under "not a superset of an earlier feature set" cuts:
    # x1 alone needs 3 whole steps (x1 = 5, cost 3); then c -> "c" (cost 5)
    second, third = res.counterfactuals[1:]
    assert second.features == ("x1",) and second.values["x1"] == 5
    assert second.cost == pytest.approx(3.0)
    assert third.features == ("c",) and third.values["c"] == "c"
    assert third.cost == pytest.approx(5.0)
    assert "from 1 to 2.2" in best.plan


def test_max_changes_and_per_query_costs_change_the_answer(hand):
    model, schema, X = hand
    rec = Recourse(model, schema, k=1, support=0.0).fit(X)
    # x2 at cost 4 per unit: two whole x1 steps (+1.0, cost 2) plus x2 + 0.2 (cost 0.8) = 2.8
    # beat x1 alone (3 steps, cost 3) and x2 alone (cost 4.8)
    (res,) = rec.explain(_applicant(), constraints=Constraints(costs={"x2": 4.0}))
    best = res.counterfactuals[0]
    assert best.features == ("x1", "x2")
    assert best.values["x1"] == 4 and best.values["x2"] == pytest.approx(1.2, abs=1e-6)
    assert best.cost == pytest.approx(2.8, abs=1e-6)
    # x2 may only decrease (which never helps): x1 again
    (res,) = rec.explain(_applicant(), constraints=Constraints(direction={"x2": "decrease"}))
    assert res.counterfactuals[0].features == ("x1",)


def test_infeasible_case_is_certified_not_raised(hand):
    model, schema, X = hand
    rec = Recourse(model, schema, support=0.0).fit(X)
    limits = Constraints(immutable=("x2", "c"), bounds={"x1": (None, 3)})
    (res,) = rec.explain(_applicant(), constraints=limits)
    # the best allowed action is x1 = 3: logit -3.2 + 1.5 + 1 = -0.7, p = 0.332
    assert res.status == "infeasible" and res.counterfactuals == ()
    assert res.max_proba == pytest.approx(1 / (1 + np.exp(0.7)), abs=1e-9)
    assert "0.332" in res.reason and "MILP is infeasible" in res.reason
    assert "`x2` is immutable" in res.reason  # the binding constraint is named
    assert "no recourse under these constraints" in res.plan


def test_a_categorys_gain_is_relative_to_the_applicants_own_category(hand):
    model, schema, X = hand
    rec = Recourse(model, schema, support=0.0).fit(X)
    # logit = -3.2 + 0 + 0.5 + 0.4 = -2.3 with x1 and x2 frozen; c: b -> c adds 2.5 - 0.4 = 2.1
    # (not 2.5) < 2.3: infeasible, the best reachable p is s(-0.2)
    (res,) = rec.explain(
        _applicant(x1=0, x2=0.5, c="b"), constraints=Constraints(immutable=("x1", "x2"))
    )
    assert res.status == "infeasible"
    assert res.max_proba == pytest.approx(1 / (1 + np.exp(0.2)), abs=1e-9)


def test_binding_constraints_are_named_largest_first(hand):
    model, schema, X = hand
    rec = Recourse(model, schema, support=0.0).fit(X)
    limits = Constraints(immutable=("x2", "c"), bounds={"x1": (None, 3)})
    (res,) = rec.explain(_applicant(), constraints=limits)
    # log-odds withheld: x2 9.0 (1 -> 10 at 1.0 each), x1 3.5 (4.0 free vs 0.5 allowed), c 2.5
    r = res.reason
    assert r.index("`x2`") < r.index("`x1`") < r.index("`c`")
    # in words a credit team reads ("Binding:" is the optimiser's)
    assert "What holds it back most: `x2` is immutable" in r


def test_max_changes_certificate(hand):
    model, schema, X = hand
    rec = Recourse(model, schema, support=0.0).fit(X)
    # one change allowed, x2 and c frozen, x1 capped at 4: p stays below 0.5
    limits = Constraints(immutable=("x2", "c"), bounds={"x1": (None, 4)}, max_changes=1)
    (res,) = rec.explain(_applicant(), constraints=limits)
    assert res.status == "infeasible"


def test_max_changes_certificate_reports_the_best_single_change_and_what_lifting_gives(hand):
    model, schema, X = hand
    rec = Recourse(model, schema, support=0.0).fit(X)
    limits = Constraints(
        immutable=("c",), bounds={"x1": (None, 4), "x2": (None, 1.5)}, max_changes=1
    )
    (res,) = rec.explain(_applicant(), constraints=limits)
    # logit -1.2; x1 -> 4 adds 1.0, x2 -> 1.5 adds 0.5. One change: the best is x1, p = s(-0.2);
    # both would reach s(0.3) = 0.574
    assert res.status == "infeasible"
    assert res.max_proba == pytest.approx(1 / (1 + np.exp(0.2)), abs=1e-9)
    assert "at most 1 change (changing all 2 features that could raise it: p = 0.574)" in res.reason
    # lifting counts only max_changes features: c freed, still one change, c -> "c" alone adds
    # 2.5, p = s(-1.2 + 2.5) = s(1.3) = 0.786
    assert "`c` is immutable (lifting that alone: up to p = 0.786)" in res.reason


def test_the_certificate_blames_a_direction_only_when_it_rules_out_the_way_that_helps(hand):
    """x2 may only increase, which helps, under a cap of 1.5: the certificate said "`x2` may
    only increase", where the cap is what holds it back (session 50 audit)."""
    model, schema, X = hand
    rec = Recourse(model, schema, support=0.0).fit(X)
    capped = Constraints(
        immutable=("c",), bounds={"x1": (None, 3), "x2": (None, 1.5)}, direction={"x2": "increase"}
    )
    (res,) = rec.explain(_applicant(), constraints=capped)  # logit -1.2 + 0.5 + 0.5 < 0
    assert res.status == "infeasible"
    assert "`x2` must stay in [" in res.reason and "may only increase" not in res.reason
    down = Constraints(immutable=("c",), bounds={"x1": (None, 3)}, direction={"x2": "decrease"})
    (res,) = rec.explain(_applicant(), constraints=down)
    assert res.status == "infeasible" and "`x2` may only decrease (lifting" in res.reason


def test_a_non_additive_model_is_refused_with_a_clear_error(hand):
    _, schema, X = hand

    class Interaction:
        classes_ = np.array([0, 1])
        coef_ = np.zeros((1, 3))

        def decision_function(self, X):
            return X["x1"].to_numpy(float) * X["x2"].to_numpy(float) - 20.0

        def predict_proba(self, X):
            p = 1 / (1 + np.exp(-self.decision_function(X)))
            return np.stack([1 - p, p], axis=1)

    with pytest.raises(ValueError, match="additive"):
        Recourse(Interaction(), schema, method="milp").fit(X)
    # "auto" falls back to the model-agnostic search instead, and says why (it was logged)
    with pytest.warns(
        Notice,
        match=r"method='auto' uses 'search' for this linear-looking .*"
        "additive",
    ):
        assert Recourse(Interaction(), schema).fit(X).method_ == "search"


def test_german_logistic_optimum_is_a_lower_bound(german, split, credit_models, denied):
    model = credit_models["logistic"]
    exact = Recourse(model, german.schema, support=0.0).fit(german.X.iloc[split[0]])
    plausible = Recourse(model, german.schema).fit(german.X.iloc[split[0]])
    rows = denied["logistic"].iloc[:8]
    for a, b in zip(exact.explain(rows), plausible.explain(rows), strict=True):
        assert a.status == b.status == "recourse"
        assert a.counterfactuals[0].cost == pytest.approx(a.min_cost, rel=1e-6)
        assert b.min_cost == pytest.approx(a.min_cost, rel=1e-6)
        assert all(cf.cost >= a.min_cost - 1e-9 for cf in b.counterfactuals)


class _Flipped:
    """The hand model with its classes relabelled: ``classes`` in predict_proba's column order,
    the second of them the model's positive class (as scikit-learn orders them), which here
    means denied: a model of the probability of default (``[0, 1]``, 1 = bad) or one trained
    on string labels (``["approved", "denied"]``)."""

    def __init__(self, hand_model, classes):
        self.hand = hand_model
        self.classes_ = np.array(classes)
        self.coef_ = -hand_model.coef_

    def decision_function(self, X):
        return -self.hand.decision_function(X)  # log-odds of classes_[1], denied

    def predict_proba(self, X):
        return self.hand.predict_proba(X)[:, ::-1]  # (n, 2): approved first


@pytest.mark.parametrize(
    ("classes", "approved"), [([0, 1], 0), (["approved", "denied"], "approved")]
)
@pytest.mark.parametrize("method", ["milp", "search"])
def test_approved_names_the_class_that_means_approved(hand, classes, approved, method):
    model, schema, X = hand
    flipped = _Flipped(model, classes)
    kw = {"k": 3, "support": 0.0, "method": method}
    (want,) = Recourse(model, schema, **kw).fit(X).explain(_applicant())
    (got,) = Recourse(flipped, schema, approved=approved, **kw).fit(X).explain(_applicant())
    assert got.proba == pytest.approx(want.proba) and got.proba < 0.5  # denied, as it is
    assert [cf.features for cf in got.counterfactuals] == [
        cf.features for cf in want.counterfactuals
    ]
    assert [cf.cost for cf in got.counterfactuals] == pytest.approx(
        [cf.cost for cf in want.counterfactuals]
    )
    if classes == [0, 1]:  # the default reads column 1, here default: approved, not denied
        (backwards,) = Recourse(flipped, schema, **kw).fit(X).explain(_applicant())
        assert backwards.status == "approved" and backwards.proba == pytest.approx(1 - want.proba)
    else:  # labels that are not 0 / 1 must be named
        with pytest.raises(ValueError, match=r"classes_ are \['approved', 'denied'\]; pass the"):
            Recourse(flipped, schema, **kw).fit(X)
    with pytest.raises(ValueError, match=r"`approved` must be the model's class.*got 'good'"):
        Recourse(flipped, schema, approved="good", **kw).fit(X)


def test_dice_seeks_approval_when_class_1_means_default(hand):
    model, schema, X = hand
    rec = Recourse(_Flipped(model, [0, 1]), schema, approved=0, method="dice-random", k=2)
    (res,) = rec.fit(X).explain(_applicant())
    assert res.status == "recourse" and res.proba < 0.5
    for cf in res.counterfactuals:  # approved by the hand model itself
        point = pd.DataFrame({name: [cf.values[name]] for name in ("x1", "x2", "c")})
        assert model.predict_proba(point)[0, 1] >= 0.5 and cf.proba_after >= 0.5


def test_values_outside_a_range_are_kept_but_warned_about(hand, caplog):
    model, schema, X = hand
    rec = Recourse(model, schema, k=1, support=0.0).fit(X)
    applicants = pd.concat([_applicant(), _applicant(x1=12, x2=-1.5)], ignore_index=True)
    with caplog.at_level("WARNING", logger="cfx.recourse.recourse"):
        results = rec.explain(applicants)
    assert "2 applicant value(s) lie outside their feature's range" in caplog.text
    assert "row 1: x1 = 12 (0..10); row 1: x2 = -1.5 (0..10)" in caplog.text
    assert [r.proba for r in results][1] == pytest.approx(model.predict_proba(applicants)[1, 1])
    caplog.clear()
    with caplog.at_level("WARNING", logger="cfx.recourse.recourse"):
        rec.explain(_applicant())
    assert "outside" not in caplog.text


def test_target_proba_asks_plans_for_a_margin(hand):
    """Known answer for ``target_proba``: the plan reaches p = 0.6, not 0.5. (An audit found
    an assertion here on the test's own arithmetic, checking no code: it is now the comment
    below, and the plan's probability is checked against the hand model's value at 2.606.)"""
    # as the known answer above, but plans must reach p = 0.6 (log-odds log(0.6 / 0.4) =
    # 0.40547): x2 alone moves 1.2 + 0.40547 = 1.60547, from 1 to 1 + 1.2 + 0.40547 =
    # 2.60547, printed as the next thousandth up (x2's MAD is 1, so its step is 0.001; 2.605
    # falls short of 0.6): 2.606 at cost 1.5 * 1.606, with logit -1.2 + 1.606 = 0.406
    model, schema, X = hand
    rec = Recourse(model, schema, k=1, support=0.0, target_proba=0.6).fit(X)
    (res,) = rec.explain(_applicant())
    (best,) = res.counterfactuals
    assert best.features == ("x2",)
    assert best.values["x2"] == 2.606 and "from 1 to 2.606" in best.plan
    assert best.cost == pytest.approx(1.5 * 1.606, abs=1e-9)
    assert best.proba_after == pytest.approx(1 / (1 + np.exp(-0.406)), abs=1e-9)
    assert best.proba_after >= 0.6
    # who is denied still follows the threshold: p = 0.55 is approved, nothing to change
    (ok,) = rec.explain(_applicant(x2=2.2 + float(np.log(0.55 / 0.45))))
    assert ok.status == "approved"
    for bad, error in ((0.4, ValueError), (1.0, ValueError), ("0.6", TypeError)):
        with pytest.raises(error, match=r"`target_proba` must be None or a number in"):
            Recourse(model, schema, target_proba=bad).fit(X)


def test_a_model_needing_other_columns_is_named_at_fit(hand):
    model, schema, X = hand

    class NeedsRegion:
        classes_ = np.array([0, 1])

        def predict_proba(self, frame):
            frame["region"]  # a column outside the schema: pandas raises KeyError
            return model.predict_proba(frame)

    with pytest.raises(ValueError, match=r"failed on a frame of the schema's 3 columns.*KeyError"):
        Recourse(NeedsRegion(), schema).fit(X)

    class Broken:
        classes_ = np.array([0, 1])

        def predict_proba(self, frame):
            raise ValueError("Expected more than 1 value per channel")  # not about columns

    with pytest.raises(ValueError, match=r"^Expected more than 1 value per channel\n") as err:
        Recourse(Broken(), schema).fit(X)  # passed on as it is, without a column hint
    assert err.value.__notes__ == ["(raised by `model.predict_proba` on a frame of 1 row(s))"]


def test_freeing_an_immutable_feature_is_warned_about(hand):
    model, schema, X = hand
    rec = Recourse(model, schema.replace("x1", mutable=False), k=1, support=0.0).fit(X)
    with pytest.warns(UserWarning, match="constraints make `x1` changeable, which the schema"):
        rec.explain(_applicant(), constraints=Constraints(mutable=("x1",)))


class _OrdinalLogistic:
    """logit = -3 + 1.0 x + {lo: 0, mid: 1.5, hi: 3}[o]; nothing is learned."""

    def __init__(self) -> None:
        self.classes_ = np.array([0, 1])
        self.coef_ = np.array([[1.0, 0.0, 1.5, 3.0]])  # shape only: "auto" sees a linear model
        self.table = {"lo": 0.0, "mid": 1.5, "hi": 3.0}

    def decision_function(self, X):
        return -3.0 + X["x"].to_numpy(float) + X["o"].astype(str).map(self.table).to_numpy(float)

    def predict_proba(self, X):
        p = 1 / (1 + np.exp(-self.decision_function(X)))
        return np.stack([1 - p, p], 1)


def test_an_ordinal_jump_costs_one_weight_per_step():
    from cfx.data.schema import FeatureSchema, FeatureSpec

    schema = FeatureSchema(
        features=(
            FeatureSpec("x", "numeric", lower=0, upper=10, cost=0.5),
            FeatureSpec("o", "ordinal", ("lo", "mid", "hi"), cost=1.0),
        ),
        target="y",
    )
    X = pd.DataFrame({"x": [0.0, 1.0, 2.0] * 4, "o": ["lo", "mid", "hi"] * 4})  # MAD of x: 1
    rec = Recourse(_OrdinalLogistic(), schema, k=1, support=0.0).fit(X)
    (res,) = rec.explain(pd.DataFrame({"x": [0.0], "o": ["lo"]}))
    # +3 log-odds needed: o lo -> hi costs 2 steps x 1.0 = 2; x + 3 costs 3 x 0.5 = 1.5 (the
    # cheapest); o lo -> mid (1.0) with x + 1.5 (0.75) costs 1.75
    best = res.counterfactuals[0]
    assert best.features == ("x",) and best.cost == pytest.approx(1.5, abs=1e-6)


class _PointsScale:
    """The hand model with predict_proba = sigmoid(2 * decision_function): a decision
    function that is not the log-odds (a scorecard's points, a Platt-scaled SVC)."""

    def __init__(self, hand_model):
        self.hand = hand_model
        self.classes_ = hand_model.classes_
        self.coef_ = hand_model.coef_

    def decision_function(self, X):
        return self.hand.decision_function(X)

    def predict_proba(self, X):
        p = 1.0 / (1.0 + np.exp(-2.0 * self.decision_function(X)))
        return np.stack([1.0 - p, p], axis=1)


def test_a_decision_function_that_is_not_the_log_odds_is_not_read_as_one(hand):
    """Known answer: with p = sigmoid(2 d), approval at 0.8 needs 2 d >= logit(0.8), so
    d >= 0.6931: the applicant's d is -1.2 and each unit of x2 adds 1, so x2 goes from 1 to
    1 + 1.2 + 0.6931 = 2.8931 at cost 1.5 * 1.8931 = 2.8397. Read as log-odds, d put the bar
    at d >= 1.3863 (x2 = 3.5863, cost 3.88, "proven" minimal), and under a cap between the
    two it proved no recourse where one was."""
    model, schema, X = hand
    rec = Recourse(_PointsScale(model), schema, k=1, support=0.0, target_proba=0.8).fit(X)
    assert rec.method_ == "milp"
    (res,) = rec.explain(_applicant())
    best = res.counterfactuals[0]
    want = 1 + 1.2 + np.log(4) / 2
    assert best.features == ("x2",)
    assert best.values["x2"] == pytest.approx(want, abs=1e-3)  # shown rounded up
    assert res.min_cost == pytest.approx(1.5 * (want - 1), abs=1e-5)
    assert best.proba_after == pytest.approx(0.8, abs=1e-3)
    capped = Constraints(bounds={"x2": (None, 3.0)}, immutable=("x1", "c"))
    (res,) = rec.explain(_applicant(), constraints=capped)
    assert res.status == "recourse"
