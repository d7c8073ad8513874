"""Plain-language plans and the flat result table."""

from __future__ import annotations

import pandas as pd
import pytest

from cfx.data.credit import german_schema
from cfx.recourse import Change, to_frame
from cfx.recourse.plan import GERMAN_PHRASES, describe, number, plan


def test_german_phrases():
    schema = german_schema()

    def say(name, before, after):
        return describe(schema[name], before, after, GERMAN_PHRASES)

    assert say("credit_amount", 5951, 4700) == "reduce the credit amount from 5,951 to 4,700 DM"
    assert say("duration_in_month", 48, 36) == "shorten the duration from 48 to 36 months"
    assert say("age_in_years", 31, 33) == "wait until age 33 (now 31)"
    assert say("other_debtors_or_guarantors", "none", "guarantor") == "find a guarantor"
    assert say("telephone", "none", "yes, registered under the customers name") == (
        "register a telephone under your name"
    )


def test_generic_phrases_and_consequences():
    schema = german_schema().replace("credit_amount", description="x")
    text = describe(schema["credit_amount"], 10, 12, {})
    assert text == "increase `credit_amount` from 10 to 12"
    changes = (
        Change("credit_amount", 5951, 4700, 1.5, True, "reduce the amount"),
        Change("duration_in_month", 48, 45, 0.0, False, "shorten the duration"),
    )
    assert plan(changes) == "reduce the amount (as a consequence: shorten the duration)"


def test_german_phrases_for_swaps_and_giving_up():
    schema = german_schema()

    def say(name, before, after):
        return describe(schema[name], before, after, GERMAN_PHRASES)

    assert say("other_debtors_or_guarantors", "co-applicant", "guarantor") == (
        "find a guarantor instead of a co-applicant"
    )
    assert say("telephone", "yes", "none") == "give up the telephone registered under your name"
    assert say("purpose", "car (new)", "education") == (
        "apply for 'education' instead of 'car (new)'"
    )


def test_generic_phrase_for_a_decrease():
    schema = german_schema()
    assert describe(schema["credit_amount"], 5, 3, {}) == "decrease `credit_amount` from 5 to 3"


def test_numbers_are_written_with_thousands_separators_and_no_trailing_zero():
    assert number(2.2) == "2.2"
    assert number(1234.5) == "1,234.5"
    assert number(4700.0) == "4,700"


def test_to_frame_has_one_row_per_counterfactual(german, split, credit_models, denied):
    from cfx.recourse import Recourse

    rec = Recourse(credit_models["mlp"], german.schema, k=2).fit(german.X.iloc[split[0]])
    results = rec.explain(denied["mlp"].iloc[:3])
    table = to_frame(results)
    assert len(table) == sum(max(1, len(r.counterfactuals)) for r in results)
    assert {"index", "rank", "plan", "cost", "proba_after", "plausibility"} <= set(table.columns)


def test_german_wording_only_for_the_german_credit_features(hand):
    """A `credit_amount` of one's own is not in DM: the German phrases are the default only for
    a schema of the German Credit features."""
    from dataclasses import replace

    from cfx.data.credit import german_schema
    from cfx.data.schema import FeatureSchema
    from cfx.recourse.plan import GERMAN_PHRASES
    from cfx.recourse.recourse import default_phrases

    assert default_phrases(german_schema()) is GERMAN_PHRASES
    _, schema, _ = hand
    mine = FeatureSchema(
        features=tuple(
            replace(f, name="credit_amount") if f.name == "x2" else f for f in schema.features
        ),
        target=schema.target,
    )
    assert default_phrases(mine) == {}
    spec = mine.features[1]
    assert describe(spec, 5000.0, 4000.0, default_phrases(mine)) == (
        "decrease `credit_amount` from 5,000 to 4,000"
    )


def test_phrases_are_checked_at_fit(hand):
    from cfx.errors import UnknownNameError
    from cfx.recourse import Recourse

    model, schema, X = hand
    with pytest.raises(UnknownNameError, match=r"`phrases` names features .* \['incme'\]"):
        Recourse(model, schema, phrases={"incme": lambda a, b: "x"}).fit(X)
    with pytest.raises(TypeError, match=r"must be callables .* not for \['x1'\]"):
        Recourse(model, schema, phrases={"x1": "raise x1"}).fit(X)
    mine = {"x1": lambda before, after: f"work {after - before} more years"}
    res = Recourse(model, schema, phrases=mine, support=0.0).fit(X)
    denied = pd.DataFrame({"x1": [1], "x2": [1.0], "c": ["a"]})
    plans = [cf.plan for cf in res.explain(denied)[0].counterfactuals]
    assert "work 4 more years" in plans  # logit -1.7 + 0.5 * 4 = 0.3: approved
    assert "increase `x2` from 1 to 2.7" in plans  # the generic phrase for the others


def test_to_frame_rounds_changes_and_keeps_counts_whole():
    """`changes` shows 7384.71, not 7384.708463674906; n_changes stays whole (Int64) beside an
    approved applicant's blank row."""
    from cfx.recourse import Counterfactual, RecourseResult

    change = Change("income", 5000.123, 7384.708463674906, 1.2, True, "raise income")
    cf = Counterfactual(
        changes=(change,),
        values={"income": 7384.708463674906},
        cost=1.2,
        proba_before=0.3,
        proba_after=0.6,
        plausibility=1.0,
        distance=0.1,
        plan="raise income",
    )
    denied = RecourseResult(7, "recourse", 0.3, (cf,), "", "search", 0.01)
    approved = RecourseResult(8, "approved", 0.9, (), "", "search", 0.01)
    table = to_frame([denied, approved])
    assert table["changes"].tolist()[0] == "income: 5000.123 -> 7384.71"  # as written
    from cfx.recourse.result import _short

    assert _short(1234567.8) == "1234567.8" and _short(0.000123456) == "0.000123456"
    assert (_short(1.001), _short(1.004), _short(1e-5)) == ("1.001", "1.004", "0.00001")
    assert str(table["n_changes"].dtype) == "Int64" and table["n_changes"].tolist()[0] == 1
    assert table["n_changes"].isna().tolist() == [False, True]
    # one result alone is a list of one (it was "'RecourseResult' object is not iterable")
    assert to_frame(denied).equals(to_frame([denied]))
    with pytest.raises(TypeError, match=r"`results` must be RecourseResults .*got a dict"):
        to_frame([{"index": 7}])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("value", "shown", "short"),
    [
        (5951, "5,951", "5951"),
        (3784.49, "3,784.49", "3784.49"),
        (3784.4899999999998, "3,784.49", "3784.49"),  # a cent up to float error
        (0.288, "0.288", "0.288"),  # a thousandth, as a small scale's plans are rounded
        (7384.708463674906, "7,384.71", "7384.71"),  # not a plan's value: two decimals
        (0.2871523, "0.287", "0.287152"),
    ],
)
def test_numbers_print_a_plans_value_exactly(value, shown, short):
    from cfx.recourse.result import _short

    assert number(value) == shown
    assert _short(float(value)) == short


def test_a_counterfactuals_values_are_read_only_and_it_pickles():
    """`cf.values["income"] = 0` changed the stored result, and every frame made from it later
    (session 50 audit)."""
    import copy
    import pickle

    from cfx.recourse import Counterfactual

    given = {"income": 7000.0, "housing": "own"}
    cf = Counterfactual((), given, 1.0, 0.3, 0.6, 1.0, 0.1, "raise income")
    with pytest.raises(TypeError):
        cf.values["income"] = 0  # type: ignore[index]
    given["income"] = 0.0  # nor through the dict it was made from
    assert cf.values["income"] == 7000.0
    for twin in (pickle.loads(pickle.dumps(cf)), copy.deepcopy(cf)):
        assert twin == cf and dict(twin.values) == {"income": 7000.0, "housing": "own"}
        with pytest.raises(TypeError):
            twin.values["income"] = 0  # type: ignore[index]
