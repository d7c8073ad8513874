"""German Credit loader and feature schema: known answers from the UCI Statlog file."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from cfx.data.credit import (
    FeatureSchema,
    FeatureSpec,
    GermanCredit,
    german_schema,
    load_german,
    summary_table,
)
from cfx.errors import UnknownNameError

SAVINGS = "savings_account_and_bonds"
SEX = "personal_status_and_sex"


@pytest.fixture(scope="module")
def data() -> GermanCredit:
    return load_german()


# -- loading -----------------------------------------------------------------------------------


def test_shape_and_label_counts(data: GermanCredit) -> None:
    assert data.X.shape == (1000, 20)
    assert len(data) == 1000
    assert list(data.X.columns) == list(data.schema.names)
    assert data.y.name == "approved"
    assert data.y.dtype == np.int64
    # UCI: 700 good, 300 bad; 1 = good (approved)
    assert data.y.value_counts().to_dict() == {1: 700, 0: 300}


def test_each_column_has_the_dtype_its_kind_says(data: GermanCredit) -> None:
    for spec in data.schema:
        column = data.X[spec.name]
        if spec.kind == "numeric":
            assert column.dtype == np.int64, spec.name
        else:
            assert isinstance(column.dtype, pd.CategoricalDtype), spec.name
            assert column.dtype.ordered == (spec.kind == "ordinal"), spec.name
            # the full category list from the schema, not just the observed ones
            assert tuple(column.cat.categories) == spec.categories, spec.name
    assert len(data.schema.numeric) == 7
    assert len(data.schema.ordinal) == 3
    assert set(data.schema.numeric) | set(data.schema.categorical) == set(data.schema.names)


def test_first_rows_known_answers(data: GermanCredit) -> None:
    # UCI german.data line 1: A11 6 A34 A43 1169 A65 A75 4 A93 ... 67 ... class 1 (good)
    first = data.X.iloc[0]
    assert (first["duration_in_month"], first["credit_amount"], first["age_in_years"]) == (
        6,
        1169,
        67,
    )
    assert first[SEX] == "male : single"  # A93
    assert first[SAVINGS] == "unknown/ no savings account"  # A65
    assert data.y.iloc[0] == 1
    # line 2: A12 48 A32 A43 5951 A61 A73 2 A92 ... 22 ... class 2 (bad)
    second = data.X.iloc[1]
    assert (second["duration_in_month"], second["credit_amount"], second["age_in_years"]) == (
        48,
        5951,
        22,
    )
    assert second[SEX] == "female : divorced/separated/married"  # A92
    assert data.y.iloc[1] == 0


def test_personal_status_is_per_row_not_sorted(data: GermanCredit) -> None:
    # The upstream CSV had this column sorted; the shipped copy is repaired from german.data.
    sex = data.X[SEX].astype(str)
    assert sex.value_counts().to_dict() == {
        "male : single": 548,
        "female : divorced/separated/married": 310,
        "male : married/widowed": 92,
        "male : divorced/separated": 50,
    }
    # german.data lines 9 and 10: A91 (age 61) and A94 (age 28)
    assert sex.iloc[8] == "male : divorced/separated"
    assert data.X["age_in_years"].iloc[8] == 61
    assert sex.iloc[9] == "male : married/widowed"
    assert (sex != sex.shift()).sum() > 100  # many runs, not four sorted blocks
    assert data.X[SEX].value_counts()["female : single"] == 0  # code A95: in the table, no row


def test_ordered_categories_in_documented_order(data: GermanCredit) -> None:
    savings = data.X[SAVINGS].cat.categories.tolist()
    assert savings == [
        "unknown/ no savings account",
        "... < 100 DM",
        "100 <= ... < 500 DM",
        "500 <= ... < 1000 DM",
        "... >= 1000 DM",
    ]
    employment = data.X["present_employment_since"].cat.categories.tolist()
    assert employment == [
        "unemployed",
        "... < 1 year",
        "1 <= ... < 4 years",
        "4 <= ... < 7 years",
        "... >= 7 years",
    ]
    assert data.X["job"].cat.categories[0] == "unemployed/ unskilled - non-resident"
    assert data.X["job"].cat.categories[-1].startswith("management")
    # comparisons follow the order
    assert (data.X[SAVINGS] >= "... >= 1000 DM").sum() == 48


def test_plain_string_frame_and_validate_pass() -> None:
    plain = load_german(as_frame=False)
    assert not isinstance(plain.X[SAVINGS].dtype, pd.CategoricalDtype)
    assert plain.X[SAVINGS].iloc[0] == "unknown/ no savings account"
    plain.schema.validate(plain.X)
    with pytest.raises(TypeError, match="as_frame"):
        load_german(as_frame="yes")  # type: ignore[arg-type]


# -- schema defaults ---------------------------------------------------------------------------


def test_default_actionability() -> None:
    schema = german_schema()
    assert len(schema) == 20
    for name in (
        SEX,
        "foreign_worker",
        "credit_history",
        "number_of_people_being_liable_to_provide_maintenance_for",
    ):
        assert name in schema.immutable
    assert schema["age_in_years"].direction == "increase"
    assert schema["age_in_years"].cost > 1
    assert schema["age_in_years"].max_shift == 5  # a wait of years, not decades
    assert schema["purpose"].allowed_targets("car (new)") == ("car (used)",)
    assert schema["purpose"].allowed_targets("education") == ()
    assert schema["present_employment_since"].direction == "increase"
    duration = schema["duration_in_month"]
    assert (duration.lower, duration.upper, duration.integer) == (4, 72, True)
    amount = schema["credit_amount"]
    assert (amount.lower, amount.upper, amount.mutable) == (250, 18424, True)
    assert schema.target == "approved"


def test_unknown_feature_names_the_known_ones() -> None:
    schema = german_schema()
    with pytest.raises(UnknownNameError, match="nope") as info:
        schema["nope"]
    assert "age_in_years" in str(info.value) and "foreign_worker" in str(info.value)
    with pytest.raises(KeyError):  # catchable as the builtin
        schema["nope"]


def test_replace_returns_new_schema_and_leaves_old() -> None:
    schema = german_schema()
    frozen = schema.replace("age_in_years", mutable=False)
    assert frozen is not schema
    assert "age_in_years" in frozen.immutable
    assert "age_in_years" not in schema.immutable
    assert schema["age_in_years"].mutable is True
    assert frozen.names == schema.names
    assert frozen["credit_amount"] is schema["credit_amount"]
    with pytest.raises(ValueError, match="cost"):
        schema.replace("age_in_years", cost=-1.0)
    with pytest.raises(TypeError, match="colour"):
        schema.replace("age_in_years", colour="red")
    with pytest.raises(UnknownNameError):
        schema.replace("nope", mutable=False)


# -- validate ----------------------------------------------------------------------------------


def test_validate_missing_column(data: GermanCredit) -> None:
    df = data.X.drop(columns=["credit_amount", "job"])
    with pytest.raises(ValueError, match="credit_amount") as info:
        data.schema.validate(df)
    assert "job" in str(info.value)


def test_validate_unknown_category(data: GermanCredit) -> None:
    df = data.X.astype({"housing": "str"})
    df.loc[3, "housing"] = "castle"
    with pytest.raises(ValueError, match="housing") as info:
        data.schema.validate(df)
    assert "castle" in str(info.value) and "rent" in str(info.value)


def test_validate_nan(data: GermanCredit) -> None:
    df = data.X.astype({"age_in_years": "float64"})
    df.loc[[5, 7], "age_in_years"] = np.nan
    with pytest.raises(ValueError, match=r"age_in_years.* 2 missing"):
        data.schema.validate(df)


def test_validate_out_of_range(data: GermanCredit) -> None:
    df = data.X.copy()
    df.loc[0, "duration_in_month"] = 100
    with pytest.raises(ValueError, match=r"duration_in_month.*outside \[4, 72\]"):
        data.schema.validate(df)


def test_validate_non_numeric_and_non_integer(data: GermanCredit) -> None:
    df = data.X.astype({"credit_amount": "object"})
    df.loc[0, "credit_amount"] = "lots"
    with pytest.raises(TypeError, match=r"credit_amount.*lots"):
        data.schema.validate(df)
    df = data.X.astype({"credit_amount": "float64"})
    df.loc[0, "credit_amount"] = 1000.5
    with pytest.raises(ValueError, match=r"credit_amount.*whole"):
        data.schema.validate(df)
    with pytest.raises(TypeError, match="DataFrame"):
        data.schema.validate(data.X.to_numpy())


# -- FeatureSpec -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "exc", "pattern"),
    [
        ({"kind": "text"}, ValueError, "kind"),
        ({"kind": "numeric", "direction": "up"}, ValueError, "direction"),
        ({"kind": "numeric", "lower": 5, "upper": 1}, ValueError, "lower"),
        ({"kind": "numeric", "lower": 0.5, "integer": True}, ValueError, "whole"),
        ({"kind": "numeric", "categories": ("a", "b")}, ValueError, "categories"),
        ({"kind": "numeric", "cost": 0.0}, ValueError, "cost"),
        ({"kind": "numeric", "cost": math.inf}, ValueError, "cost"),
        ({"kind": "ordinal", "categories": ("a",)}, ValueError, "at least 2"),
        ({"kind": "ordinal", "categories": ("a", "a")}, ValueError, "duplicates"),
        ({"kind": "ordinal", "categories": "ab"}, TypeError, "tuple of str"),
        ({"kind": "categorical", "categories": ("a", "b"), "lower": 0}, ValueError, "numeric"),
        ({"kind": "numeric", "max_shift": 0}, ValueError, r"`max_shift` must be .* > 0"),
        ({"kind": "numeric", "max_shift": math.nan}, ValueError, "max_shift"),
        ({"kind": "numeric", "max_shift": "5"}, ValueError, "max_shift"),
        (
            {"kind": "ordinal", "categories": ("a", "b"), "max_shift": 1},
            ValueError,
            "`max_shift` is for numeric features",
        ),
        (
            {"kind": "categorical", "categories": ("a", "b"), "direction": "increase"},
            ValueError,
            "transitions",
        ),
        (
            {"kind": "categorical", "categories": ("a", "b"), "transitions": {"a": ("z",)}},
            ValueError,
            "'z'",
        ),
        (
            {"kind": "categorical", "categories": ("a", "b"), "transitions": {"a": "b"}},
            TypeError,
            "tuple of str",
        ),
        (
            {"kind": "ordinal", "categories": ("a", "b"), "transitions": {"a": ("b",)}},
            ValueError,
            "transitions",
        ),
        (
            {"kind": "numeric", "transition_costs": {}},
            ValueError,
            "`transition_costs` is for categorical features",
        ),
        (
            {"kind": "ordinal", "categories": ("a", "b"), "transition_costs": {"a": {"b": 2}}},
            ValueError,
            "one step per rank moved",
        ),
        (
            {"kind": "categorical", "categories": ("a", "b"), "transition_costs": {"a": {"z": 2}}},
            ValueError,
            r"unknown categories \['z'\]",
        ),
        (
            {"kind": "categorical", "categories": ("a", "b"), "transition_costs": {"a": {"a": 2}}},
            ValueError,
            "prices staying at 'a'",
        ),
        (
            {"kind": "categorical", "categories": ("a", "b"), "transition_costs": {"a": {"b": 0}}},
            ValueError,
            r"steps must be finite numbers > 0, got \{'b': 0\}",
        ),
        (
            {
                "kind": "categorical",
                "categories": ("a", "b"),
                "transition_costs": {"a": {"b": "2"}},
            },
            ValueError,
            "steps must be finite numbers",
        ),
        (
            {"kind": "categorical", "categories": ("a", "b"), "transition_costs": {"a": 2}},
            TypeError,
            r"`transition_costs\['a'\]` must map target categories to steps",
        ),
    ],
)
def test_feature_spec_rejects(
    kwargs: dict[str, object], exc: type[Exception], pattern: str
) -> None:
    with pytest.raises(exc, match=pattern):
        FeatureSpec("f", **kwargs)  # type: ignore[arg-type]


def test_allowed_targets() -> None:
    schema = german_schema()
    employment = schema["present_employment_since"]
    assert employment.allowed_targets("4 <= ... < 7 years") == ("... >= 7 years",)
    assert employment.allowed_targets("... >= 7 years") == ()
    assert schema[SEX].allowed_targets("male : single") == ()
    assert schema["purpose"].allowed_targets("business") == ()  # listed: a new car only
    assert len(schema["job"].allowed_targets("unskilled - resident")) == 2  # ordinal, upwards
    phone = FeatureSpec(
        "telephone",
        "categorical",
        ("none", "yes"),
        transitions={"none": ["yes"]},  # type: ignore[dict-item]
    )
    assert phone.allowed_targets("none") == ("yes",)
    assert phone.allowed_targets("yes") == ()  # absent from the whitelist: fixed
    assert phone.transitions is not None and phone.transitions["none"] == ("yes",)
    hash(phone)  # usable as a dict key despite the mapping
    with pytest.raises(ValueError, match="unknown category"):
        phone.allowed_targets("maybe")
    with pytest.raises(TypeError, match="numeric"):
        schema["age_in_years"].allowed_targets("1")


def test_schema_rejects_duplicates_and_target_clash() -> None:
    a = FeatureSpec("a", "numeric")
    with pytest.raises(ValueError, match="duplicates"):
        FeatureSchema(features=(a, a), target="y")
    with pytest.raises(ValueError, match="target"):
        FeatureSchema(features=(a,), target="a")
    with pytest.raises(TypeError, match="FeatureSpec"):
        FeatureSchema(features=("a",), target="y")  # type: ignore[arg-type]


# -- summary -----------------------------------------------------------------------------------


def test_summary_table(data: GermanCredit) -> None:
    table = summary_table(data)
    assert len(table) == 21
    assert table.loc["approved", "approved_rate"] == pytest.approx(0.7)
    assert table.loc["duration_in_month", "min"] == 4
    assert table.loc["duration_in_month", "max"] == 72
    assert table.loc["duration_in_month", "domain"] == "4..72"
    assert table.loc["purpose", "most_frequent"] == "radio/television"
    assert table.loc["purpose", "most_frequent_share"] == pytest.approx(0.28)
    assert not table.loc[SEX, "mutable"]
    assert table.loc["credit_amount", "mutable"]
    assert table.loc["age_in_years", "direction"] == "increase, by at most 5"
    # categorical features with transitions may change only as listed, not "any" way
    assert table.loc["other_installment_plans", "direction"] == "listed changes only"
    assert table.loc["purpose", "direction"] == "listed changes only"
    assert table.loc["status_of_existing_checking_account", "direction"] == (
        "listed changes only, some changes priced in steps"
    )
    assert table.loc["duration_in_month", "direction"] == "any"


def test_step_costs_count_ranks_or_priced_transitions() -> None:
    """Ordinal: ranks moved; categorical: 1 per change unless `transition_costs` prices it;
    0 for staying. The German checking account: 200 DM or more is two steps from below 0 DM
    or from no account, one from 0..200 DM."""
    rank = FeatureSpec("r", "ordinal", ("lo", "mid", "hi"))
    assert rank.step_costs("lo") == (0.0, 1.0, 2.0)
    assert rank.step_costs("hi") == (2.0, 1.0, 0.0)
    plain = FeatureSpec("p", "categorical", ("a", "b", "c"))
    assert plain.step_costs("b") == (1.0, 0.0, 1.0)
    priced = FeatureSpec("p", "categorical", ("a", "b", "c"), transition_costs={"a": {"c": 2.5}})
    assert priced.step_costs("a") == (0.0, 1.0, 2.5)
    assert priced.step_costs("c") == (1.0, 1.0, 0.0)  # only a -> c is priced
    with pytest.raises(ValueError, match="unknown category 'z'"):
        priced.step_costs("z")
    with pytest.raises(TypeError, match="numeric"):
        FeatureSpec("n", "numeric").step_costs("a")
    # nothing priced is the default, so that a schema's digest (batches) reads it as unset
    assert FeatureSpec("p", "categorical", ("a", "b"), transition_costs={}).transition_costs is None
    empty = FeatureSpec("p", "categorical", ("a", "b"), transition_costs={"a": {}, "b": {"a": 3}})
    assert dict(empty.transition_costs or {}) == {"b": {"a": 3.0}}
    account = german_schema()["status_of_existing_checking_account"]
    below_0, below_200, _, none = account.categories
    assert account.step_costs(below_0) == (0.0, 1.0, 2.0, 1.0)
    assert account.step_costs(below_200)[2] == 1.0
    assert account.step_costs(none) == (1.0, 1.0, 2.0, 0.0)


def test_transitions_table_lists_the_allowed_changes(data: GermanCredit) -> None:
    from cfx.data.credit import transitions_table

    table = transitions_table(data)
    plans = table[table["feature"] == "other_installment_plans"]
    assert plans["from"].tolist() == ["bank", "stores"]
    assert plans["may change to"].tolist() == ["none", "none"]
    assert set(table["feature"]) == {
        "status_of_existing_checking_account",
        "purpose",
        "property",
        "other_installment_plans",
        "housing",
    }
    # a home is not given up (a first plan asked 'own -> for free')
    housing = table[table["feature"] == "housing"]
    assert housing[["from", "may change to"]].values.tolist() == [
        ["rent", "own"],
        ["for free", "rent; own"],
    ]
    assert german_schema()["housing"].allowed_targets("own") == ()
    cars = table[table["feature"] == "purpose"]
    assert cars[["from", "may change to"]].values.tolist() == [["car (new)", "car (used)"]]
    account = table[table["feature"] == "status_of_existing_checking_account"]
    assert account["may change to"].iloc[0] == (
        "0 <= ... < 200 DM; ... >= 200 DM / salary assignments for at least 1 year (2 steps)"
    )
