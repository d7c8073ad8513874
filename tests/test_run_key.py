"""cfx.run_key.changes: what a refused rerun says differs."""

from cfx.run_key import changes


def test_settings_given_where_there_were_none_are_named_one_by_one():
    """A batch rerun with `--immutable purpose` said only "(constraints)": the rules now given
    are named with their values, the empty ones left out."""
    none = {"constraints": None, "k": 3}
    rules = {"constraints": {"immutable": ["purpose"], "mutable": [], "bounds": {}}, "k": 3}
    assert changes(none, rules) == 'constraints.immutable: unset before, ["purpose"] now'
    assert changes(rules, none) == 'constraints.immutable: ["purpose"] before, unset now'
    bounds = {"constraints": {"bounds": {"age": [None, 40.0]}, "costs": {}}}
    said = changes({"constraints": None}, bounds)
    assert said == "constraints.bounds.age: unset before, [null, 40.0] now"
    # another explainer's settings (missing before, not None) stay one entry
    other = changes({"explainer": {"A": {"steps": 4}}}, {"explainer": {"B": {"steps": 4}}})
    assert other == (
        'explainer.A: {"steps": 4} before, unset now; explainer.B: unset before, {"steps": 4} now'
    )


def test_empty_settings_given_where_there_were_none_are_still_named():
    assert changes({"constraints": None}, {"constraints": {"immutable": []}}) == "constraints"


def test_changed_values_long_values_and_names():
    before = {"a": {"x": 1}, "train_sha256": "0" * 64, "key": {"seed": 1}}
    now = {"a": {"x": 2}, "train_sha256": "1" * 64, "key": {"seed": 2}}
    said = changes(before, now, {"train_sha256": "the training rows"})
    assert said == "a.x: 1 before, 2 now; seed: 1 before, 2 now; the training rows"


def test_same_but_ignores_only_the_names_given():
    from cfx.run_key import same_but

    before = {"budget": 200, "rounds": 2, "seed": 0}
    assert same_but(before, {"budget": 400, "rounds": 4, "seed": 0}, {"budget", "rounds"})
    assert not same_but(before, {"budget": 400, "rounds": 4, "seed": 1}, {"budget", "rounds"})
    assert not same_but(before, {**before, "extra": 1}, {"budget"})  # an entry one lacks
    assert same_but(before, {**before, "extra": None}, set())  # ... counts as None there
