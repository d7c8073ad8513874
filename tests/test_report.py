"""The static HTML report and the demo's handling of an old report in its folder."""

import pytest

from cfx import report as rp


def test_paragraph_escapes_text_and_turns_backticks_into_code():
    assert rp.paragraph("a < b, `purpose` is `immutable`") == (
        "<p>a &lt; b, <code>purpose</code> is <code>immutable</code></p>"
    )
    assert rp.link("a b.csv", "x<y") == '<a href="a%20b.csv">x&lt;y</a>'


def test_a_table_escapes_its_cells_and_scrolls_in_a_box(tmp_path):
    """Wide tables (German Credit's) ran off the page; then `display:block` on the table made
    it scroll but took its table role from screen readers."""
    from cfx.report import Report, table

    html = table(["a<b", "c"], [[1, "x&y"]])
    assert html == (
        '<div class="scroll"><table><thead><tr><th>a&lt;b</th><th>c</th></tr></thead>'
        "<tbody><tr><td>1</td><td>x&amp;y</td></tr></tbody></table></div>"
    )
    report = Report("t", tmp_path)
    report.add("s", html)
    page = report.write().read_text()
    assert ".scroll{max-width:100%;overflow-x:auto}" in page and "display:block" not in page


def test_an_interrupted_demo_leaves_no_old_page_over_new_figures(tmp_path, monkeypatch):
    """The page was written only at the end while figures were rewritten as the sections ran,
    so a run stopped halfway left the previous run's page showing the new run's figures."""
    import cfx.demo

    (tmp_path / "index.html").write_text("<title>cfx demo</title><p>the previous run</p>")

    def first(out, seed):
        (out / "figure.png").write_bytes(b"new")
        return [rp.paragraph("first")]

    def interrupted(out, seed):
        raise KeyboardInterrupt

    monkeypatch.setattr(cfx.demo, "SECTIONS", (("First", first), ("Second", interrupted)))
    with pytest.raises(KeyboardInterrupt):
        cfx.demo.build_demo(tmp_path, show_progress=False)
    assert not (tmp_path / "index.html").exists()
    monkeypatch.setattr(cfx.demo, "SECTIONS", (("First", first),))
    page = cfx.demo.build_demo(tmp_path, show_progress=False).read_text()
    assert "<h2>First</h2>" in page and "previous run" not in page
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figure.png", "index.html"]


def test_the_demo_refuses_a_folder_holding_another_page(tmp_path):
    import cfx.demo

    (tmp_path / "index.html").write_text("<title>my project</title>")
    with pytest.raises(FileExistsError, match=r"holds an index\.html that cfx demo did not write"):
        cfx.demo.build_demo(tmp_path, show_progress=False)
    assert (tmp_path / "index.html").read_text() == "<title>my project</title>"
    assert [p.name for p in tmp_path.iterdir()] == ["index.html"]


def test_a_seed_numpy_cannot_take_is_named_before_the_folder_is_made(tmp_path, capsys):
    """--seed -1 failed in the credit section with scikit-learn's message about
    `random_state`, leaving a half-written report folder."""
    import cfx.demo
    from cfx.cli import main

    with pytest.raises(ValueError, match=r"`seed` must be an int in \[0, 2\*\*32\)"):
        cfx.demo.build_demo(tmp_path / "a", seed=-1, show_progress=False)
    assert main(["demo", "--seed", "-1", "--out", str(tmp_path / "b")]) == 2
    assert "`--seed` must be an int in [0, 2**32), got -1" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_seed_whose_held_out_slices_the_models_saw_is_refused(tmp_path, capsys):
    """The demo draws its test slices from brain seed `seed` + 2 and its shortcut audit's from
    `seed` + 5 and calls them held out: `--seed 8` drew brain-cnn's training seed 10 (a
    session-55 reader's audit). The refused seeds are those the model cards train and
    validate on (read here from the cards' commands) and the augmentation pool's."""
    import re
    from pathlib import Path

    import cfx.demo
    from cfx.cli import main

    root = Path(cfx.demo.__file__).parents[1]
    cards = [*root.glob("classifiers/*/README.md"), *root.glob("generators/*/README.md")]
    seeds = {int(m) for c in cards for m in re.findall(r"--(?:data|val)-seed (\d+)", c.read_text())}
    assert len(cards) >= 5 and seeds == cfx.demo.MODELS_SAW - {12}
    with pytest.raises(ValueError, match=r"test slices from brain seed 10, which the shipped"):
        cfx.demo.build_demo(tmp_path / "a", seed=8, show_progress=False)
    assert main(["demo", "--seed", "6", "--out", str(tmp_path / "b")]) == 2
    assert "shortcut audit slices from brain seed 11" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_the_trajectory_section_quotes_the_benchmark_as_ranges_over_its_splits(tmp_path):
    import json

    from cfx.demo import BENCHMARK_RUNS, _benchmark_row

    def run(agree, local, frechet, floor, speed=None):
        block = {"n": 128, "flip_rate": 1.0, "oracle_agreement": agree, "spearman_t_f": 1.0}
        block |= {"calibration_error": 0.05, "localisation": local, "realism_frechet": frechet}
        data = {"tumour_to_healthy": {"option2_localised": block, "realism_floor": floor}}
        return data | ({} if speed is None else {"speed": {SPEED: speed}})

    SPEED = "option2_localised_seconds_per_trajectory_batch32"
    runs = [
        run(0.9375, 0.738, 1.5, 0.03, 1.414),
        run(0.93, 0.71, 0.28, 0.02),
        run(0.9375, 0.675, 1.8, 0.03),
    ]
    assert _benchmark_row(tmp_path) is None  # no results: the section says where to look
    for name, data in zip(BENCHMARK_RUNS, runs, strict=True):
        (tmp_path / name).write_text(json.dumps(data))
    row, realism, met, missed = _benchmark_row(tmp_path)
    assert row[1:] == [
        "3 x 128",
        "1.00",
        "0.93-0.94 ✗ (misses the bar)",  # a miss is marked where the figure is read
        "–",  # along the path: the runs predate the metric
        "1.00",
        "0.05",
        "0.68-0.74 ✗ (misses the bar on 1 of 3)",
        "14-60x ✗ (misses the bar)",
        "1.41 (batch 32, inversion apart)",
    ]
    assert realism == "14-60x" and not met  # 0.28 / 0.02 and 1.8 / 0.03; bar 2x
    # the bars a split misses are named with their figures (the page left them to be spotted)
    assert missed == [
        "oracle agreement 0.930-0.938 (bar >= 0.95)",
        "localisation 0.675-0.738 (bar >= 0.7, 1 of 3 splits)",
        "realism 14-60x the real-vs-real floor (bar <= 2x)",
    ]
    # once every split has measured it, agreement along the path is quoted too; one split
    # without it leaves the cell "–" rather than quoting the others as all three
    for i, (name, data) in enumerate(zip(BENCHMARK_RUNS, runs, strict=True)):
        data["tumour_to_healthy"]["option2_localised"]["oracle_agreement_along_path"] = 0.4 + i / 10
        (tmp_path / name).write_text(json.dumps(data))
    assert _benchmark_row(tmp_path)[0][4] == "0.40-0.60"
    del runs[1]["tumour_to_healthy"]["option2_localised"]["oracle_agreement_along_path"]
    (tmp_path / BENCHMARK_RUNS[1]).write_text(json.dumps(runs[1]))
    assert _benchmark_row(tmp_path)[0][4] == "–"
    (tmp_path / BENCHMARK_RUNS[2]).write_text(json.dumps({"healthy_to_tumour": {}}))
    assert _benchmark_row(tmp_path) is None  # a split without the figures: no half a row


def test_the_saliency_section_reads_each_methods_benchmark_dice_and_readings(tmp_path):
    """The demo recommended its best Dice (SmoothGrad) beside a sanity check that left it
    out; each method now carries the benchmark's Dice and both randomisation readings."""
    import json

    from cfx.demo import _saliency_benchmark

    assert _saliency_benchmark(tmp_path) is None  # an installed package has no results
    data = {
        "quality": {
            "rows": [{"method": "smoothgrad", "dice": 0.7}, {"method": "rise", "dice": 0.69}]
        },
        "randomisation": {
            "rows": [
                {"method": "smoothgrad", "verdict": "input-driven"},
                {"method": "rise", "verdict": "weight-dependent"},
            ]
        },
        "labels": {
            "rows": [
                {"method": "smoothgrad", "verdict": "input-driven"},
                {"method": "rise", "verdict": "model-dependent"},
            ]
        },
    }
    (tmp_path / "saliency.json").write_text(json.dumps(data))
    assert _saliency_benchmark(tmp_path) == {
        "smoothgrad": (0.7, "input-driven", "input-driven"),
        "rise": (0.69, "weight-dependent", "model-dependent"),
    }
    del data["labels"]  # a file of a run without the label check: the columns are left out
    (tmp_path / "saliency.json").write_text(json.dumps(data))
    assert _saliency_benchmark(tmp_path) is None


def test_a_figures_explanation_is_a_visible_caption_said_once():
    """The demo's figure explanations lived in alt text only, which a sighted reader never
    sees; then in both, which a screen reader read twice."""
    from cfx.report import image

    html = image("a b.png", "f < 0.5 'below'")
    assert html == (
        '<figure><img src="a%20b.png" alt="">'
        '<figcaption class="note">f &lt; 0.5 &#x27;below&#x27;</figcaption></figure>'
    )


def test_links_and_images_are_url_encoded_and_a_str_folder_is_taken(tmp_path):
    """'case #3.png' was fetched as 'case ' with a fragment, '50%20off.png' as '50 off.png';
    Report('t', '/some/folder') failed at write() as str.mkdir (session-53 audit)."""
    from cfx import report as rp

    assert 'href="case%20%233.png"' in rp.link("case #3.png", "x")
    assert 'src="50%2520off.png"' in rp.image("50%20off.png", "x")
    assert 'href="a%26b.csv"' in rp.link("a&b.csv", "x")
    page = rp.Report("t", str(tmp_path / "r")).write()
    assert page == tmp_path / "r" / "index.html" and page.is_file()


def test_a_link_in_a_table_is_a_link_and_the_zoo_cards_are_linked(tmp_path, monkeypatch):
    """The zoo table named each model card as plain text (an earlier audit's left-alone item,
    session 57): its last cell is now a link that reaches the card from the report's folder."""
    import re
    from pathlib import Path

    from cfx.demo import card_link
    from cfx.zoo import model_folder

    cells = rp.table(["card"], [[rp.link("a b.md", "a<b")], ['<a href="x">x</a>']])
    assert '<td><a href="a%20b.md">a&lt;b</a></td>' in cells  # made by link: kept
    assert "<td>&lt;a href=&quot;x&quot;&gt;x&lt;/a&gt;</td>" in cells  # text: escaped
    card = model_folder("brain-cnn") / "README.md"
    for out, cwd in ((tmp_path / "cfx-report", tmp_path), (tmp_path / "a" / "b", card.parents[2])):
        monkeypatch.chdir(cwd)
        out.mkdir(parents=True, exist_ok=True)
        (href,) = re.findall(r'href="([^"]+)"', card_link(card, out))
        assert not Path(href).is_absolute()
        assert (out / href).resolve() == card.resolve()
    assert card_link(card, out).endswith(">classifiers/brain-cnn/README.md</a>")  # as shown
