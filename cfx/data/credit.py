"""German Credit (UCI Statlog, Hofmann 1994): 1,000 loan applicants, 20 features, good/bad label.

The data ship with cfx (``cfx/data/credit_data/``, see its README for source, licences and the one
repair made to the copy). :func:`load_german` returns a :class:`GermanCredit` with a typed frame,
an ``approved`` label (1 = good credit risk, the loan is approved) and the :class:`FeatureSchema`
that says, per feature, what a counterfactual may change and at what cost.

The schema's actionability defaults are a documented starting point, not ground truth: override
them per query with :meth:`FeatureSchema.replace`.

Reference: H. Hofmann, "Statlog (German Credit Data)", UCI Machine Learning Repository, 1994,
https://doi.org/10.24432/C5NC77 (CC BY 4.0). U. Grömping, "South German Credit Data: Correcting a
Widely Used Data Set", Report 4/2019, Beuth University of Applied Sciences Berlin, shows that
the Statlog code table is partly wrong; the labels here are the Statlog ones, as used in the
literature.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import pandas as pd

from cfx.data.schema import FeatureSchema, FeatureSpec
from cfx.errors import check_flag
from cfx.reprs import short_repr

N_ROWS = 1000
#: label column of the shipped CSV and its two values.
SOURCE_TARGET = "creditability"
_BELOW_0, _BELOW_200 = "... < 0 DM", "0 <= ... < 200 DM"
_ABOVE_200 = "... >= 200 DM / salary assignments for at least 1 year"
_REAL_ESTATE = "real estate"
_SAVINGS_AGREEMENT = "building society savings agreement/ life insurance"
_CAR = "car or other, not in attribute Savings account/bonds"
TARGET = "approved"  # 1 = good credit risk (approved), 0 = bad


def german_schema() -> FeatureSchema:
    """The 20 German Credit features with cfx's default actionability (reasons inline)."""
    return FeatureSchema(
        target=TARGET,
        features=(
            # Categorical, not ordinal: "no checking account" is not "less than < 0 DM" (it is the
            # level with the highest approval rate), and the top level mixes a balance with a
            # salary assignment. Raising the balance, or opening an account with one, is
            # actionable; closing an account or lowering the balance is not advice a lender gives
            # (the models reward "no checking account", an artefact of how the data was drawn).
            # A balance of 200 DM or more is two steps from below 0 DM or from no account: one
            # step would make "raise your balance from -50 to 200 DM" as cheap as "to 0 DM"
            # (the first plan for 18 of 75 denied applicants in a user audit, session 42).
            FeatureSpec(
                "status_of_existing_checking_account",
                "categorical",
                (_BELOW_0, _BELOW_200, _ABOVE_200, "no checking account"),
                description="Status of the existing checking account (balance in DM); the "
                "balance may rise, an account may be opened, not closed; 200 DM or more is two "
                "steps from below 0 DM or from no account.",
                transitions={
                    _BELOW_0: (_BELOW_200, _ABOVE_200),
                    _BELOW_200: (_ABOVE_200,),
                    "no checking account": (_BELOW_200, _ABOVE_200),
                },
                transition_costs={
                    _BELOW_0: {_ABOVE_200: 2},
                    "no checking account": {_ABOVE_200: 2},
                },
            ),
            FeatureSpec(
                "duration_in_month",
                "numeric",
                lower=4,
                upper=72,
                integer=True,
                description="Loan duration in months (observed range 4..72); negotiable.",
            ),
            # The past cannot be changed.
            FeatureSpec(
                "credit_history",
                "categorical",
                (
                    "no credits taken/ all credits paid back duly",
                    "all credits at this bank paid back duly",
                    "existing credits paid back duly till now",
                    "delay in paying off in the past",
                    "critical account/ other credits existing (not at this bank)",
                ),
                mutable=False,
                description="Credit history; immutable (the past cannot be changed).",
            ),
            # Statlog code A47 "(vacation - does not exist?)" is left out: the code table itself
            # says it does not exist and no row uses it, so it must not be a counterfactual target.
            FeatureSpec(
                "purpose",
                "categorical",
                (
                    "car (new)",
                    "car (used)",
                    "furniture/equipment",
                    "radio/television",
                    "domestic appliances",
                    "repairs",
                    "education",
                    "retraining",
                    "business",
                    "others",
                ),
                description="Purpose of the loan; a new car may become a used one, no other "
                "purpose may change (the applicant needs what the loan is for).",
                # "apply for 'domestic appliances' instead of 'car (new)'" was a first plan for
                # 18 of 75 denied applicants in a user audit: advice to misstate the loan
                transitions={"car (new)": ("car (used)",)},
            ),
            FeatureSpec(
                "credit_amount",
                "numeric",
                lower=250,
                upper=18424,
                integer=True,
                description="Loan amount in DM (observed range 250..18424); negotiable.",
            ),
            # Ordinal with "unknown/ no savings account" first: having no savings account is
            # holding nothing, below "< 100 DM". The source lumps "unknown" in with "none" and the
            # two cannot be separated; this is the documented reading, not an observed fact.
            # Savings may only grow: "spend your savings" (or stop disclosing them) is not advice.
            FeatureSpec(
                "savings_account_and_bonds",
                "ordinal",
                (
                    "unknown/ no savings account",
                    "... < 100 DM",
                    "100 <= ... < 500 DM",
                    "500 <= ... < 1000 DM",
                    "... >= 1000 DM",
                ),
                direction="increase",
                description="Savings account/bonds; ordinal, 'unknown/ no savings' first (= none);"
                " can only increase.",
            ),
            # Tenure only grows with time (a recourse can say "wait"), hence increase.
            FeatureSpec(
                "present_employment_since",
                "ordinal",
                (
                    "unemployed",
                    "... < 1 year",
                    "1 <= ... < 4 years",
                    "4 <= ... < 7 years",
                    "... >= 7 years",
                ),
                direction="increase",
                cost=2.0,
                description="Present employment since; can only increase (time), costly (waiting).",
            ),
            FeatureSpec(
                "installment_rate_in_percentage_of_disposable_income",
                "numeric",
                lower=1,
                upper=4,
                integer=True,
                description="Installment rate as % of disposable income, Statlog code 1..4.",
            ),
            # Protected attribute (sex) and marital status: never a recourse action. Code A95
            # "female : single" appears in the code table but in no row; kept so the category
            # list is the full code table.
            FeatureSpec(
                "personal_status_and_sex",
                "categorical",
                (
                    "male : divorced/separated",
                    "female : divorced/separated/married",
                    "male : single",
                    "male : married/widowed",
                    "female : single",
                ),
                mutable=False,
                description="Personal status and sex; immutable (protected attribute).",
            ),
            # Finding a co-applicant or guarantor is something an applicant can do.
            FeatureSpec(
                "other_debtors_or_guarantors",
                "categorical",
                ("none", "co-applicant", "guarantor"),
                description="Other debtors/guarantors; actionable (find a co-applicant/guarantor).",
            ),
            FeatureSpec(
                "present_residence_since",
                "numeric",
                lower=1,
                upper=4,
                integer=True,
                direction="increase",
                cost=2.0,
                description="Present residence since, Statlog code 1..4; increases with time only.",
            ),
            # Categorical: "unknown / no property" again mixes unknown with none. Acquiring
            # more valuable property is possible but expensive; giving property up is not advice.
            # The code table lists the categories from the most valuable down.
            FeatureSpec(
                "property",
                "categorical",
                (_REAL_ESTATE, _SAVINGS_AGREEMENT, _CAR, "unknown / no property"),
                cost=3.0,
                description="Most valuable property; may only be upgraded, expensive.",
                transitions={
                    "unknown / no property": (_REAL_ESTATE, _SAVINGS_AGREEMENT, _CAR),
                    _CAR: (_REAL_ESTATE, _SAVINGS_AGREEMENT),
                    _SAVINGS_AGREEMENT: (_REAL_ESTATE,),
                },
            ),
            # Age only goes up, slowly: a recourse "wait N years" is legal but should be costly,
            # and short: "wait until age 65 (now 35)" is no answer to give an applicant.
            FeatureSpec(
                "age_in_years",
                "numeric",
                lower=19,
                upper=75,
                integer=True,
                direction="increase",
                cost=5.0,
                max_shift=5,
                description="Age in years (observed range 19..75); can only increase, by at "
                "most 5 years (a wait), high cost.",
            ),
            # Paying a plan off is actionable; taking one up (more debt) is not advice.
            FeatureSpec(
                "other_installment_plans",
                "categorical",
                ("bank", "stores", "none"),
                description="Other installment plans; may be paid off, not taken up.",
                transitions={"bank": ("none",), "stores": ("none",)},
            ),
            # Buying a home is actionable, if expensive; selling one, or moving in with
            # someone who houses you for free, is not advice a lender gives (the first plans
            # of the MLP asked 'own -> for free' and 'rent -> for free', session 43).
            FeatureSpec(
                "housing",
                "categorical",
                ("rent", "own", "for free"),
                cost=3.0,
                description="Housing; a renter may buy, someone housed for free may rent or "
                "buy (expensive: moving); a home is not given up.",
                transitions={"rent": ("own",), "for free": ("rent", "own")},
            ),
            FeatureSpec(
                "number_of_existing_credits_at_this_bank",
                "numeric",
                lower=1,
                upper=4,
                integer=True,
                direction="decrease",
                description="Number of existing credits at this bank, 1..4; may be paid off, "
                "not added to.",
            ),
            # Ordinal by qualification. Mutable but only upwards (nobody is advised to take a
            # worse job) and at a high cost (a new job or a qualification takes time).
            FeatureSpec(
                "job",
                "ordinal",
                (
                    "unemployed/ unskilled - non-resident",
                    "unskilled - resident",
                    "skilled employee / official",
                    "management/ self-employed/ highly qualified employee/ officer",
                ),
                direction="increase",
                cost=4.0,
                description="Job by qualification; can only increase, high cost.",
            ),
            # Dependants are not something a lender may ask an applicant to change.
            FeatureSpec(
                "number_of_people_being_liable_to_provide_maintenance_for",
                "numeric",
                lower=1,
                upper=2,
                integer=True,
                mutable=False,
                description="Number of dependants, 1..2; immutable.",
            ),
            FeatureSpec(
                "telephone",
                "categorical",
                ("none", "yes, registered under the customers name"),
                cost=0.5,
                description="Telephone registered under the customer's name; cheap to change.",
            ),
            # Nationality/work status: protected, never a recourse action.
            FeatureSpec(
                "foreign_worker",
                "categorical",
                ("yes", "no"),
                mutable=False,
                description="Foreign worker; immutable (protected attribute).",
            ),
        ),
    )


@dataclass(frozen=True)
class GermanCredit:
    """German Credit as loaded by :func:`load_german`."""

    __repr__ = short_repr  # shapes and counts, not every field in full

    X: pd.DataFrame  # (1000, 20) features in schema order
    y: pd.Series  # (1000,) int64 named "approved", 1 = good (approved), 0 = bad
    schema: FeatureSchema

    def __len__(self) -> int:
        return len(self.y)


def load_german(*, as_frame: bool = True) -> GermanCredit:
    """Load the 1,000 German Credit applicants shipped with cfx.

    ``X`` has the 20 features in schema order: numeric ones as ``int64``; with ``as_frame=True``
    ordinal ones as ordered and categorical ones as unordered ``pd.CategoricalDtype`` holding the
    schema's full category list (also categories no row uses). ``as_frame=False`` keeps the
    non-numeric columns as plain strings, as in the CSV (for libraries that reject pandas
    Categorical, e.g. dice-ml). ``y`` is ``int64`` named ``"approved"``: 1 = good, 0 = bad.
    """
    as_frame = check_flag("as_frame", as_frame)
    schema = german_schema()
    source = resources.files("cfx.data").joinpath("credit_data/germancredit.csv")
    with source.open("rb") as handle:
        raw = pd.read_csv(handle, dtype={name: "str" for name in schema.categorical})

    expected = [*schema.names, SOURCE_TARGET]
    if list(raw.columns) != expected:
        missing = [c for c in expected if c not in raw.columns]
        unexpected = [c for c in raw.columns if c not in expected]
        raise ValueError(
            f"germancredit.csv: expected the columns {expected!r} in that order;"
            f" missing {missing!r}, unexpected {unexpected!r}"
        )
    if len(raw) != N_ROWS:
        raise ValueError(f"germancredit.csv: expected {N_ROWS} rows, got {len(raw)}")
    schema.validate(raw)

    labels = raw[SOURCE_TARGET]
    unknown = sorted(set(labels.unique()) - {"good", "bad"})
    if unknown or labels.isna().any():
        raise ValueError(
            f"germancredit.csv: `{SOURCE_TARGET}` must be 'good'/'bad', got {unknown!r}"
        )
    y = (labels == "good").astype("int64").rename(TARGET)

    columns: dict[str, pd.Series] = {}
    for spec in schema.features:
        column = raw[spec.name]
        if spec.kind == "numeric":
            columns[spec.name] = column.astype("int64")
        elif not as_frame:
            columns[spec.name] = column
        elif spec.kind in ("ordinal", "categorical"):
            dtype = pd.CategoricalDtype(list(spec.categories), ordered=spec.kind == "ordinal")
            columns[spec.name] = column.astype(dtype)
        else:
            raise ValueError(f"unknown kind {spec.kind!r}")
    X = pd.DataFrame(columns, index=raw.index)
    return GermanCredit(X=X, y=y, schema=schema)


def summary_table(data: GermanCredit) -> pd.DataFrame:
    """One row per feature plus a last row for the label (for reports).

    Columns: ``kind``, ``mutable``, ``direction`` (``"listed changes only"`` for a categorical
    feature with ``transitions``; ``", some changes priced in steps"`` added when it has
    ``transition_costs``: see :func:`transitions_table`), ``cost``, ``domain`` (range
    or number of categories), ``mean``/``min``/``max`` (numeric features; for the label,
    ``mean`` is the approval rate), ``most_frequent`` and ``most_frequent_share`` (categorical
    and ordinal) and ``approved_rate``: the approval rate among rows in the most frequent
    category (NaN for numeric features; the overall approval rate for the label row).
    """
    if not isinstance(data, GermanCredit):
        raise TypeError(f"`data` must be a GermanCredit, got {type(data).__name__}")
    rows: list[dict[str, object]] = []
    y = data.y.to_numpy()
    for spec in data.schema.features:
        column = data.X[spec.name]
        row: dict[str, object] = {
            "feature": spec.name,
            "kind": spec.kind,
            "mutable": spec.mutable,
            "direction": (
                "listed changes only"
                if spec.transitions
                else spec.direction
                + ("" if spec.max_shift is None else f", by at most {spec.max_shift:g}")
            )
            + (", some changes priced in steps" if spec.transition_costs else ""),
            "cost": spec.cost,
        }
        if spec.kind == "numeric":
            low = "-inf" if spec.lower is None else f"{spec.lower:g}"
            high = "inf" if spec.upper is None else f"{spec.upper:g}"
            row["domain"] = f"{low}..{high}"
            row |= {"mean": column.mean(), "min": column.min(), "max": column.max()}
        elif spec.kind in ("ordinal", "categorical"):
            counts = column.astype("str").value_counts()
            top = str(counts.index[0])
            in_top = (column.astype("str") == top).to_numpy()
            row["domain"] = f"{len(spec.categories)} categories"
            row |= {
                "most_frequent": top,
                "most_frequent_share": counts.iloc[0] / len(column),
                "approved_rate": y[in_top].mean(),
            }
        else:
            raise ValueError(f"unknown kind {spec.kind!r}")
        rows.append(row)
    rows.append(
        {
            "feature": data.y.name,
            "kind": "target",
            "domain": "0 = bad, 1 = good (approved)",
            "mean": y.mean(),
            "min": y.min(),
            "max": y.max(),
            "approved_rate": y.mean(),
        }
    )
    columns = [
        "kind", "mutable", "direction", "cost", "domain", "mean", "min", "max",
        "most_frequent", "most_frequent_share", "approved_rate",
    ]  # fmt: skip
    return pd.DataFrame(rows).set_index("feature").reindex(columns=columns)


def transitions_table(data: GermanCredit) -> pd.DataFrame:
    """The changes the schema allows for categorical features with ``transitions`` or
    ``transition_costs``: one row per (feature, from) with the categories it may change to
    (for reports), a change ``transition_costs`` prices at other than one step followed by its
    steps ("... >= 200 DM (2 steps)")."""
    if not isinstance(data, GermanCredit):
        raise TypeError(f"`data` must be a GermanCredit, got {type(data).__name__}")

    def priced(spec: FeatureSpec, source: str, target: str) -> str:
        steps = spec.step_costs(source)[spec.categories.index(target)]
        return target if steps == 1 else f"{target} ({steps:g} steps)"

    rows = [
        {
            "feature": spec.name,
            "from": source,
            "may change to": "; ".join(
                priced(spec, source, t) for t in spec.allowed_targets(source)
            ),
        }
        for spec in data.schema.features
        if spec.transitions or spec.transition_costs
        for source in (spec.transitions or spec.transition_costs or {})
    ]
    return pd.DataFrame(rows, columns=["feature", "from", "may change to"])
