"""cfx.data.schema: how a user describes their features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cfx.data.schema import FeatureSpec


def test_categories_may_come_straight_from_the_data_in_their_order():
    column = pd.Series(["rent", "own", "rent", "mortgage"])
    for given in (column.unique(), pd.Index(["rent", "own", "mortgage"]), ["rent", "own"]):
        spec = FeatureSpec("housing", "categorical", categories=given)
        assert spec.categories == tuple(given) and type(spec.categories[0]) is str
    with pytest.raises(TypeError, match="must be a tuple of str"):
        FeatureSpec("housing", "categorical", categories="rent,own")


def test_integer_codes_are_refused_with_how_to_write_them():
    with pytest.raises(TypeError, match=r"got \[1, 2, 3\]; write codes as strings"):
        FeatureSpec("region", "categorical", categories=(1, 2, 3))
    with pytest.raises(TypeError, match=r"got \[1, 2\]; write codes as strings"):
        FeatureSpec("region", "categorical", categories=np.array([1, 2]))


def test_a_missing_value_among_categories_is_named_as_such():
    with pytest.raises(TypeError, match=r"a missing value \(NaN/None\) is not a category"):
        FeatureSpec("housing", "categorical", categories=pd.Series(["rent", None]).unique())


def test_a_schema_with_listed_and_priced_changes_pickles_and_deep_copies():
    """German Credit's schema holds `transitions` and `transition_costs` as read-only mapping
    views, which pickle refuses: the schema, and a fitted Recourse holding it, could not be
    saved with pickle or joblib, nor deep-copied. A copy equals the original and stays
    read-only."""
    import copy
    import pickle

    from cfx.data.credit import german_schema

    schema = german_schema()
    for twin in (pickle.loads(pickle.dumps(schema)), copy.deepcopy(schema)):
        assert twin == schema
        account = twin["status_of_existing_checking_account"]
        assert account.step_costs("... < 0 DM") == (0.0, 1.0, 2.0, 1.0)
        with pytest.raises(TypeError):
            account.transitions["... < 0 DM"] = ()  # type: ignore[index]


def test_validate_agrees_with_recourse_on_infinities_and_rounding_noise():
    """inf passed validate (a lower=0 bound) and recourse refused it; 29.999999999999996 for
    a whole-number feature was refused by validate and taken by recourse."""
    import numpy as np
    import pandas as pd

    from cfx.data.schema import FeatureSchema, FeatureSpec

    schema = FeatureSchema(
        (
            FeatureSpec("income", "numeric", lower=0),
            FeatureSpec("age", "numeric", lower=18, integer=True),
        ),
        "y",
    )
    schema.validate(pd.DataFrame({"income": [1.0], "age": [29.999999999999996]}))
    with pytest.raises(ValueError, match=r"column `income` must hold finite numbers, got \[inf\]"):
        schema.validate(pd.DataFrame({"income": [np.inf], "age": [30]}))
    with pytest.raises(ValueError, match="must hold whole numbers"):
        schema.validate(pd.DataFrame({"income": [1.0], "age": [29.5]}))
    spec = FeatureSpec("a", "numeric", mutable=np.bool_(False), integer=np.bool_(True))
    assert spec.mutable is False and spec.integer is True
