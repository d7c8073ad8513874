"""Credit models for recourse, built deterministically at load time (no pickles shipped).

Each is a scikit-learn ``Pipeline`` taking the German Credit frame (``load_german().X``
columns) and exposing ``predict_proba`` (column 1 = approved). They train on a fixed,
stratified 70 % split of German Credit (:func:`german_split`) in well under a second:

* ``logistic``: one-hot categoricals, ordinal codes and standardised numerics, then L2
  logistic regression (the linear model that the exact MILP recourse handles);
* ``gbm``: the same encoding, then 100 depth-3 gradient-boosted trees (scikit-learn's
  ``GradientBoostingClassifier``, whose trees the tree recourse reads);
* ``mlp``: the same encoding, then a 16-unit ReLU perceptron (L2 3.0; less regularised
  versions overfit the 700 training rows).
"""

from __future__ import annotations

import warnings
from typing import Literal, get_args

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from cfx.data.credit import load_german
from cfx.data.schema import FeatureSchema
from cfx.errors import UnknownNameError

CreditModelName = Literal["logistic", "gbm", "mlp"]
CREDIT_MODELS: tuple[str, ...] = get_args(CreditModelName)


def german_split(*, seed: int = 0, test_size: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Stratified train/test row indices of German Credit (deterministic in ``seed``);
    ``test_size`` the share of rows held out, in (0, 1)."""
    from cfx.errors import check_real, check_seed

    check_seed("seed", seed, optional=False)
    check_real("test_size", test_size, low=0.0, high=1.0, open_low=True, open_high=True)
    data = load_german()
    idx = np.arange(len(data))
    train, test = train_test_split(
        idx, test_size=test_size, random_state=seed, stratify=data.y.to_numpy()
    )
    return np.sort(train), np.sort(test)


def make_encoder(schema: FeatureSchema) -> ColumnTransformer:
    """Numeric -> standardised; ordinal -> ordered codes, standardised; categorical -> one-hot."""
    numeric = [f.name for f in schema.features if f.kind == "numeric"]
    ordinal = [f for f in schema.features if f.kind == "ordinal"]
    nominal = [f for f in schema.features if f.kind == "categorical"]
    return ColumnTransformer(
        [
            ("numeric", StandardScaler(), numeric),
            (
                "ordinal",
                Pipeline(
                    [
                        ("codes", OrdinalEncoder(categories=[list(f.categories) for f in ordinal])),
                        ("scale", StandardScaler()),
                    ]
                ),
                [f.name for f in ordinal],
            ),
            (
                "nominal",
                OneHotEncoder(
                    categories=[list(f.categories) for f in nominal], handle_unknown="error"
                ),
                [f.name for f in nominal],
            ),
        ],
        sparse_threshold=0.0,
    )


def load_credit_model(name: CreditModelName, *, seed: int = 0) -> Pipeline:
    """Train and return the named credit model (``logistic``, ``gbm`` or ``mlp``)."""
    if name == "logistic":
        clf: object = LogisticRegression(C=1.0, max_iter=2000)
    elif name == "gbm":
        clf = GradientBoostingClassifier(n_estimators=100, max_depth=3, random_state=seed)
    elif name == "mlp":
        clf = MLPClassifier(hidden_layer_sizes=(16,), alpha=3.0, max_iter=600, random_state=seed)
    else:
        raise UnknownNameError(f"unknown credit model {name!r}; expected one of {CREDIT_MODELS}")
    data = load_german()
    train, _ = german_split(seed=seed)
    pipe = Pipeline([("encode", make_encoder(data.schema)), ("model", clf)])
    with warnings.catch_warnings():  # scikit-learn's MLP turns Ctrl-C into this warning and
        # returns half trained: the command went on with another model (session 45 audit)
        warnings.filterwarnings("error", "Training interrupted by user", UserWarning)
        try:
            pipe.fit(data.X.iloc[train], data.y.iloc[train])
        except UserWarning as err:
            if "Training interrupted by user" not in str(err):
                raise
            raise KeyboardInterrupt from None
    return pipe
