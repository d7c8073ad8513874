import json

from cfx.cli import main
from cfx.label import pending, record_label

SMALL = [
    "--train-n",
    "64",
    "--pool-n",
    "40",
    "--budget",
    "4",
    "--rounds",
    "1",
    "--epochs",
    "1",
    "--no-progress",
]


def test_augment_with_the_oracle_writes_summary_and_model(tmp_path):
    out = tmp_path / "aug"
    assert main(["augment", *SMALL, "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["labels_used"] == 4
    assert summary["rounds"][0]["labelled"] == 4
    assert 0.0 <= summary["rounds"][0]["test"]["worst_group"] <= 1.0
    assert (out / "model" / "model.safetensors").is_file()


def test_augment_with_a_person_stops_for_labels_then_continues(tmp_path, capsys):
    out = tmp_path / "aug"
    args = ["augment", *SMALL, "--labeller", "web", "--out", str(out)]
    assert main(args) == 3
    task = out / "round_00" / "task"
    assert "cfx label serve" in capsys.readouterr().err
    for item in pending(task):
        record_label(task, item, 1)
    assert main(args) == 0
    assert json.loads((out / "summary.json").read_text())["rounds"][0]["label_counts"] == [0, 4]


def test_models_are_checked_before_any_data_is_rendered(tmp_path, capsys, monkeypatch):
    import cfx.data.brain

    def no_rendering(*args, **kwargs):
        raise AssertionError("slices were rendered before the models were checked")

    monkeypatch.setattr(cfx.data.brain, "make_dataset", no_rendering)
    cases = [
        (["--generator", "brain-cnn"], "`--generator`: 'brain-cnn' is a classifier"),
        (["--classifier", "brain-gan"], "`--classifier`: 'brain-gan' is a generator"),
        (["--oracle", "none"], "`--oracle`: unknown zoo classifier 'none'"),
    ]
    for extra, message in cases:
        assert main(["augment", *extra, "--out", str(tmp_path / "a")]) == 2, extra
        err = capsys.readouterr().err
        assert message in err and "or 'none'" not in err, extra
