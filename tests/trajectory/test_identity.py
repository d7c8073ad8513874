import numpy as np
import torch

from cfx.trajectory import GradientAscent
from cfx.trajectory.identity import explainer_key
from tests.trajectory.toy import LinearGenerator, LogisticClassifier


class _ExplainingClassifier(LogisticClassifier):
    """A classifier module with an ``explain`` method of its own (some model classes have
    one): it was taken for a wrapped explainer, and the key became its class name alone."""

    def explain(self, x):
        return x


def test_the_key_keeps_the_settings_next_to_a_model_with_an_explain_method():
    g, f = LinearGenerator(), _ExplainingClassifier()
    a = explainer_key(GradientAscent(g, f, steps=3))
    b = explainer_key(GradientAscent(g, f, steps=7, margin=0.9))
    assert a != b
    assert a["GradientAscent"]["steps"] == 3 and b["GradientAscent"]["margin"] == 0.9


def test_the_key_reads_the_weights_a_lambda_classifier_holds_and_takes_slotted_explainers():
    """A classifier passed as a lambda over a module was keyed as '<function>', so weights
    retrained in place were not noticed; an explainer without a __dict__ (slots) raised."""
    g, f = LinearGenerator(), LogisticClassifier()
    before = explainer_key(GradientAscent(g, lambda im: f(im), steps=3))
    with torch.no_grad():
        f.b.add_(1.0)
    after = explainer_key(GradientAscent(g, lambda im: f(im), steps=3))
    assert before != after
    assert before["GradientAscent"]["classifier"][0] == "<function>"

    class Slotted:
        __slots__ = ("generator",)

        def explain(self, x, target):
            raise AssertionError("not called")

    assert explainer_key(Slotted()) == {"Slotted": {}}  # no slot set: nothing to key


def test_progress_bars_do_not_change_the_key():
    """show_progress changes what is printed, not the result: a run resumed with progress bars
    on (or off) must read its folder's chunks back, not start over."""
    g, f = LinearGenerator(), LogisticClassifier()
    quiet = explainer_key(GradientAscent(g, f, steps=3, show_progress=False))
    shown = explainer_key(GradientAscent(g, f, steps=3, show_progress=True))
    assert quiet == shown and "show_progress" not in quiet["GradientAscent"]
    assert quiet["GradientAscent"]["steps"] == 3


def test_a_wrapper_of_several_explainers_is_keyed_by_each_in_full():
    """A wrapper holding two explainers (a fallback chain) was keyed by their type names
    alone, so retrained models or other settings in either read back stale chunks."""

    class Fallback:
        def __init__(self, first, second) -> None:
            self.first, self.second = first, second

        def explain(self, x, target):
            return self.first.explain(x, target)

    g, f = LinearGenerator(), LogisticClassifier()
    same = explainer_key(Fallback(GradientAscent(g, f, steps=3), GradientAscent(g, f, steps=3)))
    assert same == explainer_key(
        Fallback(GradientAscent(g, f, steps=3), GradientAscent(g, f, steps=3))
    )
    assert same["Fallback"]["first"]["GradientAscent"]["steps"] == 3
    other_setting = Fallback(GradientAscent(g, f, steps=9), GradientAscent(g, f, steps=3))
    other_model = Fallback(
        GradientAscent(g, f, steps=3), GradientAscent(g, LogisticClassifier(seed=7), steps=3)
    )
    assert explainer_key(other_setting) != same and explainer_key(other_model) != same

    loop = Fallback(None, None)
    loop.first = loop.second = Fallback(loop, None)  # a cycle ends, keyed by type
    assert "Fallback" in explainer_key(loop)


class _Weighted:
    """A user's explainer whose settings are a tensor, a numpy array and a dict."""

    def __init__(self, weights, prior, options) -> None:
        self.weights, self.prior, self.options = weights, prior, options

    def explain(self, x, target):
        raise AssertionError("not called")


def test_tensor_array_and_dict_settings_are_keyed_by_their_values():
    """They were keyed by their type alone: a chunk folder computed with other per-pixel
    weights, another prior or other options was read back as if it were this run's."""

    def key(weights=(1.0, 2.0), prior=(0.5, 0.5), options=None):
        options = {"mode": "a", "levels": [1, 2]} if options is None else options
        return explainer_key(_Weighted(torch.tensor(weights), np.array(prior), options))

    base = key()
    assert base == key()  # equal values, new objects: the same key
    assert key(weights=(1.0, 2.5)) != base
    assert key(prior=(0.4, 0.6)) != base
    assert key(options={"mode": "b", "levels": [1, 2]}) != base
    assert key(options={"mode": "a", "levels": [1, 3]}) != base
    settings = base["_Weighted"]
    assert settings["options"] == {"mode": "a", "levels": [1, 2]}
    assert settings["weights"].startswith("<Tensor sha256 ")
    assert settings["prior"].startswith("<Tensor sha256 ")
    # a dtype or shape of its own is another setting, even with the same numbers
    assert (
        explainer_key(_Weighted(torch.ones(2), None, {}))["_Weighted"]["weights"]
        != (
            explainer_key(_Weighted(torch.ones(2, dtype=torch.float64), None, {}))["_Weighted"][
                "weights"
            ]
        )
    )
    # arrays that are not numbers (strings) stay keyed by their type
    assert explainer_key(_Weighted(None, np.array(["a"]), {}))["_Weighted"]["prior"] == (
        "<ndarray>"
    )


def test_numpy_scalar_settings_are_keyed_by_their_values():
    """np.int64 / np.float32 settings pass the explainers' checks but were keyed as
    '<int64>': a run with other steps and margin resumed from this one's chunks."""
    g, f = LinearGenerator(), LogisticClassifier()
    a = explainer_key(GradientAscent(g, f, steps=np.int64(2), margin=np.float32(0.5)))
    b = explainer_key(GradientAscent(g, f, steps=np.int64(5), margin=np.float32(0.75)))
    assert a["GradientAscent"]["steps"] == 2 and a["GradientAscent"]["margin"] == 0.5
    assert b["GradientAscent"]["steps"] == 5 and b["GradientAscent"]["margin"] == 0.75
    assert a == explainer_key(GradientAscent(g, f, steps=2, margin=0.5))  # same values


def test_a_module_setting_that_is_not_a_weight_changes_the_key():
    """TwoLogits(outputs="logit") and (outputs="probability") hold the same weights but give
    other probabilities: keyed by weights alone, one resumed from the other's chunks."""
    from cfx.calls import TwoLogits

    g, base = LinearGenerator(), torch.nn.Linear(16, 1)
    keys = [
        explainer_key(GradientAscent(g, TwoLogits(base, outputs).eval(), steps=3))
        for outputs in ("logit", "probability", "logit")
    ]
    assert keys[0] != keys[1] and keys[0] == keys[2]
    # the mode is no setting: the explainers run models in eval mode
    trained = TwoLogits(base, "logit").train()
    assert explainer_key(GradientAscent(g, trained, steps=3)) == keys[0]


def test_a_module_attribute_tuple_holding_a_function_does_not_key_every_run_apart():
    """A tuple of functions was keyed by repr, which names the address: every process had
    another key, and the command line refused every resume."""
    from cfx.trajectory.identity import module_digest

    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    b.load_state_dict(a.state_dict())
    a.hooks = (lambda t: t,)
    b.hooks = (lambda t: t,)  # another function object, same meaning
    assert module_digest(a) == module_digest(b)
    a.sizes, b.sizes = (2, 3), (2, 4)  # a tuple of numbers is a setting
    assert module_digest(a) != module_digest(b)


def test_a_models_train_or_eval_mode_does_not_change_the_key():
    """The explainers run models in eval mode whatever mode they are given in: a rerun after
    `model.eval()` (or one from a notebook that left the model training) must read the
    finished chunks back, not start over."""
    g, f = LinearGenerator(), LogisticClassifier()
    f.train()
    training = explainer_key(GradientAscent(g, f, steps=3))
    f.eval()
    assert explainer_key(GradientAscent(g, f, steps=3)) == training


def test_a_models_private_attributes_do_not_change_the_key():
    """Only a module's public attributes are settings: a classifier that counts its calls in
    `_calls` would otherwise key each run apart, and no rerun would resume."""

    class Counted(LogisticClassifier):
        def forward(self, x):
            self._calls += 1
            return super().forward(x)

    g, f = LinearGenerator(), Counted()
    f._calls = 0
    before = explainer_key(GradientAscent(g, f, steps=3))
    f(torch.zeros(2, 1, 4, 4))
    assert f._calls == 1  # the premise: the attribute changed
    assert explainer_key(GradientAscent(g, f, steps=3)) == before


def test_integer_and_boolean_array_settings_are_keyed_by_their_values():
    """An int array (steps per class) or a bool array (a pixel mask) is numbers too: keyed
    by its type alone, a folder computed with another mask would be read back."""

    def key(prior):
        return explainer_key(_Weighted(None, prior, {}))["_Weighted"]["prior"]

    assert key(np.array([1, 2])) == key(np.array([1, 2]))
    assert key(np.array([1, 2])) != key(np.array([1, 3]))
    assert key(np.array([True, False])) != key(np.array([False, True]))
    assert key(np.array([1, 2], dtype=np.uint8)).startswith("<Tensor sha256 ")


def test_a_strided_array_setting_is_keyed_like_its_copy():
    """A reversed or sliced numpy view holds the same values as its copy, so it is the same
    setting (torch.from_numpy refuses negative strides: a reversed view crashed the key)."""

    def key(prior):
        return explainer_key(_Weighted(None, prior, {}))["_Weighted"]["prior"]

    assert key(np.arange(4.0)[::-1]) == key(np.array([3.0, 2.0, 1.0, 0.0]))
    assert key(np.arange(6.0)[::2]) == key(np.array([0.0, 2.0, 4.0]))


def test_mapping_settings_come_back_equal_from_the_key_file():
    """A chunk folder resumes when its key.json, read back, equals this run's key: an options
    dict with int keys or tuple values came back with string keys and lists (every rerun
    started over), and a tensor inside one is no JSON at all."""
    import json

    def key(weights):
        return explainer_key(_Weighted(None, None, {1: (0.5, 0.25), "w": weights}))

    base = key(torch.ones(2))
    assert json.loads(json.dumps(base)) == base
    assert base["_Weighted"]["options"]["1"] == [0.5, 0.25]
    assert base["_Weighted"]["options"]["w"].startswith("<Tensor sha256 ")
    assert key(torch.zeros(2)) != base  # the tensor's values count


def test_a_module_setting_tuple_holding_none_changes_the_key():
    """AdaptiveAvgPool2d((None, 7)) and ((None, 5)) hold no weights and pool to other
    widths: a tuple holding None is a setting, or one resumed from the other's chunks."""
    from cfx.trajectory.identity import module_digest

    a, b = torch.nn.AdaptiveAvgPool2d((None, 7)), torch.nn.AdaptiveAvgPool2d((None, 5))
    assert module_digest(a) != module_digest(b)
    assert module_digest(a) == module_digest(torch.nn.AdaptiveAvgPool2d((None, 7)))
