import json

from cfx.cli import main


def test_shortcuts_writes_summary_report_and_figure(tmp_path, capsys):
    out = tmp_path / "sc"
    args = ["shortcuts", "--classifier", "brain-cnn", "--n", "4", "--steps", "3"]
    code = main([*args, "--inversion-steps", "0", "--out", str(out), "--no-progress"])
    assert code == 0
    assert (out / "examples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((out / "summary.json").read_text())
    for key in ("classifier", "method", "n", "marker_rate", "flagged", "verdict", "directions"):
        assert key in summary
    assert summary["classifier"] == "brain-cnn" and summary["n"] == 4
    assert isinstance(summary["flagged"], bool)
    assert summary["verdict"].startswith("brain-cnn: ")
    assert 0 <= summary["n_counted"] <= 4
    assert summary["marker_rate"] is None or 0.0 <= summary["marker_rate"] <= 1.0
    assert set(summary["directions"]) == {"tumour->healthy", "healthy->tumour"}
    groups = summary["accuracy_by_group"]
    assert (
        {"accuracy", "worst_group"}
        <= set(groups)
        <= {
            "accuracy",
            "worst_group",
            "healthy_no_marker",
            "healthy_marker",
            "tumour_no_marker",
            "tumour_marker",
        }
    )
    assert groups["worst_group"] <= groups["accuracy"]
    n_paths = 0
    for direction in summary["directions"].values():
        n_paths += direction["n_paths"]
        assert isinstance(direction["n_paths"], int)  # a count, not 3.0
        assert direction["n_counted"] <= direction["n_started_outside"] <= direction["n_paths"]
        assert isinstance(direction["verdict"], str)
        for region in ("lesion", "marker", "elsewhere"):
            share = direction[f"median_saliency_{region}"]
            assert share is None or 0.0 <= share <= 1.0
            area = direction[f"median_area_{region}"]
            assert 0.0 <= area <= 1.0
        assert abs(direction["median_area_marker"] - 121 / 4096) < 1e-6  # the 11x11 box
    assert n_paths == 4
    cells = summary["cells"]
    assert summary["min_paths"] == 3 and summary["flag_rate"] == 0.5
    assert [(c["direction"], c["marker_present"]) for c in cells] == [
        ("tumour->healthy", True),
        ("tumour->healthy", False),
        ("healthy->tumour", True),
        ("healthy->tumour", False),
    ]
    assert sum(c["n_paths"] for c in cells) == 4
    assert sum(c["n_counted"] for c in cells) == summary["n_counted"]
    assert summary["flagged"] == any(c["flagged"] for c in cells)
    for c in cells:
        assert c["n_via_marker"] <= c["n_counted"] <= c["n_paths"]
        assert c["enough_paths"] == (c["n_counted"] >= 3)
    report = (out / "report.md").read_text()
    assert "# Shortcut report: `brain-cnn`" in report
    assert "## tumour->healthy" in report and "## healthy->tumour" in report
    assert "| marker box |" in report
    assert "| tumour->healthy | tumour slices with the marker |" in report
    assert summary["verdict"] in capsys.readouterr().out


def test_shortcuts_bad_arguments_are_clear_errors(tmp_path, capsys):
    assert main(["shortcuts", "--n", "0", "--out", str(tmp_path)]) == 2
    assert "`--n` must be an int >= 1, got 0" in capsys.readouterr().err
    # the audit's own checks called these `flag_rate` and `min_paths`
    assert main(["shortcuts", "--flag-rate", "1.5", "--out", str(tmp_path)]) == 2
    assert "`--flag-rate` must be a number in (0, 1], got 1.5" in capsys.readouterr().err
    assert main(["shortcuts", "--min-paths", "0", "--out", str(tmp_path)]) == 2
    assert "`--min-paths` must be an int >= 1, got 0" in capsys.readouterr().err
    assert main(["shortcuts", "--generator", "brain-cnn", "--out", str(tmp_path)]) == 2
    assert "`--generator`: 'brain-cnn' is a classifier" in capsys.readouterr().err
    assert main(["shortcuts", "--saliency", "magic", "--out", str(tmp_path)]) == 2
    assert "unknown saliency method 'magic'" in capsys.readouterr().err
