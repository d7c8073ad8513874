import json

import pytest

from cfx.cli import main
from cfx.cli.saliency import parse_fraction


def test_compare_writes_table_grid_and_attack_figures(tmp_path, capsys):
    out = tmp_path / "cmp"
    code = main(
        [
            "saliency",
            "compare",
            "--n",
            "2",
            "--methods",
            "gradient,gradcam,occlusion",
            "--fast",
            "--attack-n",
            "1",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    for name in (
        "table.csv",
        "table.md",
        "grid.png",
        "attack_gradient.png",
        "attack_integrated_gradients.png",
    ):
        assert (out / name).is_file()
    csv = (out / "table.csv").read_text().splitlines()
    assert csv[0].startswith("method,pointing_game,pointing_game_ci95")
    assert [row.split(",")[0] for row in csv[1:]] == ["gradient", "gradcam", "occlusion"]
    assert "± " in (out / "table.md").read_text()
    assert "best Dice" in capsys.readouterr().out


def test_attack_writes_per_image_rows_and_summary(tmp_path):
    out = tmp_path / "atk"
    code = main(
        ["saliency", "attack", "--n", "2", "--steps", "2", "--out", str(out), "--no-progress"]
    )
    assert code == 0
    rows = (out / "attack.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[0].startswith("image,top_k_intersection")
    summary = json.loads((out / "attack.json").read_text())
    assert summary["label_kept"] == 1.0 and summary["max_linf"] <= 8 / 255 + 1e-6
    assert (out / "attack.png").is_file()


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["saliency", "compare", "--methods", "magic"], "unknown saliency method"),
        (["saliency", "attack", "--epsilon", "eight"], "fraction like 8/255"),
        (["saliency", "compare", "--n", "0"], "`n` must be a positive int"),
        (
            ["saliency", "compare", "--classifier", "brain-gan"],
            "`--classifier`: 'brain-gan' is a generator; expected a classifier",
        ),
        (["saliency", "attack", "--classifier", "resnet50"], "unknown zoo classifier 'resnet50'"),
    ],
)
def test_user_errors_are_one_clear_line(tmp_path, capsys, argv, match):
    assert main([*argv, "--out", str(tmp_path / "x")]) == 2
    assert match in capsys.readouterr().err


def test_missing_zoo_model_is_a_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CFX_ZOO", str(tmp_path))
    assert main(["saliency", "compare", "--n", "1", "--out", str(tmp_path / "x")]) == 2
    assert "has no weights" in capsys.readouterr().err


def test_parse_fraction():
    assert parse_fraction("8/255") == pytest.approx(8 / 255)
    assert parse_fraction(" 0.5 ") == 0.5
