"""What the default plans ask of denied applicants: purpose changes and waits, before and after
session 42's German schema (age may rise by at most 5 years, the purpose change only from a new
car to a used one).

    python benchmarks/recourse_plans.py

For each zoo credit model, every denied test applicant of ``german_split()`` is explained with
``Recourse(model, schema)`` (defaults: k = 3, data support on), once under the schema as it was
(``age_in_years`` without ``max_shift``, ``purpose`` free to change) and once under the shipped
one. Counted: applicants with recourse, first plans that change the purpose or the age, plans
of any rank that change the age, and the longest wait. Prints a table; nothing is written.
"""

from __future__ import annotations

import warnings

import numpy as np
from _provenance import provenance

from cfx.data.credit import load_german
from cfx.recourse import Recourse
from cfx.zoo import german_split, load_credit_model


def main() -> None:
    data = load_german()
    train, test = german_split()
    before = data.schema.replace("age_in_years", max_shift=None).replace(
        "purpose", transitions=None
    )
    head = "schema  model     denied  recourse  first:purpose  first:age  age plans  longest wait"
    print(head)
    for label, schema in (("before", before), ("after", data.schema)):
        for name in ("logistic", "gbm", "mlp"):
            model = load_credit_model(name)
            X = data.X.iloc[test]
            denied = X[model.predict_proba(X)[:, 1] < 0.5]
            with warnings.catch_warnings():  # the notices are the schema's own, said before
                warnings.simplefilter("ignore")
                results = Recourse(model, schema).fit(data.X.iloc[train]).explain(denied)
            first = [r.counterfactuals[0] for r in results if r.counterfactuals]
            waits = [
                cf.values["age_in_years"] - age
                for r, age in zip(results, denied["age_in_years"], strict=True)
                for cf in r.counterfactuals
                if "age_in_years" in cf.features
            ]
            print(
                f"{label:<7} {name:<9} {len(results):>6}  "
                f"{sum(r.status == 'recourse' for r in results):>8}  "
                f"{sum('purpose' in cf.features for cf in first):>13}  "
                f"{sum('age_in_years' in cf.features for cf in first):>9}  "
                f"{len(waits):>9}  {int(np.max(waits, initial=0)):>12}"
            )
    print(provenance())


if __name__ == "__main__":
    main()
