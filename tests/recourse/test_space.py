"""Input validation, per-query constraints and the action space (hypothesis: immutables hold)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfx.data.schema import FeatureSchema, FeatureSpec
from cfx.errors import UnknownNameError
from cfx.recourse import Constraints, Recourse
from cfx.recourse.space import ActionSpace, Scales


@pytest.fixture(scope="module")
def fitted(german, split, credit_models):
    return Recourse(credit_models["logistic"], german.schema).fit(german.X.iloc[split[0]])


def test_unknown_category_names_column_and_value(fitted, german):
    row = german.X.iloc[[0]].astype({"purpose": "object"})
    row["purpose"] = "yacht"
    with pytest.raises(ValueError, match=r"column `purpose` has unknown categories \['yacht'\]"):
        fitted.explain(row)


def test_missing_column_is_named(fitted, german):
    with pytest.raises(ValueError, match=r"missing columns \['credit_amount'\]"):
        fitted.explain(german.X.iloc[[0]].drop(columns="credit_amount"))
    # a misspelt column: the spelling that arrived is named beside the one that is missing
    renamed = german.X.iloc[[0]].rename(columns={"age_in_years": "age"})
    match = (
        r"missing columns \['age_in_years'\] and has columns the schema does not name: \['age'\]"
    )
    with pytest.raises(ValueError, match=match):
        fitted.explain(renamed)
    with pytest.raises(ValueError, match=match.replace("`", "")):  # fit says the same
        Recourse(fitted.model, german.schema).fit(german.X.rename(columns={"age_in_years": "age"}))


def test_nan_is_named(fitted, german):
    row = german.X.iloc[[0, 1]].astype({"duration_in_month": "float64"})
    row.iloc[1, row.columns.get_loc("duration_in_month")] = np.nan
    with pytest.raises(ValueError, match=r"`duration_in_month` has 1 missing \(NaN\) values"):
        fitted.explain(row)


def test_non_numeric_value_is_named(fitted, german):
    row = german.X.iloc[[0]].astype({"credit_amount": "object"})
    row["credit_amount"] = "a lot"
    with pytest.raises(TypeError, match="`credit_amount` must be numeric"):
        fitted.explain(row)


def test_numbers_held_as_text_are_named_with_the_fix(fitted, german):
    """'45000' as text said only 'got dtype object', without the values or a way out."""
    row = german.X.iloc[[0]].astype({"credit_amount": "object"})
    row["credit_amount"] = "4870"
    with pytest.raises(
        TypeError,
        match=r"holding numbers as text, e\.g\. \['4870'\]: convert the column with "
        r"pd\.to_numeric\(df\['credit_amount'\]\)",
    ):
        fitted.explain(row)


def test_fractional_value_of_a_whole_number_feature_is_named(fitted, german):
    """24.5 months was scored by the model as 24 or 25 (rounded) and reported as 24 (truncated),
    in neither case as a change. Whole numbers stored as floats are fine."""
    row = german.X.iloc[[0, 1]].astype({"duration_in_month": "float64"})
    assert len(fitted.explain(row)) == 2  # 24.0 is a whole number
    row.iloc[1, row.columns.get_loc("duration_in_month")] = 24.5
    with pytest.raises(ValueError, match=r"`duration_in_month` is a whole-number.*\[24\.5\]"):
        fitted.explain(row)


def test_numpy_integers_are_ints(german, credit_models):
    """`k=np.int64(2)` was refused as "`k` must be a positive int" (now "an int >= 1")."""
    model = Recourse(  # support=0: plans below the data support are listed, not withheld
        credit_models["logistic"], german.schema, k=np.int64(2), max_changes=np.int32(3), support=0
    ).fit(german.X)
    results = model.explain(german.X.iloc[:4])
    assert all(len(r) <= 2 for r in results) and any(len(r) == 2 for r in results)


def test_model_without_predict_proba(german):
    class NoProba:
        def predict(self, X):
            return np.zeros(len(X))

    with pytest.raises(TypeError, match="must have a predict_proba"):
        Recourse(NoProba(), german.schema).fit(german.X)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 0}, "`k` must be an int >= 1, got 0"),
        ({"threshold": 1.5}, "`threshold` must be a number in"),
        ({"support": -0.1}, "`support` must be a number in"),
        ({"max_changes": 0}, "`max_changes` must be an int >= 1, got 0"),
        ({"random_state": -1}, r"`random_state` must be None or an int in \[0, 2\*\*32\), got -1"),
    ],
)
def test_bad_parameters_are_named(german, credit_models, kwargs, message):
    with pytest.raises(ValueError, match=message):
        Recourse(credit_models["logistic"], german.schema, **kwargs).fit(german.X)


@pytest.mark.parametrize(
    ("kwargs", "message"), [({"method": "genetic"}, "`method`"), ({"cost": "l2"}, "`cost`")]
)
def test_an_unknown_method_or_cost_is_an_unknown_name(german, credit_models, kwargs, message):
    """A name cfx does not know is an UnknownNameError, as the README says, not ValueError."""
    from cfx.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match=f"{message} must be one of"):
        Recourse(credit_models["logistic"], german.schema, **kwargs).fit(german.X)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 2.0}, "`k` must be an int >= 1, got 2.0"),
        ({"k": True}, "`k` must be an int >= 1, got True"),
        ({"max_changes": 1.5}, "`max_changes` must be an int >= 1, got 1.5"),
        ({"threshold": "0.5"}, r"`threshold` must be a number in \(0, 1\), got '0.5'"),
        ({"plausibility_weight": None}, "`plausibility_weight` must be a number in"),
    ],
)
def test_a_parameter_of_the_wrong_type_is_a_type_error(german, credit_models, kwargs, message):
    """`k=2.0` was a ValueError where `GradientAscent(steps=2.5)` is a TypeError (check_int)."""
    with pytest.raises(TypeError, match=message):
        Recourse(credit_models["logistic"], german.schema, **kwargs).fit(german.X)


def test_a_seed_of_the_wrong_type_is_a_type_error(german, credit_models):
    """1.5 was a ValueError, unlike every other wrong-typed int in cfx (check_int)."""
    with pytest.raises(TypeError, match=r"`random_state` must be None or an int .* got 1.5"):
        Recourse(credit_models["logistic"], german.schema, random_state=1.5).fit(german.X)


def test_explain_before_fit(german, credit_models):
    with pytest.raises(ValueError, match="not fitted"):
        Recourse(credit_models["logistic"], german.schema).explain(german.X.iloc[[0]])


def test_constraints_name_unknown_features(fitted, german):
    with pytest.raises(UnknownNameError, match="unknown feature 'salary'"):
        fitted.explain(german.X.iloc[[0]], constraints=Constraints(immutable=("salary",)))
    with pytest.raises(ValueError, match="both `immutable` and `mutable`"):
        Constraints(immutable=("age_in_years",), mutable=("age_in_years",))


def test_already_approved_applicant_needs_nothing(fitted, german, split, credit_models):
    X = german.X.iloc[split[1]]
    approved = X[credit_models["logistic"].predict_proba(X)[:, 1] >= 0.5].iloc[[0]]
    (res,) = fitted.explain(approved)
    assert res.status == "approved" and res.counterfactuals == ()
    assert res.reason == "already approved; nothing to change"  # a CSV's reason was blank


# ------------------------------------------------------------------------------------------------
# property: whatever the applicant and the per-query freeze, frozen features never change


def applicants(schema):
    columns = {}
    for spec in schema.features:
        if spec.kind == "numeric":
            columns[spec.name] = st.integers(int(spec.lower), int(spec.upper))
        else:
            columns[spec.name] = st.sampled_from(spec.categories)
    return st.fixed_dictionaries(columns)


MUTABLE = (
    "status_of_existing_checking_account",
    "duration_in_month",
    "purpose",
    "credit_amount",
    "savings_account_and_bonds",
    "other_debtors_or_guarantors",
    "telephone",
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_immutables_never_change(fitted, german, data):
    row = data.draw(applicants(german.schema))
    frozen = tuple(data.draw(st.sets(st.sampled_from(MUTABLE), max_size=4)))
    frame = pd.DataFrame([row]).astype(german.X.dtypes.to_dict())
    (res,) = fitted.explain(frame, constraints=Constraints(immutable=frozen))
    immutable = set(german.schema.immutable) | set(frozen)
    for cf in res.counterfactuals:
        assert not immutable & set(cf.features)
        for name in immutable:
            assert cf.values[name] == row[name]
        assert cf.violations == ()
        assert cf.proba_after >= 0.5
        if cf.values["age_in_years"] != row["age_in_years"]:
            assert cf.values["age_in_years"] > row["age_in_years"]  # age only increases
    if res.status == "infeasible":
        assert "MILP is infeasible" in res.reason


def test_transitions_and_ordinal_directions_hold(fitted, german, denied):
    account = "status_of_existing_checking_account"
    query = Constraints(
        transitions={account: {"... < 0 DM": ("0 <= ... < 200 DM",)}},
        direction={"savings_account_and_bonds": "increase"},
    )
    order = german.schema["savings_account_and_bonds"].categories
    rows = denied["logistic"].iloc[:12]
    for res in fitted.explain(rows, constraints=query):
        before = rows.loc[res.index]
        for cf in res.counterfactuals:
            assert cf.violations == ()
            if account in cf.features:
                assert str(before[account]) == "... < 0 DM"
                assert cf.values[account] == "0 <= ... < 200 DM"
            if "savings_account_and_bonds" in cf.features:
                new = order.index(cf.values["savings_account_and_bonds"])
                assert new > order.index(str(before["savings_account_and_bonds"]))


def test_a_series_is_one_applicant(fitted, german, denied):
    row = denied["logistic"].iloc[0]
    (from_series,) = fitted.explain(row)
    (from_frame,) = fitted.explain(denied["logistic"].iloc[[0]])
    assert from_series.index == from_frame.index
    assert [cf.plan for cf in from_series.counterfactuals] == [
        cf.plan for cf in from_frame.counterfactuals
    ]


def test_whole_numbers_with_rounding_noise_pass_and_are_made_exact(fitted, german):
    row = german.X.iloc[[0]].astype({"duration_in_month": "float64"})
    exact = fitted.codec_.to_codes(row)
    row["duration_in_month"] = row["duration_in_month"] * (0.1 * 3 / 0.3)  # 6.000000000000001
    assert np.array_equal(fitted.codec_.to_codes(row), exact)


def test_dice_recourse_checks_its_seed(german, credit_models):
    """DiceRecourse is public; it passed any seed to DiCE, whose NumPy seeding failed later."""
    from cfx.recourse.dice import DiceRecourse
    from cfx.recourse.model import ModelView
    from cfx.recourse.space import Codec

    codec = Codec(german.schema, german.X)
    view = ModelView(credit_models["logistic"], codec)
    Z, approved = codec.to_codes(german.X.iloc[:50]), np.ones(50, dtype=int)
    with pytest.raises(ValueError, match=r"`random_state` must be None or an int .* got -3"):
        DiceRecourse(view, Z, approved, method="dice-random", random_state=-3)
    with pytest.raises(TypeError, match=r"`random_state` must be None or an int .* got '7'"):
        DiceRecourse(view, Z, approved, method="dice-random", random_state="7")


# ------------------------------------------------------------------------------------------------
# the action space and scales on one feature: known answers


def _space(spec, z0, Z=None):
    """The action space of one applicant ``z0`` on the one feature ``spec`` (MAD scales)."""
    schema = FeatureSchema(features=(spec,), target="y")
    Z = np.array([[4.0], [5.0], [6.0]]) if Z is None else Z
    return ActionSpace.build(schema, np.array([z0]), Scales.learn(schema, Z, "mad"), None)


def test_an_increase_only_feature_is_bounded_below_by_the_applicant():
    sp = _space(FeatureSpec("x", "numeric", lower=0, upper=10, direction="increase"), 4.0)
    assert (sp.lo[0], sp.hi[0]) == (4.0, 10.0)
    assert sp.violations(np.array([3.0])) != []  # below the applicant: not allowed


def test_clip_rounds_whole_numbers_inside_the_bounds_and_holds_immutables():
    sp = _space(FeatureSpec("x", "numeric", lower=0, upper=9, integer=True), 4.0)
    assert sp.clip(np.array([[9.4]])).tolist() == [[9.0]]
    assert sp.clip(np.array([[3.6]])).tolist() == [[4.0]]
    sp = _space(FeatureSpec("x", "numeric", lower=0, upper=10, mutable=False), 4.0)
    assert sp.clip(np.array([[7.0]])).tolist() == [[4.0]]


def test_an_ordinal_move_costs_its_weight_per_step():
    spec = FeatureSpec("o", "ordinal", ("lo", "mid", "hi"), cost=2.0)
    sp = _space(spec, 0.0, Z=np.array([[0.0], [1.0], [2.0]]))
    assert sp.cost(np.array([[2.0]])).tolist() == [4.0]  # lo -> hi: two steps of 2


def test_a_single_allowed_value_other_than_z0_is_movable():
    # the bounds allow only 3; the applicant is at 2, so the feature can (must) move
    spec = FeatureSpec("x", "numeric", lower=3, upper=3)
    sp = _space(spec, 2.0, Z=np.array([[1.0], [2.0], [3.0]]))
    assert bool(sp.movable[0])


def test_violations_allow_exactly_max_changes(hand):
    _, schema, _ = hand
    Z = np.array([[4.0, 4.0, 0.0], [5.0, 5.0, 1.0], [6.0, 6.0, 2.0]])
    sp = ActionSpace.build(schema, np.array([2.0, 1.0, 0.0]), Scales.learn(schema, Z, "mad"), 1)
    assert sp.violations(np.array([3.0, 1.0, 0.0])) == []
    assert sp.violations(np.array([3.0, 2.0, 0.0])) == ["changes 2 features, more than 1"]


def test_scales_fall_back_to_the_mean_deviation_and_keep_the_schemas_bounds():
    spec = FeatureSpec("x", "numeric", lower=0, upper=10)
    schema = FeatureSchema(features=(spec,), target="y")
    s = Scales.learn(schema, np.array([[1.0], [1.0], [1.0], [1.0], [5.0]]), "mad")
    assert s.scale[0] == pytest.approx(0.8)  # MAD 0: the mean |x - median| = 4 / 5 instead
    assert (s.lower[0], s.upper[0]) == (0.0, 10.0)  # the schema's bounds, not the data's


class _ByCode:
    """A model that reads what the training frame held: `c` as integer codes 1/2/3 (strings
    raise, as a strict encoder would) and `k` as pandas category codes in the training order
    (alphabetical: mortgage 0, own 1, rent 2). logit = x1 - 6 + 2 c - 1.5 code(k)."""

    classes_ = np.array([0, 1])

    def predict_proba(self, X):
        assert X["c"].dtype.kind == "i", X["c"].dtype  # handed back as integers
        assert list(X["k"].cat.categories) == ["mortgage", "own", "rent"]
        z = X["x1"].to_numpy(float) - 6 + 2 * X["c"].to_numpy(float)
        z = z - 1.5 * X["k"].cat.codes.to_numpy(float)
        p = 1 / (1 + np.exp(-z))
        return np.stack([1 - p, p], axis=1)


def test_the_model_gets_categories_as_it_was_trained_on_them():
    """Integer codes declared as strings go back as the integers, and a categorical column
    keeps its training order of categories (the schema lists them otherwise): the reported
    probability is the model's own on the applicant, and every plan is scored as such."""
    schema = FeatureSchema(
        features=(
            FeatureSpec("x1", "numeric", lower=0, upper=10, integer=True),
            FeatureSpec("c", "categorical", ("1", "2", "3")),
            FeatureSpec("k", "categorical", ("rent", "own", "mortgage")),
        ),
        target="y",
    )
    X = pd.DataFrame(
        {
            "x1": [2, 5, 8] * 4,
            "c": [1, 2, 3] * 4,
            "k": pd.Categorical(["rent", "own", "mortgage"] * 4),  # alphabetical categories
        }
    )
    model = _ByCode()
    applicant = pd.DataFrame(
        {"x1": [2], "c": [1], "k": pd.Categorical(["rent"], categories=["mortgage", "own", "rent"])}
    )
    own = float(model.predict_proba(applicant)[0, 1])  # logit 2 - 6 + 2 - 3 = -5
    assert own == pytest.approx(1 / (1 + np.exp(5)))
    res = Recourse(model, schema, method="search", support=0.0).fit(X).explain(applicant)[0]
    assert res.proba == pytest.approx(own)
    assert res.counterfactuals
    for cf in res.counterfactuals:
        values = pd.DataFrame({k: [v] for k, v in cf.values.items()})
        values["c"] = values["c"].astype(int)
        values["k"] = pd.Categorical(values["k"], categories=["mortgage", "own", "rent"])
        assert cf.proba_after == pytest.approx(float(model.predict_proba(values)[0, 1]))


def test_categories_that_cannot_be_the_training_columns_values_are_refused_at_fit():
    def schema(*categories):
        x1 = FeatureSpec("x1", "numeric", lower=0, upper=10)
        return FeatureSchema(features=(x1, FeatureSpec("c", "categorical", categories)), target="y")

    floats = pd.DataFrame({"x1": [1.0, 2.0, 3.0, 4.0], "c": [1.0, 2.0, 1.0, 2.0]})
    # ("1", "2") is taken for 1.0 and 2.0 since session 54 (integer codes stored as float);
    # a category written otherwise than its value prints is still refused
    with pytest.raises(ValueError, match=r"written as those values print \(\['1\.0', '2\.0'\]\)"):
        Recourse(_ByCode(), schema("01", "2"), method="search").fit(floats)
    ints = pd.DataFrame({"x1": [1.0, 2.0, 3.0, 4.0], "c": [1, 2, 1, 2]})
    with pytest.raises(ValueError, match=r"holds numbers \(int64\) but the schema's categories"):
        Recourse(_ByCode(), schema("low", "high"), method="search").fit(ints)


@pytest.mark.parametrize("method", ["milp", "search", "dice-random"])
def test_nothing_allowed_to_change_is_a_proof_for_every_method(hand, method):
    """With every feature immutable no action exists: 'infeasible' (a proof), the reachable
    maximum is the applicant's own probability (the tree method crashed inside scipy here, the
    search and DiCE said 'not_found')."""
    model, schema, X = hand
    rec = Recourse(model, schema, method=method, support=0.0).fit(X)
    applicant = pd.DataFrame({"x1": [1], "x2": [1.0], "c": ["a"]})  # logit -1.7: denied
    everything = Constraints(immutable=("x1", "x2", "c"))
    res = rec.explain(applicant, constraints=everything)[0]
    assert res.status == "infeasible" and res.counterfactuals == ()
    assert res.reason.startswith("no feature may change")
    assert res.max_proba == pytest.approx(float(model.predict_proba(applicant)[0, 1]))


def test_values_outside_the_training_range_are_noticed_without_schema_bounds(hand, caplog):
    """Without bounds in the schema, the training data's range is the one a plan keeps to, so
    an applicant outside it (x1 = 60 where training rows hold 4..6) is noticed (it passed
    silently: only schema bounds were checked)."""
    from dataclasses import replace

    model, schema, X = hand
    unbounded = FeatureSchema(
        features=tuple(
            replace(f, lower=None, upper=None) if f.name == "x1" else f for f in schema.features
        ),
        target=schema.target,
    )
    rec = Recourse(model, unbounded, method="search").fit(X)
    with caplog.at_level("WARNING", logger="cfx.recourse.recourse"):
        rec.explain(pd.DataFrame({"x1": [60], "x2": [1.0], "c": ["a"]}, index=[400]))
    assert "row 400: x1 = 60 (4..6)" in caplog.text


def test_nullable_integer_and_bool_columns_go_back_in_their_dtypes():
    """An Int64 column of codes and a bool column come back as Int64 and bool (an Int64 one
    was refused as 'not numbers'; a bool one reached the model as objects, which LightGBM
    refuses); a code too large for a uint8 column is named, not an OverflowError."""
    from cfx.recourse.space import Codec

    schema = FeatureSchema(
        features=(
            FeatureSpec("x1", "numeric", lower=0, upper=10),
            FeatureSpec("c", "categorical", ("1", "2", "3")),
            FeatureSpec("b", "categorical", ("False", "True")),
        ),
        target="y",
    )
    X = pd.DataFrame(
        {
            "x1": [1.0, 2.0, 3.0, 4.0],
            "c": pd.array([1, 2, 3, 1], dtype="Int64"),
            "b": [True, False, True, False],
        }
    )
    codec = Codec(schema, X)
    back = codec.to_frame(codec.to_codes(X))
    assert back.dtypes.tolist() == X.dtypes.tolist()
    assert back.equals(X)
    small = X.assign(c=np.array([1, 2, 3, 1], dtype=np.uint8))
    big = FeatureSchema(
        features=(
            schema.features[0],
            FeatureSpec("c", "categorical", ("1", "300")),
            schema.features[2],
        ),
        target="y",
    )
    with pytest.raises(ValueError, match=r"holds numbers \(uint8\) .* not all such numbers"):
        Codec(big, small)
    # numeric features in nullable columns too (they came back int64 / float64: session 54)
    nullable = X.assign(
        x1=pd.array([1.5, 2.0, 3.0, 4.0], dtype="Float64"),
        n=pd.array([0, 2, 5, 1], dtype="Int64"),
        m=pd.array([1, 2, 3, 4], dtype="Int8"),
    )
    wide = FeatureSchema(
        features=(
            *schema.features,
            FeatureSpec("n", "numeric", lower=0, integer=True),
            FeatureSpec("m", "numeric", lower=0, upper=1000, integer=True),
        ),
        target="y",
    )
    codec = Codec(wide, nullable)
    Z = codec.to_codes(nullable)
    back = codec.to_frame(Z)
    assert back.dtypes.tolist() == nullable.dtypes.tolist() and back.equals(nullable)
    Z[0, 4] = 300  # a plan past Int8's range: handed over as a number, not wrapped or refused
    assert codec.to_frame(Z)["m"].tolist() == [300, 2, 3, 4]


def test_a_schema_category_no_training_row_has_is_noticed_at_fit():
    """The schema lists 'w', no training row has it: a model that takes it may be offered it
    by a plan, one that refuses it (a OneHotEncoder's default) never is, and fit says which.
    An immutable feature's unseen category is not named, nor one its transitions never
    reach: no plan proposes them."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    from cfx.errors import Notice

    def schema(mutable, transitions=None):
        c = FeatureSpec(
            "c", "categorical", ("u", "v", "w"), mutable=mutable, transitions=transitions
        )
        return FeatureSchema(
            features=(FeatureSpec("x1", "numeric", lower=0, upper=10), c), target="y"
        )

    X = pd.DataFrame({"x1": [1.0, 2.0, 8.0, 9.0] * 3, "c": ["u", "v"] * 6})
    y = (X["x1"] > 5).astype(int)
    encode = ColumnTransformer([("c", OneHotEncoder(), ["c"])], remainder="passthrough")
    model = make_pipeline(encode, LogisticRegression()).fit(X, y)
    with pytest.warns(Notice, match=r"has and the model refuses .*: \{'c': \['w'\]\}"):
        rec = Recourse(model, schema(True), method="search", support=0.0).fit(X)
    results = rec.explain(
        X[model.predict_proba(X)[:, 1] < 0.5]
    )  # the search proposed 'w', which the model failed on
    assert results and all(r.status == "recourse" for r in results)
    assert "w" not in set(rec.counterfactual_frame(results)["c"])
    takes = ColumnTransformer(
        [("c", OneHotEncoder(handle_unknown="ignore"), ["c"])], remainder="passthrough"
    )
    lenient = make_pipeline(takes, LogisticRegression()).fit(X, y)
    with pytest.warns(Notice, match=r"no row of X_train has: \{'c': \['w'\]\}. Plans may"):
        Recourse(lenient, schema(True), method="search").fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # approved=1: half the rows approved, at the backwards-model notice's edge
        Recourse(model, schema(False), method="search", approved=1).fit(X)
        # transitions that never lead to 'w' from a training row's category: nothing to say
        rules = schema(True, {"u": ("v",), "v": ("u",)})
        Recourse(model, rules, method="search", approved=1).fit(X)
    with pytest.warns(Notice, match=r"\{'c': \['w'\]\}"):  # 'v' may become 'w'
        Recourse(model, schema(True, {"u": ("v",), "v": ("w",)}), method="search").fit(X)


def test_applicants_with_repeated_index_labels_are_noticed_and_answered_in_row_order(hand):
    """Two frames concatenated repeat labels 0 and 1: the results (in row order) would carry
    the same `index` twice, so explain says so; unique labels say nothing."""
    from cfx.errors import Notice

    model, schema, X = hand
    rec = Recourse(model, schema, method="search", support=0.0).fit(X)
    one = pd.DataFrame({"x1": [1, 2], "x2": [1.0, 2.0], "c": ["a", "a"]})
    two = pd.DataFrame({"x1": [3, 1], "x2": [1.0, 1.0], "c": ["a", "b"]})
    both = pd.concat([one, two])
    with pytest.warns(Notice, match=r"repeat index labels \(\[0, 1\]\)"):
        res = rec.explain(both)
    assert [r.index for r in res] == [0, 1, 0, 1]
    own = model.predict_proba(both)[:, 1]
    assert [r.proba for r in res] == pytest.approx(own.tolist())  # row order kept
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rec.explain(both.reset_index(drop=True))


def _real_space(scale: float, upper: float = 1e6) -> ActionSpace:
    """One real feature ``v`` (MAD ``scale``, 0..upper), one whole one ``n``; applicant
    v = 1, n = 3."""
    schema = FeatureSchema(
        features=(
            FeatureSpec("v", "numeric", lower=0, upper=upper),
            FeatureSpec("n", "numeric", lower=0, upper=10, integer=True),
        ),
        target="y",
    )
    scales = Scales(
        scale=np.array([scale, 1.0]),
        lower=np.array([0.0, 0.0]),
        upper=np.array([upper, 10.0]),
        center=np.zeros(2),
        spread=np.ones(2),
    )
    return ActionSpace.build(schema, np.array([1.0, 3.0]), scales, None)


def test_readable_rounds_each_change_away_from_the_applicant_to_a_printable_step():
    """A MILP optimum or a tree split's edge (3784.495949) printed to the cent (3,784.5) fell
    back on the denied side; the plan's value itself is now the printed one, and never
    nearer the applicant than the method's."""
    money = _real_space(scale=10_000.0)  # a cent
    Z = np.array(
        [
            [3784.495949, 3.0],  # up: to the next cent
            [0.567891, 3.0],  # down: to the cent below
            [1.8, 3.0],  # already a cent: kept
            [1.0, 7.0],  # v unchanged, n whole: both kept
        ]
    )
    assert money.readable(Z).tolist() == [[3784.5, 3.0], [0.56, 3.0], [1.8, 3.0], [1.0, 7.0]]
    # the nearest step, for the model to judge; but never back onto the applicant's value
    Z[3, 0] = 1.004
    assert money.readable(Z, nearest=True).tolist() == [
        [3784.5, 3.0],
        [0.57, 3.0],
        [1.8, 3.0],
        [1.01, 7.0],
    ]
    fine = _real_space(scale=2.0)  # a thousandth of a scale under 10
    assert fine.readable(np.array([[1.23411, 3.0], [0.98765, 3.0]])).tolist() == [
        [1.235, 3.0],
        [0.987, 3.0],
    ]
    capped = _real_space(scale=2.0, upper=9.9995)  # the range wins over the step
    assert capped.readable(np.array([[9.9991, 3.0]])).tolist() == [[9.9995, 3.0]]


def test_a_plan_as_printed_gets_the_applicant_approved():
    """An audit applied printed plans to its own model: MILP optima sit on the boundary, so
    rounding them for print put about half of the logistic plans back on the denied side."""
    from sklearn.linear_model import LogisticRegression

    from cfx.recourse.plan import number

    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        {
            "income": rng.uniform(20_000, 90_000, 400).round(2),
            "debt": rng.uniform(0, 30_000, 400).round(2),
        }
    )
    score = (X["income"] - 50_000) / 10_000 - (X["debt"] - 15_000) / 8_000
    y = (score + rng.normal(0, 1, 400) > 0).astype(int)
    model = LogisticRegression(max_iter=1000).fit(X, y)
    schema = FeatureSchema(
        features=(FeatureSpec("income", "numeric"), FeatureSpec("debt", "numeric")), target="y"
    )
    rec = Recourse(model, schema, method="milp", support=0.0, k=2).fit(X)
    denied = X[model.predict_proba(X)[:, 1] < 0.5].iloc[:20]
    checked = 0
    for res in rec.explain(denied):
        assert res.status == "recourse"
        for cf in res.counterfactuals:
            for change in cf.changes:
                assert float(number(change.after).replace(",", "")) == change.after
                assert number(change.after) in cf.plan
            approved = model.predict_proba(pd.DataFrame([cf.values]))[0, 1]
            assert approved >= 0.5 and approved == pytest.approx(cf.proba_after)
            checked += 1
    assert checked >= 20


def test_readable_stops_at_the_finest_step_a_plan_prints():
    """A feature of MAD 0.0008 asked for a 1e-7 step, finer than the six decimals a plan
    prints: 'from 0.0512 to 0.0512' for a checked 0.0512438."""
    from cfx.recourse.plan import number

    tiny = _real_space(scale=0.0008)
    (row,) = tiny.readable(np.array([[1.0512438, 3.0]]))
    assert row[0] == 1.051244 and number(row[0]) == "1.051244"
    assert number(float("nan")) == "nan"  # DiCE's output is not checked; no crash


def test_every_column_at_fault_is_named_at_once(fitted, german):
    """A file with a text number and an unknown category named only the first column, so a
    user fixed one column per run (the batch README says it checks the whole file)."""
    rows = german.X.iloc[[0, 1, 2]].astype({"purpose": "object", "credit_amount": "object"})
    rows.iloc[1, rows.columns.get_loc("purpose")] = "vacation"
    rows.iloc[2, rows.columns.get_loc("credit_amount")] = "5,000"
    with pytest.raises(ValueError, match=r"has 2 columns at fault: ") as caught:
        fitted.explain(rows)
    said = str(caught.value)
    assert "column `purpose` has unknown categories ['vacation'] (first rows [1])" in said
    assert "`credit_amount` must be numeric" in said and "'5,000'" in said


def test_infinite_values_are_named_by_row(fitted, german):
    """NaN named the first rows; inf said only 'has infinite values'."""
    rows = german.X.iloc[[0, 1, 2]].astype({"credit_amount": "float64"})
    rows.iloc[2, rows.columns.get_loc("credit_amount")] = np.inf
    with pytest.raises(ValueError, match=r"`credit_amount` must hold finite numbers, got \[inf\]"):
        fitted.explain(rows)
    with pytest.raises(ValueError, match=r"\(first rows \[2\]\)"):
        fitted.explain(rows)


def test_a_rule_the_schema_refuses_names_the_constraint_that_made_it(fitted, german):
    """A bound on a category said only "feature `housing`: `lower`/`upper`/`integer` are for
    numeric features only", which read as a fault in the schema."""
    row = german.X.iloc[[0]]
    with pytest.raises(ValueError, match=r"^`constraints\.bounds\['housing'\]`: feature `hou"):
        fitted.explain(row, constraints=Constraints(bounds={"housing": (0, 1)}))
    with pytest.raises(ValueError, match=r"^`constraints\.costs\['duration_in_month'\]`: "):
        fitted.explain(row, constraints=Constraints(costs={"duration_in_month": -1.0}))


def test_an_applicant_outside_a_querys_bounds_is_noticed(hand, caplog):
    """Bounds limit where a changed value may go: a denied applicant at x1 = 5 with bounds
    (None, 3) may keep 5 in every plan, which an audit read as a bank limit ignored; with
    direction 'increase' x1 cannot move at all. Both were silent; a value inside, or an
    approved applicant (no plan to make), says nothing."""
    model, schema, X = hand
    rec = Recourse(model, schema, method="search", support=0.0).fit(X)
    row = pd.DataFrame({"x1": [5], "x2": [0.0], "c": ["a"]})  # logit -0.7: denied

    def said() -> list[str]:
        out = [
            r.getMessage() for r in caplog.records if "bounds of `constraints`" in r.getMessage()
        ]
        caplog.clear()
        return out

    with caplog.at_level("WARNING"):
        rec.explain(row, constraints=Constraints(bounds={"x1": (None, 3)}))
        (one,) = said()
        assert "row 0: x1 = 5 outside [0, 3]. Bounds limit" in one
        rules = Constraints(bounds={"x1": (None, 3)}, direction={"x1": "increase"})
        (res,) = rec.explain(row, constraints=rules)
        (two,) = said()
        assert "x1 = 5 outside [0, 3], and direction 'increase' keeps it there" in two
        assert res.status == "recourse" and res.counterfactuals
        assert all(cf.values["x1"] == 5 for cf in res.counterfactuals)
        rec.explain(row, constraints=Constraints(bounds={"x1": (None, 8)}))
        approved = row.assign(x2=2.0)  # logit 0.3
        rec.explain(approved, constraints=Constraints(bounds={"x1": (None, 3)}))
        assert said() == []


def test_max_shift_caps_how_far_a_plan_moves_a_value(hand):
    """x1 may rise by at most 2 from the applicant's own value: the space's range narrows
    around it (inside the schema's 0..10), a plan past it is a violation, and no method
    proposes one. With x2 and c held, logit = -3.2 + 0.5 x1 + 1 reaches 0 at x1 = 4.4, so the
    uncapped plan is x1 -> 5, and the capped MILP proves there is none (x1 <= 3: -0.7)."""
    model, schema, X = hand
    capped = schema.replace("x1", max_shift=2)
    z0 = np.array([1.0, 1.0, 0.0])
    space = ActionSpace.build(
        capped, z0, Scales.learn(capped, np.array([[0, 0, 0], [10, 10, 2]]), "mad"), None
    )
    assert (space.lo[0], space.hi[0]) == (0.0, 3.0)
    assert space.violations(np.array([4.0, 1.0, 0.0])) == [
        "`x1` = 4 is outside the allowed [0, 3] (range, direction and max_shift)"
    ]
    rec = Recourse(model, capped, support=0.0).fit(X)
    only_x1 = Constraints(immutable=("x2", "c"))
    (res,) = rec.explain(pd.DataFrame({"x1": [1], "x2": [1.0], "c": ["a"]}), constraints=only_x1)
    assert res.status == "infeasible"
    (free,) = (
        Recourse(model, schema, support=0.0)
        .fit(X)
        .explain(pd.DataFrame({"x1": [1], "x2": [1.0], "c": ["a"]}), constraints=only_x1)
    )
    assert free.status == "recourse" and free.counterfactuals[0].values["x1"] == 5
    # the certificate names the cap, not a direction rule x1 does not have
    assert "`x1` may move at most 2 from 1 (within [0, 3])" in res.reason
    rising = capped.replace("x1", direction="increase")
    (up,) = (
        Recourse(model, rising, support=0.0)
        .fit(X)
        .explain(pd.DataFrame({"x1": [1], "x2": [1.0], "c": ["a"]}), constraints=only_x1)
    )
    assert "`x1` may only increase, by at most 2 from 1 (within [1, 3])" in up.reason


def test_transition_costs_price_one_category_change_above_another(hand):
    """c: a -> b is one step, a -> c six with transition_costs (c's cost set to 1). The hand
    logit at x1 = 1, x2 held, c = a is -1.7; c -> c (+2.5) flips it alone, b (+0.4) needs
    x1 + 3 (+1.5), x1 alone needs + 4 (3.4 rounded up). Unpriced, the proven minimum is c -> c
    at 1; priced, c -> c costs 6 and the minimum is 4 (x1 + 4, or b and x1 + 3)."""
    model, schema, X = hand
    row = pd.DataFrame({"x1": [1], "x2": [1.0], "c": ["a"]})
    rules = Constraints(immutable=("x2",), costs={"c": 1.0})
    priced = schema.replace("c", transition_costs={"a": {"c": 6}})
    scales = Scales.learn(priced, np.array([[0, 0, 0], [10, 10, 2]]), "mad")
    space = ActionSpace.build(rules.apply(priced), np.array([1.0, 1.0, 0.0]), scales, None)
    rows = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0], [1.0, 1.0, 2.0]])
    assert space.cost(rows).tolist() == [0.0, 1.0, 6.0]
    for code in (3.0, -1.0, np.nan):  # not one of c's three categories: named, not clipped
        with pytest.raises(ValueError, match=r"`c`: codes must be whole numbers in 0\.\.2"):
            space.cost(np.array([[1.0, 1.0, code]]))

    (free,) = (
        Recourse(model, schema, method="milp", support=0.0).fit(X).explain(row, constraints=rules)
    )
    assert free.min_cost == pytest.approx(1.0)
    assert free.counterfactuals[0].values["c"] == "c"
    for method in ("milp", "search"):
        (res,) = (
            Recourse(model, priced, method=method, support=0.0)
            .fit(X)
            .explain(row, constraints=rules)
        )
        first = res.counterfactuals[0]
        assert first.cost == pytest.approx(4.0), method
        assert first.values["c"] != "c", method
        if method == "milp":
            assert res.min_cost == pytest.approx(4.0)


def test_constraints_price_category_changes_per_query(hand):
    """`Constraints.transition_costs` prices one applicant's category changes as the schema's
    field does (the known answer of the test above: c -> c at 6 steps makes the minimum 4), and
    None there takes the schema's prices off for that applicant (back to c -> c at 1)."""
    model, schema, X = hand
    row = pd.DataFrame({"x1": [1], "x2": [1.0], "c": ["a"]})
    base = {"immutable": ("x2",), "costs": {"c": 1.0}}
    per_query = Constraints(**base, transition_costs={"c": {"a": {"c": 6}}})
    (res,) = (
        Recourse(model, schema, method="milp", support=0.0)
        .fit(X)
        .explain(row, constraints=per_query)
    )
    assert res.min_cost == pytest.approx(4.0)
    assert res.counterfactuals[0].values["c"] != "c"

    priced = schema.replace("c", transition_costs={"a": {"c": 6}})
    unpriced = Constraints(**base, transition_costs={"c": None})
    (res,) = (
        Recourse(model, priced, method="milp", support=0.0)
        .fit(X)
        .explain(row, constraints=unpriced)
    )
    assert res.min_cost == pytest.approx(1.0)
    assert res.counterfactuals[0].values["c"] == "c"


def test_constraints_transition_costs_are_checked_against_the_schema(hand):
    _, schema, _ = hand
    with pytest.raises(TypeError, match="`transition_costs` must be a mapping by feature name"):
        Constraints(transition_costs=[("c", {})])  # type: ignore[arg-type]
    with pytest.raises(UnknownNameError, match="colour"):
        Constraints(transition_costs={"colour": {"a": {"b": 2}}}).apply(schema)
    with pytest.raises(ValueError, match=r"names unknown categories \['d'\]"):
        Constraints(transition_costs={"c": {"a": {"d": 2}}}).apply(schema)
    with pytest.raises(ValueError, match="`transition_costs` is for categorical features"):
        Constraints(transition_costs={"x1": {"a": {"b": 2}}}).apply(schema)
    # a whitelist given in the same rules applies first; a price outside it is harmless
    rules = Constraints(transitions={"c": {"a": ("b",)}}, transition_costs={"c": {"a": {"b": 3}}})
    assert rules.apply(schema)["c"].step_costs("a") == (0.0, 3.0, 1.0)


def test_names_as_arrays_booleans_and_a_bare_parent_are_handled_by_name():
    """Constraints(immutable=np.array([...])) and a pandas Index were refused; a bool column
    declared numeric was said to hold "numbers as text" (pd.to_numeric changes nothing);
    AdditiveSCM({"y": ("x")}) failed at fit naming the letters of 'x...' as features."""
    import numpy as np
    import pandas as pd

    from cfx.data.schema import FeatureSchema, FeatureSpec
    from cfx.recourse import AdditiveSCM, Constraints, Recourse

    assert Constraints(immutable=np.array(["a"])).immutable == ("a",)
    assert Constraints(mutable=pd.Index(["b", "c"])).mutable == ("b", "c")
    with pytest.raises(
        TypeError,
        match=r"`parents\['y'\]` must be a tuple of feature names, "
        r"got the string 'xx'; did you mean \('xx',\)\?",
    ):
        AdditiveSCM({"y": ("xx")})

    class Half:
        def predict_proba(self, X):
            return np.full((len(X), 2), 0.5)

    schema = FeatureSchema((FeatureSpec("g", "numeric", lower=0, upper=1, integer=True),), "y")
    X = pd.DataFrame({"g": [True, False, True]})
    with pytest.raises(
        TypeError,
        match=r"column `g` holds booleans, declared numeric: declare "
        r"it categorical",
    ):
        Recourse(Half(), schema, support=0.0).fit(X)


def test_integer_codes_in_a_float_column_are_their_categories():
    """One applicant as a Series of an all-numeric frame (float64) had grade 1.0, refused as
    "unknown categories ['1.0']" for codes declared ('1', '2', '3'); so was a frame whose
    code column turned float (a CSV column with a gap)."""
    import numpy as np
    import pandas as pd

    from cfx.data.schema import FeatureSchema, FeatureSpec
    from cfx.recourse import Recourse

    class OnGrade:
        def predict_proba(self, X):
            p = 1.0 / (1.0 + np.exp(-(X["grade"].astype(float).to_numpy() - 2.5) * 4))
            return np.stack([1.0 - p, p], axis=1)

    schema = FeatureSchema(
        (
            FeatureSpec("income", "numeric", lower=0),
            FeatureSpec("grade", "ordinal", ("1", "2", "3")),
        ),
        "y",
    )
    X = pd.DataFrame({"income": [10.0, 20.0, 30.0] * 4, "grade": [1, 2, 3] * 4})
    rec = Recourse(OnGrade(), schema, support=0.0, k=1).fit(X)
    row = X.iloc[[0]]
    (want,) = rec.explain(row)
    (as_series,) = rec.explain(X.iloc[0])
    (as_float,) = rec.explain(row.astype({"grade": float}))
    assert as_series.plan == as_float.plan == want.plan
    with pytest.raises(ValueError, match=r"unknown categories \['1.5'\]"):
        rec.explain(row.astype({"grade": float}).assign(grade=1.5))
    # X_train's own codes in a float column: ('1', '2', '3') was refused at fit, asking for
    # ('1.0', ...), which then refused applicants whose codes are integers (session 54)
    floats = X.astype({"grade": float})
    rec = Recourse(OnGrade(), schema, support=0.0, k=1, approved=1).fit(floats)
    (from_float,) = rec.explain(row)
    assert from_float.plan == want.plan and "'1' to '3'" in want.plan
    assert rec.counterfactual_frame(from_float)["grade"].tolist() == [3.0]  # as X_train's
    dotted = FeatureSchema(
        (schema.features[0], FeatureSpec("grade", "ordinal", ("1.0", "2.0", "3.0"))), "y"
    )
    rec = Recourse(OnGrade(), dotted, support=0.0, k=1, approved=1).fit(floats)
    (from_int,) = rec.explain(row)
    assert from_int.plan == want.plan.replace("'1'", "'1.0'").replace("'3'", "'3.0'")
    with pytest.raises(ValueError, match=r"categories \(' 1', '2', '3'\) must be written as"):
        spaced = FeatureSchema(
            (schema.features[0], FeatureSpec("grade", "ordinal", (" 1", "2", "3"))), "y"
        )
        Recourse(OnGrade(), spaced, approved=1).fit(floats)
