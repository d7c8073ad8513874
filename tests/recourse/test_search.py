"""The model-agnostic search: black boxes, torch modules, a boundary it must find."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from cfx.data.schema import FeatureSchema, FeatureSpec
from cfx.recourse import Recourse, TorchClassifier
from cfx.zoo.credit_models import make_encoder

LINE = FeatureSchema(
    features=(
        FeatureSpec("x", "numeric", lower=0, upper=10),
        FeatureSpec("z", "numeric", lower=0, upper=10, mutable=False),
    ),
    target="y",
)


class BlackBox:
    """Approves when x >= 5 (a vertical line); only predict_proba, no pipeline."""

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-4.0 * (X["x"].to_numpy(float) - 5.0)))
        return np.stack([1.0 - p, p], axis=1)


def test_search_finds_the_boundary_of_a_black_box():
    X = pd.DataFrame({"x": np.linspace(0, 10, 41), "z": np.linspace(0, 10, 41)})
    rec = Recourse(BlackBox(), LINE, support=0.0).fit(X)
    assert rec.method_ == "search"
    assert rec.view_.encoding is None  # no pipeline to read: every call goes to the model
    (res,) = rec.explain(pd.DataFrame({"x": [1.0], "z": [3.0]}))
    (cf,) = res.counterfactuals
    # the optimum is x = 5; the grid plus refinement lands within one refinement step of it
    assert 5.0 <= cf.values["x"] <= 5.6
    assert cf.values["z"] == 3.0 and cf.features == ("x",)


def test_search_respects_direction_and_immutables():
    X = pd.DataFrame({"x": np.linspace(0, 10, 41), "z": np.linspace(0, 10, 41)})
    schema = LINE.replace("x", direction="decrease")
    rec = Recourse(BlackBox(), schema, support=0.0).fit(X)
    (res,) = rec.explain(pd.DataFrame({"x": [1.0], "z": [3.0]}))
    assert res.status == "not_found" and res.counterfactuals == ()
    assert "not exhaustive" in res.reason
    # a heuristic's miss is not a proof: the plan said "no recourse under these constraints"
    assert res.plan.startswith("no plan found under these constraints: ")


class TinyNet(torch.nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(width, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x)


def test_torch_module_through_the_adapter(german, split, denied):
    X_train = german.X.iloc[split[0]]
    encoder = make_encoder(german.schema).fit(X_train)
    width = encoder.transform(X_train.iloc[:1]).shape[1]
    gen = torch.Generator().manual_seed(0)
    net = TinyNet(width)
    with torch.no_grad():
        net.lin.weight.copy_(torch.randn(2, width, generator=gen) * 0.5)
        net.lin.bias.zero_()
    net.train()
    model = TorchClassifier(net, encoder)
    rec = Recourse(model, german.schema).fit(X_train)
    assert rec.method_ == "search"
    p = model.predict_proba(german.X.iloc[split[1]])[:, 1]
    rows = german.X.iloc[split[1]][p < 0.5].iloc[:3]
    results = rec.explain(rows)
    assert [r.status for r in results] == ["recourse"] * 3  # "not_found" passed too before
    for (_, row), res in zip(rows.iterrows(), results, strict=True):
        assert len(res.counterfactuals) >= 1
        for cf in res.counterfactuals:
            changed = row.to_frame().T.astype(rows.dtypes.to_dict())
            for name in cf.features:  # the plan applied by hand, scored by the model
                changed[name] = cf.values[name]
            assert cf.proba_after >= 0.5
            assert model.predict_proba(changed)[0, 1] == pytest.approx(cf.proba_after, abs=1e-6)
    assert net.training  # mode restored
    assert all(q.requires_grad for q in net.parameters())


def test_unwrapped_torch_module_is_a_clear_error(german):
    with pytest.raises(TypeError, match="TorchClassifier"):
        Recourse(TinyNet(3), german.schema).fit(german.X)


def test_mlp_search_on_german(german, split, credit_models, denied):
    rec = Recourse(credit_models["mlp"], german.schema).fit(german.X.iloc[split[0]])
    assert rec.method_ == "search" and rec.view_.encoding is not None
    results = rec.explain(denied["mlp"].iloc[:6])
    assert all(r.status == "recourse" for r in results)


class Sum:
    """Approves as the four features' sum nears 36 (a sigmoid): most applicants need several
    changes, so a search for more feature sets goes deeper."""

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-(X.to_numpy(float).sum(axis=1) - 36.0)))
        return np.stack([1.0 - p, p], axis=1)


def test_searching_deeper_for_more_plans_keeps_every_candidate_of_a_shallower_search(
    monkeypatch,
):
    """The refinement took the cheapest 256 valid rows of the whole pool: a search for k = 8
    plans, which goes deeper, refined the deeper levels' rows in place of a cheap single
    change's, and its first plan could cost more than k = 1's at equal support."""
    from cfx.recourse.search import GridSearch

    names = ("a", "b", "c", "d")
    schema = FeatureSchema(
        features=tuple(FeatureSpec(n, "numeric", lower=0, upper=12) for n in names), target="y"
    )
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.uniform(0, 12, (200, 4)), columns=list(names))
    pools = {}
    propose = GridSearch.propose

    def keep(self, space, *, k, evaluate, accept=None):
        out = propose(self, space, k=k, evaluate=evaluate, accept=accept)
        pools[k] = {tuple(np.round(row, 9)) for row in out.actions}
        return out

    monkeypatch.setattr(GridSearch, "propose", keep)
    applicant = pd.DataFrame({n: [3.0] for n in names})
    for k in (1, 8):
        Recourse(Sum(), schema, k=k, method="search", support=0.0).fit(X).explain(applicant)
    assert len(pools[8]) > len(pools[1]) > 0
    assert pools[1] <= pools[8]
