"""The static HTML report and the demo's handling of an old report in its folder."""

import pytest

from cfx import report as rp


def test_paragraph_escapes_text_and_turns_backticks_into_code():
    assert rp.paragraph("a < b, `purpose` is `immutable`") == (
        "<p>a &lt; b, <code>purpose</code> is <code>immutable</code></p>"
    )
    assert rp.link("a b.csv", "x<y") == '<a href="a b.csv">x&lt;y</a>'


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
