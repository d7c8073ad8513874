"""What the default plans ask of denied applicants: purpose changes, waits, checking-account
jumps and homes given up, under German schemas as they were in sessions 41 and 42 and as
shipped.

    python benchmarks/recourse_plans.py [--out benchmarks/results/recourse_plans.json]

For each zoo credit model, every denied test applicant of ``german_split()`` is explained with
``Recourse(model, schema)`` (defaults: k = 3, data support on) under three schemas: ``s41``
(``age_in_years`` without ``max_shift``, ``purpose`` free to change, every checking-account
change one step, housing free to change), ``s42`` (age and purpose as shipped, the account
unpriced, housing free) and ``now`` (as shipped: a balance of 200 DM or more is two steps from
below 0 DM or from no account; a home is not given up). Counted: applicants with recourse,
first plans that change the purpose, the age or the checking account (and of those, how many
jump two balance levels), first plans that sell a home or move a renter into free housing,
plans of any rank that change the age, and the longest wait. Prints a table and writes it to
``benchmarks/results/recourse_plans.json``.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np
from _provenance import provenance

from cfx.data.credit import load_german
from cfx.recourse import Recourse
from cfx.zoo import german_split, load_credit_model

ACCOUNT = "status_of_existing_checking_account"
RESULTS = Path(__file__).parent / "results" / "recourse_plans.json"


def given_up(cf: object, applicant: object) -> bool:
    """The plan sells the applicant's home or moves a renter into free housing."""
    if "housing" not in cf.features:  # type: ignore[attr-defined]
        return False
    before = str(applicant["housing"])  # type: ignore[index]
    after = str(cf.values["housing"])  # type: ignore[attr-defined]
    return before == "own" or (before == "rent" and after == "for free")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=RESULTS, help="JSON written (default: the committed result)"
    )
    args = parser.parse_args()
    data = load_german()
    train, test = german_split()
    s42 = data.schema.replace(ACCOUNT, transition_costs=None).replace("housing", transitions=None)
    s41 = s42.replace("age_in_years", max_shift=None).replace("purpose", transitions=None)
    head = (
        "schema  model     denied  recourse  first:purpose  first:age  first:account  "
        "of which 2 steps  housing given up  age plans  longest wait"
    )
    print(head)
    rows = []
    for label, schema in (("s41", s41), ("s42", s42), ("now", data.schema)):
        for name in ("logistic", "gbm", "mlp"):
            model = load_credit_model(name)
            X = data.X.iloc[test]
            denied = X[model.predict_proba(X)[:, 1] < 0.5]
            with warnings.catch_warnings():  # the notices are the schema's own, said before
                warnings.simplefilter("ignore")
                results = Recourse(model, schema).fit(data.X.iloc[train]).explain(denied)
            first = [
                (r.counterfactuals[0], applicant)
                for r, (_, applicant) in zip(results, denied.iterrows(), strict=True)
                if r.counterfactuals
            ]
            account = [(cf, a) for cf, a in first if ACCOUNT in cf.features]
            jumps = sum(
                data.schema[ACCOUNT].step_costs(str(a[ACCOUNT]))[
                    data.schema[ACCOUNT].categories.index(str(cf.values[ACCOUNT]))
                ]
                == 2
                for cf, a in account
            )
            waits = [
                cf.values["age_in_years"] - age
                for r, age in zip(results, denied["age_in_years"], strict=True)
                for cf in r.counterfactuals
                if "age_in_years" in cf.features
            ]
            row = {
                "schema": label,
                "model": name,
                "denied": len(results),
                "recourse": sum(r.status == "recourse" for r in results),
                "first_purpose": sum("purpose" in cf.features for cf, _ in first),
                "first_age": sum("age_in_years" in cf.features for cf, _ in first),
                "first_account": len(account),
                "first_account_two_steps": int(jumps),
                "first_housing_given_up": sum(given_up(cf, a) for cf, a in first),
                "age_plans": len(waits),
                "longest_wait_years": int(np.max(waits, initial=0)),
            }
            rows.append(row)
            print(
                f"{label:<7} {name:<9} {row['denied']:>6}  {row['recourse']:>8}  "
                f"{row['first_purpose']:>13}  {row['first_age']:>9}  "
                f"{row['first_account']:>13}  {row['first_account_two_steps']:>16}  "
                f"{row['first_housing_given_up']:>16}  "
                f"{row['age_plans']:>9}  {row['longest_wait_years']:>12}"
            )
    record = {"provenance": provenance(), "rows": rows}
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(record["provenance"])


if __name__ == "__main__":
    main()
