"""cfx.recourse.model: what the user's model must answer, and TorchClassifier."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from cfx.errors import Notice
from cfx.recourse import Recourse, TorchClassifier
from cfx.recourse.model import approved_column, check_probabilities


def test_probabilities_pass_and_anything_else_is_named():
    good = np.array([[0.2, 0.8], [1.0, 0.0]])
    assert check_probabilities(good, 2) is good
    with pytest.raises(
        ValueError, match=r"one column per class, for n = 2 rows, got shape \(2, 1\)"
    ):
        check_probabilities(good[:, 1:], 2)
    with pytest.raises(ValueError, match="NaN or infinite values for 1 of 2 rows"):
        check_probabilities(np.array([[0.2, 0.8], [np.nan, np.nan]]), 2)
    with pytest.raises(ValueError, match="scores or log-odds"):
        check_probabilities(np.array([[1.8, -1.8], [0.5, 0.5]]), 2)
    with pytest.raises(ValueError, match=r"row sums 0\.7\.\.1"):
        check_probabilities(np.array([[0.3, 0.4], [0.5, 0.5]]), 2)


class _Scores:
    """predict_proba that returns the log-odds for class 1 beside their negation."""

    classes_ = np.array([0, 1])

    def predict_proba(self, X):
        z = X["x1"].to_numpy(float) - 6
        return np.stack([-z, z], axis=1)


def test_a_model_answering_with_scores_is_refused_not_explained(hand):
    _, schema, X = hand
    with pytest.raises(ValueError, match="scores or log-odds"):  # at fit: it scores X
        Recourse(_Scores(), schema, method="search").fit(X).explain(X.iloc[:1])


def _encoder(df: pd.DataFrame) -> np.ndarray:
    return df[["x1", "x2"]].to_numpy(float)


def test_a_module_ending_in_softmax_is_warned_about(hand):
    """Its probabilities softmaxed again all lie nearer 0.5: (0.1, 0.9) reads as 0.69."""
    _, _, X = hand
    logits = torch.nn.Linear(2, 2)
    with_softmax = TorchClassifier(torch.nn.Sequential(logits, torch.nn.Softmax(dim=1)), _encoder)
    with pytest.warns(UserWarning, match="softmaxed again"):
        with_softmax.predict_proba(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = TorchClassifier(logits, _encoder).predict_proba(X)
    with torch.no_grad():
        want = torch.softmax(logits(torch.as_tensor(_encoder(X), dtype=torch.float32)), 1)
    assert np.allclose(p, want.double().numpy(), atol=1e-6)


def test_a_module_of_another_input_width_is_named_with_the_encoders_shape(hand):
    _, _, X = hand
    wrong = TorchClassifier(torch.nn.Linear(3, 2), _encoder)  # the encoder gives 2 features
    with pytest.raises(ValueError, match=r"encoder's output, shaped \(12, 2\)"):
        wrong.predict_proba(X)


def test_a_one_column_head_ending_in_sigmoid_is_warned_about(hand):
    """A sigmoid's output taken for a logit gets a second sigmoid: every probability lands in
    [0.5, 0.73]. Told from 16 rows on (a real logit model's outputs for a few rows near the
    boundary may all lie in [0, 1])."""
    _, _, X = hand
    logit = torch.nn.Linear(2, 1)
    with_sigmoid = TorchClassifier(torch.nn.Sequential(logit, torch.nn.Sigmoid()), _encoder)
    rows = pd.concat([X, X])  # 24 rows
    with pytest.warns(Notice, match="sigmoid again"):
        p = with_sigmoid.predict_proba(rows)
    assert bool(((p[:, 1] >= 0.5) & (p[:, 1] <= 0.7311)).all())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with_sigmoid.predict_proba(X)  # 12 rows: too few to tell
    plain = torch.nn.Linear(2, 1)
    with torch.no_grad():  # logit x1 - 5: -1, 0, 1 on the hand rows (x1 = 4, 5, 6)
        plain.weight.copy_(torch.tensor([[1.0, 0.0]]))
        plain.bias.fill_(-5.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = TorchClassifier(plain, _encoder).predict_proba(X)
    want = torch.sigmoid(torch.tensor([-1.0, 0.0, 1.0])).tolist()
    assert p[:3, 1].tolist() == pytest.approx(want)


def test_the_approved_class_hint_uses_the_models_own_labels():
    """A model of classes ['bad', 'good'] was told to take approved=0, itself refused."""

    class Labelled:
        classes_ = np.array(["bad", "good"])

    with pytest.raises(ValueError, match=r"one of \['bad', 'good'\] .*e\.g\. approved='good'"):
        approved_column(Labelled(), 1)
    Labelled.classes_ = np.array([0, 1])
    with pytest.raises(ValueError, match="class 1 is 'bad' takes approved=0"):
        approved_column(Labelled(), "yes")
    assert approved_column(Labelled(), 0) == 0
    assert approved_column(Labelled(), None) == 1  # the default: class 1


def test_the_default_approved_is_refused_for_classes_other_than_0_and_1():
    """A model of labels 1 = denied, 2 = approved was read with class 1 as approved (1 is one
    of its classes): denied applicants came out 'approved' and approved ones got plans to
    be denied, with no warning when most of X_train is denied; when the backwards notice did
    come, its 'pass approved=0' was itself refused (session-54 recourse audit)."""

    class Coded:
        classes_ = np.array([1, 2])

    with pytest.raises(ValueError, match=r"classes_ are \[1, 2\]; .*e\.g\. approved=2 if 2"):
        approved_column(Coded(), None)
    assert approved_column(Coded(), 2) == 1 and approved_column(Coded(), 1) == 0
    Coded.classes_ = np.array([False, True])
    assert approved_column(Coded(), None) == 1
    Coded.classes_ = np.array([0.0, 1.0])
    assert approved_column(Coded(), None) == 1
    assert approved_column(object(), None) == 1  # no classes_: predict_proba's column 1


def test_a_model_of_default_left_at_the_default_approved_is_noticed():
    """`approved` defaults to class 1; a probability-of-default model (class 1 = bad) has
    classes 0 and 1 too, so it was read backwards without a word and its 'plans' raised the
    risk of default. Fewer than half of X_train approved is the sign, said at fit."""
    from sklearn.linear_model import LogisticRegression

    from cfx.data.schema import FeatureSchema, FeatureSpec

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"income": rng.uniform(20, 90, 300), "debt": rng.uniform(0, 30, 300)})
    good = ((X["income"] - 40) / 10 - (X["debt"] - 15) / 8 > 0).to_numpy()
    assert good.mean() > 0.6
    default_model = LogisticRegression(max_iter=1000).fit(X, (~good).astype(int))
    schema = FeatureSchema(
        features=(FeatureSpec("income", "numeric"), FeatureSpec("debt", "numeric")), target="y"
    )
    with pytest.warns(Notice, match=r"approves \d+% of the 300 applicants .* pass approved=0"):
        Recourse(default_model, schema).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Notice)
        Recourse(default_model, schema, approved=0).fit(X)  # read the right way round
        Recourse(default_model, schema, approved=1).fit(X)  # said on purpose: quiet


@pytest.mark.parametrize("family", ["milp", "tree"])
def test_a_one_hot_encoder_refusing_unseen_categories_keeps_the_exact_methods(
    family, german, split
):
    """scikit-learn's OneHotEncoder refuses categories it was not fitted on by default, and
    German Credit lists 'female : single', which no row has. The exact methods read the model
    without it (they were lost: 'auto' fell back to search, 'milp' failed with the encoder's
    own error, 'tree' called the one-hot encoder not separable); plans never propose a
    refused category, the model itself confirms every plan, and an applicant who has one is
    named before the model is called."""
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    from .conftest import strict_one_hot

    schema = german.schema
    X_train = german.X.iloc[split[0]]
    final = (
        LogisticRegression(max_iter=2000)
        if family == "milp"
        else GradientBoostingClassifier(n_estimators=20, max_depth=2, random_state=0)
    )
    model = strict_one_hot(german, split, final)
    sex = schema.names.index("personal_status_and_sex")
    rec = Recourse(model, schema, method="auto").fit(X_train)
    assert rec.method_ == family
    assert rec.view_.refused[sex] == {schema.features[sex].categories.index("female : single")}
    assert sum(len(r) for r in rec.view_.refused) == 1
    X_test = german.X.iloc[split[1]]
    denied = X_test[model.predict_proba(X_test)[:, 1] < 0.5].head(4)
    results = rec.explain(denied)
    assert [r.status for r in results].count("recourse") >= 3
    frame = rec.counterfactual_frame(results)
    assert (frame["personal_status_and_sex"] != "female : single").all()
    after = [cf.proba_after for r in results for cf in r.counterfactuals]
    np.testing.assert_allclose(model.predict_proba(frame)[:, 1], after, atol=1e-9)
    assert min(after) >= 0.5
    odd = denied.head(2).assign(personal_status_and_sex="female : single")
    with pytest.raises(ValueError, match=r"rows \[\d+, \d+\] have personal_status_and_sex"):
        rec.explain(odd)


def test_a_models_own_error_says_whose_it_is(hand):
    """A bare ZeroDivisionError came out of fit with nothing naming the model's predict_proba
    (session 50 audit); it is kept (type and message) with a note saying so."""
    _, schema, X = hand

    class Broken:
        classes_ = np.array([0, 1])

        def predict_proba(self, X):
            return 1 / 0

    with pytest.raises(ZeroDivisionError) as caught:
        Recourse(Broken(), schema).fit(X)
    assert any("raised by `model.predict_proba` on a frame of" in n for n in caught.value.__notes__)


def test_training_rows_outside_the_schemas_bounds_are_noticed(
    hand, german, split, credit_models, caplog
):
    """X_train with x1 = 12 under a schema bounding x1 to 0..10 was taken in silence, while
    an applicant there is noticed; German Credit's own rows lie inside its schema."""
    model, schema, X = hand
    with caplog.at_level("WARNING", logger="cfx.recourse"):
        Recourse(model, schema).fit(X.assign(x1=[12, *X["x1"].tolist()[1:]]))
    said = [r.getMessage() for r in caplog.records if getattr(r, "cfx_value_range", False)]
    assert len(said) == 1 and said[0].startswith("1 X_train value(s) lie outside")
    assert "row 0: x1 = 12 (0..10)" in said[0]
    caplog.clear()
    with caplog.at_level("WARNING", logger="cfx.recourse"):
        Recourse(model, schema).fit(X)
        Recourse(credit_models["logistic"], german.schema).fit(german.X.iloc[split[0]])
    assert not [r for r in caplog.records if getattr(r, "cfx_value_range", False)]


def _three_numeric():
    """Schema a, b, c (numbers in -5..5) and 300 rows, approved exactly when a > 0.5."""
    from cfx.data.schema import FeatureSchema, FeatureSpec

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.uniform(-2, 2, size=(300, 3)), columns=["a", "b", "c"])
    schema = FeatureSchema(
        tuple(FeatureSpec(n, "numeric", lower=-5, upper=5) for n in "abc"), target="y"
    )
    return schema, X, (X["a"] > 0.5).astype(int)


@pytest.mark.parametrize(("method", "close"), [("milp", 2e-3), ("search", 0.15)])
def test_a_model_fitted_on_another_column_order_is_called_in_that_order(method, close):
    """scikit-learn refuses a frame whose columns come in another order than at fit: a model
    fitted on X[["c", "a", "b"]] of a schema a, b, c was refused at fit with advice to wrap
    it. Its recorded order is followed now. Known answer: logit = 2 (a - 1) weighs only `a`
    (the middle one of the model's columns), so the one plan raises a from 0 to 1 (exactly
    for the MILP; the search's grid overshoots a little)."""
    from sklearn.linear_model import LogisticRegression

    schema, X, y = _three_numeric()
    model = LogisticRegression().fit(X[["c", "a", "b"]], y)
    model.coef_ = np.array([[0.0, 2.0, 0.0]])
    model.intercept_ = np.array([-2.0])
    # support=0: the cheapest plan, not one whose neighbours the model approves (a = 1.39)
    rec = Recourse(model, schema, k=1, method=method, approved=1, support=0).fit(X)
    applicant = pd.DataFrame({"a": [0.0], "b": [0.0], "c": [0.0]})
    (res,) = rec.explain(applicant)
    assert res.status == "recourse"
    (cf,) = res.counterfactuals
    assert [c.feature for c in cf.changes] == ["a"]
    assert 1.0 - 2e-3 <= cf.values["a"] <= 1.0 + close
    assert (cf.values["b"], cf.values["c"]) == (0.0, 0.0)


def test_a_tree_model_fitted_on_another_column_order_reads_its_splits_by_name():
    """The tree MILP reads a bare booster's split columns as schema features: with the
    model's column 1 read as the schema's `b` it would move b, which the trees ignore."""
    from sklearn.ensemble import GradientBoostingClassifier

    schema, X, y = _three_numeric()
    model = GradientBoostingClassifier(n_estimators=20, max_depth=1, random_state=0)
    model.fit(X[["c", "a", "b"]], y)
    rec = Recourse(model, schema, k=1, method="tree", approved=1).fit(X)
    (res,) = rec.explain(pd.DataFrame({"a": [-1.0], "b": [0.0], "c": [0.0]}))
    assert res.status == "recourse" and res.method == "tree"
    (cf,) = res.counterfactuals
    assert [c.feature for c in cf.changes] == ["a"]
    assert 0.3 < cf.values["a"] < 0.7  # the learnt cut, near a = 0.5


def test_a_model_fitted_on_other_columns_is_still_refused_naming_the_order():
    """Another set of names (not an order of the schema's) cannot be supplied by cfx."""
    from sklearn.linear_model import LogisticRegression

    schema, X, y = _three_numeric()
    model = LogisticRegression().fit(X.rename(columns={"c": "d"}), y)
    with pytest.raises(ValueError, match=r"in the order its `feature_names_in_` gives"):
        Recourse(model, schema, approved=1).fit(X)


def test_a_bound_the_model_cannot_score_is_named_at_fit():
    """A model of log(income) under the README's `lower=0`: fit fell back from the MILP with
    only "Input X contains infinity", and explain then failed on a whole batch of candidates
    naming neither the feature nor the value cfx had tried (session-54 recourse audit)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    from cfx.data.schema import FeatureSchema, FeatureSpec

    rng = np.random.default_rng(0)
    income = rng.lognormal(10.5, 0.5, 400).round(2)
    X = pd.DataFrame({"income": income, "debt": rng.uniform(0, 1, 400).round(3)})
    y = (np.log(X["income"]) - 10.5 - 2 * (X["debt"] - 0.5) > 0).astype(int)
    pre = ColumnTransformer(
        [("log", FunctionTransformer(np.log), ["income"]), ("n", StandardScaler(), ["debt"])]
    )
    model = Pipeline([("pre", pre), ("clf", LogisticRegression())]).fit(X, y)

    def schema(lower):
        return FeatureSchema(
            (
                FeatureSpec("income", "numeric", lower=lower, direction="any"),
                FeatureSpec("debt", "numeric", lower=0, upper=1),
            ),
            target="y",
        )

    with pytest.raises(ValueError) as info:
        Recourse(model, schema(0), k=1, approved=1).fit(X)
    said = str(info.value)
    assert said.startswith("`model.predict_proba` cannot score `income` = 0, the schema's `lower`")
    assert f"X_train's income runs {income.min():g}..{income.max():g}" in said
    assert "Input X contains infinity" in said and f"(e.g. {income.min():g})" in said
    # a bound the model scores: plans, each approved by the model itself
    rec = Recourse(model, schema(1000), k=1, approved=1, method="search").fit(X)
    denied = X[model.predict(X) == 0].iloc[:3]
    results = rec.explain(denied)
    assert [r.status for r in results] == ["recourse"] * 3
    frames = pd.concat([rec.counterfactual_frame(r) for r in results])
    assert (model.predict_proba(frames)[:, 1] >= 0.5).all()


def test_a_bool_approved_is_refused_for_a_model_of_number_classes():
    """approved=True matched class 1 of a 0/1 model (True == 1), a "yes" read as a class
    (session-55 audit); a model whose classes are bools takes it."""

    class Coded:
        classes_ = np.array([0, 1])

    with pytest.raises(TypeError, match=r"one of the model's classes \[0, 1\], got the bool True"):
        approved_column(Coded(), True)
    Coded.classes_ = np.array([False, True])
    assert approved_column(Coded(), True) == 1 and approved_column(Coded(), False) == 0
