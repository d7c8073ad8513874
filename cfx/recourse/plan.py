"""Plain-language plans: "reduce the credit amount from 5,951 to 4,700 DM; shorten ...".

:data:`GERMAN_PHRASES` words the German Credit features; any other feature gets a generic
phrase ("decrease `x` from 3 to 2", "change `y` from 'a' to 'b'"). Pass ``phrases=`` to
``Recourse`` to word your own features: a mapping from feature name to ``(before, after) -> str``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

from cfx.data.schema import FeatureSpec
from cfx.recourse.result import Change, Value, exact_decimals

Phrase = Callable[[Value, Value], str]


def number(value: Value) -> str:
    """``5951 -> "5,951"``, ``2.5 -> "2.5"``, ``0.288 -> "0.288"``: as many decimals as write
    the value exactly (up to six; a plan's changes are rounded so), else two (three
    significant digits below 1)."""
    if isinstance(value, str):
        return value
    if not math.isfinite(value):  # not from cfx's plans; DiCE's output is not checked
        return str(value)
    if float(value).is_integer():
        return f"{int(value):,}"
    d = exact_decimals(float(value))
    if d is None:
        d = 2 if abs(value) >= 1 else max(2, 2 - math.floor(math.log10(abs(value))))
    return f"{value:,.{d}f}".rstrip("0").rstrip(".")


def _numeric(noun: str, unit: str, less: str, more: str) -> Phrase:
    suffix = f" {unit}" if unit else ""

    def phrase(before: Value, after: Value) -> str:
        verb = less if float(after) < float(before) else more
        return f"{verb} {noun} from {number(before)} to {number(after)}{suffix}"

    return phrase


def _categorical(template: str) -> Phrase:
    def phrase(before: Value, after: Value) -> str:
        return template.format(before=before, after=after)

    return phrase


def _guarantor(before: Value, after: Value) -> str:
    if after == "none":
        return f"apply without the {before}"
    return f"find a {after}" + ("" if before == "none" else f" instead of a {before}")


def _telephone(before: Value, after: Value) -> str:
    if str(after).startswith("yes"):
        return "register a telephone under your name"
    return "give up the telephone registered under your name"


GERMAN_PHRASES: Mapping[str, Phrase] = {
    "credit_amount": _numeric("the credit amount", "DM", "reduce", "increase"),
    "duration_in_month": _numeric("the duration", "months", "shorten", "extend"),
    "installment_rate_in_percentage_of_disposable_income": _numeric(
        "the installment rate (share of disposable income, code 1-4)", "", "lower", "raise"
    ),
    "present_residence_since": _numeric(
        "the time at the present residence (code 1-4)", "", "shorten", "wait to raise"
    ),
    "age_in_years": lambda before, after: f"wait until age {number(after)} (now {number(before)})",
    "number_of_existing_credits_at_this_bank": _numeric(
        "the number of credits at this bank",
        "",
        "pay off credits to bring",
        "take credits to bring",
    ),
    "status_of_existing_checking_account": _categorical(
        "change the checking account from '{before}' to '{after}'"
    ),
    "purpose": _categorical("apply for '{after}' instead of '{before}'"),
    "savings_account_and_bonds": _categorical("change savings from '{before}' to '{after}'"),
    "present_employment_since": _categorical("stay employed until '{after}' (now '{before}')"),
    "other_debtors_or_guarantors": _guarantor,
    "property": _categorical("change the most valuable property from '{before}' to '{after}'"),
    "other_installment_plans": _categorical(
        "change other installment plans from '{before}' to '{after}'"
    ),
    "housing": _categorical("change housing from '{before}' to '{after}'"),
    "job": _categorical("move to a job '{after}' (now '{before}')"),
    "telephone": _telephone,
}


def describe(spec: FeatureSpec, before: Value, after: Value, phrases: Mapping[str, Phrase]) -> str:
    """One change in words."""
    phrase = phrases.get(spec.name)
    if phrase is not None:
        return phrase(before, after)
    if spec.kind == "numeric":
        verb = "decrease" if float(after) < float(before) else "increase"
        return f"{verb} `{spec.name}` from {number(before)} to {number(after)}"
    return f"change `{spec.name}` from '{before}' to '{after}'"


def plan(changes: Sequence[Change]) -> str:
    """Actions joined by ``; ``, then causal consequences in brackets."""
    actions = [c.text for c in changes if c.action]
    effects = [c.text for c in changes if not c.action]
    text = "; ".join(actions)
    if effects:
        text += " (as a consequence: " + "; ".join(effects) + ")"
    return text
