"""Shared fixtures: German Credit, the zoo credit models and a hand-computable linear model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cfx.data.credit import load_german
from cfx.data.schema import FeatureSchema, FeatureSpec
from cfx.zoo import german_split, load_credit_model


@pytest.fixture(scope="session")
def german():
    return load_german()


@pytest.fixture(scope="session")
def split():
    return german_split()


@pytest.fixture(scope="session")
def credit_models():
    return {name: load_credit_model(name) for name in ("logistic", "gbm", "mlp")}


@pytest.fixture(scope="session")
def denied(german, split, credit_models):
    """Per model, the test applicants it denies."""
    X = german.X.iloc[split[1]]
    return {name: X[model.predict_proba(X)[:, 1] < 0.5] for name, model in credit_models.items()}


class HandLogistic:
    """logit = -3.2 + 0.5 x1 + 1.0 x2 + {a: 0, b: 0.4, c: 2.5}[c]; nothing is learned."""

    def __init__(self) -> None:
        self.classes_ = np.array([0, 1])
        self.coef_ = np.array([[0.5, 1.0, 0.0, 0.4, 2.5]])  # shape only: "auto" sees a linear model
        self.table = {"a": 0.0, "b": 0.4, "c": 2.5}

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        cat = X["c"].astype(str).map(self.table).to_numpy(dtype=float)
        return -3.2 + 0.5 * X["x1"].to_numpy(float) + 1.0 * X["x2"].to_numpy(float) + cat

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-self.decision_function(X)))
        return np.stack([1.0 - p, p], axis=1)


@pytest.fixture
def hand():
    """The hand model, its schema (x1 whole in 0..10, x2 real in 0..10, c in a/b/c with cost 5)
    and training rows whose MAD is 1 for both numeric features."""
    schema = FeatureSchema(
        features=(
            FeatureSpec("x1", "numeric", lower=0, upper=10, integer=True),
            FeatureSpec("x2", "numeric", lower=0, upper=10, cost=1.5),
            FeatureSpec("c", "categorical", ("a", "b", "c"), cost=5.0),
        ),
        target="y",
    )
    X = pd.DataFrame(
        {
            "x1": [4, 5, 6] * 4,
            "x2": [4.0, 5.0, 6.0] * 4,
            "c": ["a", "b", "c"] * 4,
        }
    )
    return HandLogistic(), schema, X


def strict_one_hot(german, split, final):
    """``final`` (a scikit-learn classifier) behind scalers and a OneHotEncoder left at its
    default, ``handle_unknown="error"``, fitted on the split's training rows of German
    Credit: it refuses ``'female : single'``, which no row has."""
    from sklearn.compose import make_column_transformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    schema = german.schema
    numeric = list(schema.numeric)
    others = [c for c in schema.names if c not in numeric]
    encode = make_column_transformer((StandardScaler(), numeric), (OneHotEncoder(), others))
    X, y = german.X.iloc[split[0]], german.y.iloc[split[0]]
    return make_pipeline(encode, final).fit(X, y)
