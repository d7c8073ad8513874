import numpy as np
import pytest

from cfx.data.credit import load_german
from cfx.errors import UnknownNameError
from cfx.zoo import CREDIT_MODELS, german_split, load_credit_model


@pytest.fixture(scope="module")
def data():
    return load_german()


def test_split_is_disjoint_stratified_and_deterministic(data):
    train, test = german_split()
    assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == 1000
    assert len(test) == 300
    assert abs(data.y.iloc[test].mean() - 0.7) < 0.01
    _, test2 = german_split()
    assert np.array_equal(test, test2)
    # named as cfx's arguments, not scikit-learn's train_test_split parameters
    with pytest.raises(ValueError, match=r"`test_size` must be a number in \(0, 1\), got 0"):
        german_split(test_size=0)
    with pytest.raises(ValueError, match=r"`seed` must be an int in \[0, 2\*\*32\)"):
        german_split(seed=-1)


@pytest.mark.parametrize("name", CREDIT_MODELS)
def test_models_beat_the_majority_baseline_and_are_deterministic(name, data):
    _, test = german_split()
    model = load_credit_model(name)
    proba = model.predict_proba(data.X.iloc[test])[:, 1]
    accuracy = ((proba > 0.5) == data.y.iloc[test].to_numpy()).mean()
    assert accuracy > 0.72  # majority class is 0.70
    assert (proba <= 0.5).sum() >= 50  # enough denied applicants for the recourse benchmark
    again = load_credit_model(name).predict_proba(data.X.iloc[test])[:, 1]
    assert np.array_equal(proba, again)


def test_unknown_model_name():
    with pytest.raises(UnknownNameError, match="expected one of"):
        load_credit_model("forest")


def test_ctrl_c_while_the_mlp_trains_stops_the_command(monkeypatch):
    """scikit-learn's MLP catches KeyboardInterrupt, warns "Training interrupted by user" and
    returns half trained: `cfx recourse --model mlp` went on with that other model, and a
    rerun of the batch was refused as 'a run with other settings' (session 45 audit)."""
    from sklearn.neural_network import MLPClassifier

    def ctrl_c(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(MLPClassifier, "_update_no_improvement_count", ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        load_credit_model("mlp")
