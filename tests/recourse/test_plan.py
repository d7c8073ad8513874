"""Plain-language plans and the flat result table."""

from __future__ import annotations

from cfx.data.credit import german_schema
from cfx.recourse import Change, to_frame
from cfx.recourse.plan import GERMAN_PHRASES, describe, plan


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


def test_to_frame_has_one_row_per_counterfactual(german, split, credit_models, denied):
    from cfx.recourse import Recourse

    rec = Recourse(credit_models["mlp"], german.schema, k=2).fit(german.X.iloc[split[0]])
    results = rec.explain(denied["mlp"].iloc[:3])
    table = to_frame(results)
    assert len(table) == sum(max(1, len(r.counterfactuals)) for r in results)
    assert {"index", "rank", "plan", "cost", "proba_after", "plausibility"} <= set(table.columns)
