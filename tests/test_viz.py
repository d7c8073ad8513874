import numpy as np
import pytest
import torch
from PIL import Image

from cfx.viz import trajectory_gif, trajectory_strip


def _sequence(channels: int) -> torch.Tensor:
    """Two frames ``(2, C, 4, 4)``: black, then (for RGB) pure red / (for grey) white."""
    frames = -torch.ones(2, channels, 4, 4)
    frames[1, 0] = 1.0
    if channels == 1:
        frames[1] = 1.0
    return frames


@pytest.mark.parametrize(("channels", "second"), [(1, (255, 255, 255)), (3, (255, 0, 0))])
def test_gif_frames_show_the_images_in_their_colours(tmp_path, channels, second):
    path = trajectory_gif(_sequence(channels), tmp_path / "s.gif", scale=2)
    with Image.open(path) as gif:
        first = np.asarray(gif.convert("RGB"))
        gif.seek(1)
        later = np.asarray(gif.convert("RGB"))
    assert first.shape == (8, 8, 3)
    assert tuple(first[0, 0]) == (0, 0, 0) and tuple(later[0, 0]) == second


def kept_figures(monkeypatch, module) -> dict:
    """Replace ``module``'s ``_save`` with one that keeps each figure instead of writing it:
    the last one drawn is ``drawn["fig"]``, its first axes ``drawn["ax"]``."""
    drawn = {}

    def keep(fig, path, *, dpi):
        drawn["fig"], drawn["ax"] = fig, fig.axes[0]
        return path

    monkeypatch.setattr(module, "_save", keep)
    return drawn


def test_strips_draw_grey_and_colour_and_refuse_other_channel_counts(tmp_path):
    probs = torch.tensor([[0.1, 0.9]])
    for channels in (1, 3):
        out = trajectory_strip(_sequence(channels)[None], probs, tmp_path / f"{channels}.png")
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="1 or 3 channels"):
        trajectory_strip(torch.zeros(1, 2, 2, 4, 4), probs, tmp_path / "bad.png")


def test_strips_can_show_the_inputs_in_a_first_column(tmp_path):
    frames = -torch.ones(2, 3, 1, 8, 8)  # two black sequences of three frames
    sources = torch.zeros(2, 1, 8, 8)  # mid-grey inputs (the figure's background is white)
    probs = torch.tensor([[0.1, 0.5, 0.9], [0.2, 0.6, 0.95]])
    plain = np.asarray(Image.open(trajectory_strip(frames, probs, tmp_path / "a.png")))
    both = trajectory_strip(frames, probs, tmp_path / "b.png", sources=sources)
    shown = np.asarray(Image.open(both).convert("L")).astype(int)
    # one more column of the same width
    assert abs(shown.shape[1] - plain.shape[1] * 4 / 3) <= 2
    assert shown.shape[0] == plain.shape[0]
    # the grey inputs fill the first of the four columns and appear nowhere else
    grey = np.abs(shown - 128) <= 2
    quarter = shown.shape[1] // 4
    drawn = 2 * (1.25 * 110 * 0.8) ** 2  # two inputs, at least 80 % of a 1.25-inch frame
    assert int(grey[:, :quarter].sum()) > drawn
    assert int(grey[:, quarter:].sum()) < 0.05 * drawn  # anti-aliased title text at most
    with pytest.raises(ValueError, match="`sources` must have shape"):
        trajectory_strip(frames, probs, tmp_path / "d.png", sources=sources[:1])


def test_a_two_line_input_title_gets_the_room_of_two_lines(tmp_path):
    """Without an oracle each row had room for one title line, so the input column's
    "input / f=0.12" ran into the frames of the row above."""
    frames = -torch.ones(2, 3, 1, 8, 8)
    sources = torch.zeros(2, 1, 8, 8)
    probs = torch.tensor([[0.1, 0.5, 0.9], [0.2, 0.6, 0.95]])

    def height(**kw) -> int:
        path = trajectory_strip(frames, probs, tmp_path / f"{len(kw)}.png", sources=sources, **kw)
        return np.asarray(Image.open(path)).shape[0]

    one_line = height()
    titled = height(source_probs=torch.tensor([0.12, 0.3]))
    with_oracle = height(source_probs=torch.tensor([0.12, 0.3]), oracle_probs=probs)
    assert titled == with_oracle > one_line


def test_gif_captions_name_each_frame_and_its_probability(tmp_path):
    frames = -torch.ones(3, 1, 8, 8)  # black frames: any light pixel is caption text
    plain = trajectory_gif(frames, tmp_path / "a.gif", scale=2)
    probs = torch.tensor([0.1, 0.5, 0.9])
    captioned = trajectory_gif(frames, tmp_path / "b.gif", scale=2, probs=probs)
    with Image.open(plain) as a, Image.open(captioned) as b:
        assert a.size == (16, 16) and b.size == (16, 16 + 12)  # a caption band below
        assert b.n_frames == 4  # three frames there and back (identical plain ones merge)
        pics = []
        for k in range(b.n_frames):
            b.seek(k)
            pics.append(np.asarray(b.convert("L")))
    for pic in pics:
        assert int(pic[:16].max()) == 0  # the frame itself is untouched
        assert int(pic[16:].max()) > 0  # the band holds text
    assert not np.array_equal(pics[0][16:], pics[1][16:])  # "t=0 f=0.10" vs "t=1 f=0.50"
    assert np.array_equal(pics[1], pics[3])  # played back: frame 1 again
    with pytest.raises(ValueError, match=r"`probs` must have shape \(3,\)"):
        trajectory_gif(frames, tmp_path / "c.gif", probs=torch.zeros(2))


def test_shapes_are_checked_and_names_without_a_suffix_get_one(tmp_path):
    from cfx.viz import probability_curves

    seq = _sequence(1)  # (2, 1, 4, 4): one sequence
    probs = torch.tensor([[0.1, 0.9]])
    with pytest.raises(ValueError, match=r"`frames` must have shape \(B, T\+1, C, H, W\)"):
        trajectory_strip(seq, probs, tmp_path / "s.png")  # a sequence, not a batch
    with pytest.raises(ValueError, match=r"`probs` must have shape \(B, T\+1\) = \(1, 2\)"):
        trajectory_strip(seq[None], torch.tensor([[0.1, 0.5, 0.9]]), tmp_path / "s.png")
    with pytest.raises(ValueError, match=r"`frames` must have shape \(T\+1, C, H, W\)"):
        trajectory_gif(seq[None], tmp_path / "s.gif")  # a batch, not a sequence
    with pytest.raises(ValueError, match=r"`probs` must have shape \(B, T\+1\)"):
        probability_curves(probs[0], torch.tensor([0.0, 1.0]), tmp_path / "c.png")
    with pytest.raises(ValueError, match=r"`levels` must have shape \(T\+1,\) = \(2,\)"):
        probability_curves(probs, torch.tensor([0.0, 0.5, 1.0]), tmp_path / "c.png")
    probs.requires_grad_(True)  # e.g. straight from a model: drawn without detaching first
    curves = probability_curves(probs, torch.tensor([0.0, 1.0]), tmp_path / "c", oracle_probs=probs)
    assert curves == tmp_path / "c.png" and curves.is_file()
    strip = trajectory_strip(seq[None], probs, tmp_path / "noext")
    assert strip == tmp_path / "noext.png" and strip.is_file()
    gif = trajectory_gif(seq, tmp_path / "anim")
    assert gif == tmp_path / "anim.gif" and gif.is_file()


def test_figures_leave_pyplot_and_its_backend_alone(tmp_path):
    """`matplotlib.use("Agg")` in cfx.viz switched a notebook's inline backend, so every later
    figure of the notebook came out empty."""
    import matplotlib
    import matplotlib.pyplot as plt

    from cfx.viz import probability_curves

    before = matplotlib.get_backend()
    try:
        matplotlib.use("svg")
        open_figures = plt.get_fignums()
        probs = torch.tensor([[0.1, 0.5, 0.9]])
        probability_curves(probs, torch.tensor([0.0, 0.5, 1.0]), tmp_path / "grid.png")
        assert matplotlib.get_backend() == "svg"
        assert plt.get_fignums() == open_figures
        assert Image.open(tmp_path / "grid.png").size[0] > 0
    finally:
        matplotlib.use(before)


def test_one_paths_curves_are_drawn_full_strength(tmp_path, monkeypatch):
    """A single path's curves were drawn faint, as for many overlaid paths, beside a solid
    legend: the plot looked half empty (session 47 audit)."""
    import cfx.viz.trajectory as trajectory_viz
    from cfx.viz import probability_curves

    drawn = []
    real = trajectory_viz._save

    def keep(fig, path, **kwargs):
        drawn.append([(line.get_label(), line.get_alpha()) for line in fig.axes[0].lines])
        return real(fig, path, **kwargs)

    monkeypatch.setattr(trajectory_viz, "_save", keep)
    levels = torch.tensor([0.0, 0.5, 1.0])
    for b in (1, 40):
        probs = torch.tensor([[0.1, 0.5, 0.9]]).repeat(b, 1)
        probability_curves(probs, levels, tmp_path / f"c{b}.png", oracle_probs=probs)
    one, many = ([a for name, a in lines if a is not None] for lines in drawn)
    assert one == [0.9, 0.9]  # the classifier's and the oracle's line
    assert set(many) == {0.5, 0.35}  # forty overlaid paths stay faint


def test_saliency_and_attack_figures_show_colour_images_in_colour(tmp_path):
    """Both drew channel 0 of colour images in grey: a red image came out white."""
    from cfx.viz import attack_figure, saliency_grid

    red = -torch.ones(2, 3, 16, 16)
    red[:, 0] = 1.0
    masks = torch.zeros(2, 1, 16, 16, dtype=torch.bool)
    masks[:, :, 4:8, 4:8] = True
    maps = torch.zeros(1, 2, 1, 16, 16)
    for path in (
        saliency_grid(red, masks, maps, ["none"], tmp_path / "grid.png"),
        attack_figure(red, red, maps[0], maps[0], tmp_path / "attack.png"),
    ):
        with Image.open(path) as png:
            pixels = np.asarray(png.convert("RGB")).reshape(-1, 3).astype(int)
        reddish = (pixels[:, 0] > 200) & (pixels[:, 1] < 60) & (pixels[:, 2] < 60)
        assert reddish.sum() > 100, path.name  # the image panels are red


def test_saliency_figures_draw_other_channel_counts_by_their_first_channel(tmp_path):
    """Four-channel images (a model trained on them explains them) made the figures refuse
    after all the work was done."""
    from cfx.viz import attack_figure, saliency_grid

    four = torch.zeros(2, 4, 8, 8)
    masks = torch.zeros(2, 1, 8, 8, dtype=torch.bool)
    maps = torch.zeros(1, 2, 1, 8, 8)
    assert saliency_grid(four, masks, maps, ["m"], tmp_path / "g.png").is_file()
    assert attack_figure(four, four, maps[0], maps[0], tmp_path / "a.png").is_file()


def test_saliency_figures_label_their_rows_with_the_names_given(tmp_path):
    """Rows were only in the images' order; with your own files they carry the file names
    (drawn left of the first panel)."""
    from cfx.viz import attack_figure, saliency_grid

    x = torch.zeros(2, 1, 8, 8)
    masks = torch.zeros(2, 1, 8, 8, dtype=torch.bool)
    maps = torch.zeros(1, 2, 1, 8, 8)
    for draw in (
        lambda path, **kw: saliency_grid(x, masks, maps, ["m"], path, **kw),
        lambda path, **kw: attack_figure(x, x, maps[0], maps[0], path, **kw),
    ):
        plain = np.asarray(Image.open(draw(tmp_path / "plain.png")).convert("L"))
        named = np.asarray(
            Image.open(draw(tmp_path / "named.png", row_names=["a.png", "b.png"])).convert("L")
        )
        assert plain.shape[0] == named.shape[0]
        band = named.shape[1] - plain.shape[1]  # the grid's band left of the rows for names
        assert band > 0 and int((named[:, :band] < 128).sum()) > 20  # the names' ink


def test_the_attack_figure_outlines_the_region_on_both_maps(tmp_path):
    """A targeted attack's figure did not show where the map was pulled."""
    from cfx.viz import attack_figure

    x = torch.zeros(2, 1, 32, 32)
    maps = torch.zeros(2, 1, 32, 32)  # black in inferno: nothing else is cyan
    region = torch.zeros(1, 1, 32, 32, dtype=torch.bool)
    region[..., 8:24, 8:24] = True

    def cyan(path):
        with Image.open(path) as png:
            rgb = np.asarray(png.convert("RGB")).astype(int)
        return (rgb[..., 0] < 90) & (rgb[..., 1] > 160) & (rgb[..., 2] > 160)  # (H, W)

    plain = cyan(attack_figure(x, x, maps, maps, tmp_path / "plain.png"))
    outlined = cyan(attack_figure(x, x, maps, maps, tmp_path / "o.png", region=region))
    assert plain.sum() == 0 and outlined.sum() > 100
    columns = np.flatnonzero(outlined.any(0))  # in the two map panels, the right 2/5
    assert columns.min() > 0.55 * outlined.shape[1]
    with pytest.raises(ValueError, match=r"`region` must have shape \(B or 1, 1, H, W\)"):
        attack_figure(x, x, maps, maps, tmp_path / "bad.png", region=region[0])
    with pytest.raises(ValueError, match=r"= \(B or 1, 1, 32, 32\) .* got \(1, 1, 16, 16\)"):
        attack_figure(x, x, maps, maps, tmp_path / "bad.png", region=region[..., :16, :16])


def test_the_cascade_figure_names_shapes_that_do_not_fit(tmp_path):
    from cfx.viz import randomisation_figure

    x = torch.zeros(1, 8, 8)
    original, randomised = torch.rand(2, 1, 8, 8), torch.rand(2, 3, 1, 8, 8)
    path = randomisation_figure(x, original, randomised, ["a", "b"], ["l3", "l2", "l1"],
                                tmp_path / "c.png")  # fmt: skip
    with Image.open(path) as png:
        assert png.size[0] > png.size[1]  # 5 columns, 2 rows
    with pytest.raises(ValueError, match=r"`randomised` must have shape \(2, 2, 1, H, W\)"):
        randomisation_figure(x, original, randomised, ["a", "b"], ["l3", "l2"], tmp_path / "d")
    with pytest.raises(ValueError, match=r"`original` must have shape \(3, 1, H, W\)"):
        randomisation_figure(x, original, randomised, ["a", "b", "c"], ["l"], tmp_path / "e")


def test_row_names_must_name_every_row(tmp_path):
    from cfx.viz import saliency_grid

    x = torch.zeros(2, 1, 8, 8)
    with pytest.raises(ValueError, match="`row_names` must name the 2 rows, got 1 names"):
        saliency_grid(x, x.bool(), x[None], ["m"], tmp_path / "g.png", row_names=["a.png"])
    with pytest.raises(ValueError, match="`row_names` must name the 1 rows, got 2 names"):
        trajectory_strip(_sequence(1)[None], torch.tensor([[0.1, 0.9]]), tmp_path / "s.png",
                         row_names=["a", "b"])  # fmt: skip


def _colours(path) -> dict[str, int]:
    """Pixels of the change column (the right quarter of a one-row figure of four panels):
    magma's orange (the largest change), black (none), cyan and yellow (outlines)."""
    rgb = np.asarray(Image.open(path).convert("RGB")).astype(int)
    r, g, b = np.moveaxis(rgb[:, 3 * rgb.shape[1] // 4 :], -1, 0)
    return {
        "orange": int(((r > 230) & (abs(g - 145) < 30) & (abs(b - 95) < 35)).sum()),
        "black": int(((r < 15) & (g < 15) & (b < 25)).sum()),
        "cyan": int(((r < 90) & (g > 180) & (b > 180)).sum()),
        "yellow": int(((r > 200) & (g > 200) & (b < 90)).sum()),
    }


def test_change_panels_show_where_the_last_frame_differs_from_frame_0(tmp_path):
    from cfx.viz import change_panels

    frames = -torch.ones(1, 3, 1, 16, 16)  # black frames; the last one whiter in its top half
    frames[0, -1, :, :8] = 0.5
    sources = torch.zeros(1, 1, 16, 16)
    plain = _colours(change_panels(frames, tmp_path / "a.png", sources=sources))
    # the change fills half of the panel at the top of the scale, the other half is black
    assert plain["orange"] > 0.4 * plain["black"] and plain["black"] > 0.4 * plain["orange"]
    assert plain["cyan"] == plain["yellow"] == 0
    region = torch.zeros(1, 1, 16, 16)
    region[..., 4:12, 4:12] = 1.0
    lesion = torch.zeros(1, 1, 16, 16, dtype=torch.bool)
    lesion[..., 2:6, 2:6] = True
    both = _colours(
        change_panels(
            frames, tmp_path / "b.png", sources=sources, edit_masks=region, lesion_masks=lesion
        )
    )
    assert both["cyan"] > 20 and both["yellow"] > 10
    # the lesion (rows and columns 2-5 of 16) outlined at the top left of its panel, not
    # mirrored: the panel is the right quarter across and spans 0.2-1.35 of 1.85 inches down
    rgb = np.asarray(Image.open(tmp_path / "b.png").convert("RGB")).astype(int)
    yellow = (rgb[..., 0] > 200) & (rgb[..., 1] > 200) & (rgb[..., 2] < 90)
    rows, cols = np.nonzero(yellow)
    height, width = yellow.shape
    panel_top, panel_side = 0.2 / 1.85 * height, 1.15 / 1.85 * height
    assert 1 / 16 < (rows.mean() - panel_top) / panel_side < 7 / 16
    panel_left = width * (3 * 1.25 + 0.05) / 5.0
    assert 1 / 16 < (cols.mean() - panel_left) / panel_side < 7 / 16
    # a search that fell back to the whole image (all ones) outlines nothing
    whole = _colours(change_panels(frames, tmp_path / "c.png", edit_masks=torch.ones(1, 1, 16, 16)))
    assert whole["cyan"] == 0
    # no change at all: a black panel, not a division by zero
    still = _colours(change_panels(-torch.ones(1, 2, 1, 16, 16), tmp_path / "d.png"))
    assert still["orange"] == 0 and still["black"] > 1000
    # a NaN pixel (a half-precision VAE's overflow) does not blank the page's scale
    frames[0, -1, 0, 12, 12] = float("nan")
    nan = _colours(change_panels(frames, tmp_path / "e.png", sources=sources))
    assert nan["orange"] > 0.4 * nan["black"]


def test_change_panels_check_their_shapes(tmp_path):
    from cfx.viz import change_panels

    frames = torch.zeros(2, 3, 1, 8, 8)
    with pytest.raises(ValueError, match=r"`frames` must have shape \(B, T\+1, C, H, W\)"):
        change_panels(frames[0], tmp_path / "a.png")
    with pytest.raises(ValueError, match=r"`edit_masks` must have shape \(2, 1, 8, 8\)"):
        change_panels(frames, tmp_path / "a.png", edit_masks=torch.ones(2, 8, 8))
    with pytest.raises(ValueError, match=r"`lesion_masks` must have shape \(2, 1, 8, 8\)"):
        change_panels(frames, tmp_path / "a.png", lesion_masks=torch.ones(1, 1, 8, 8))
    with pytest.raises(ValueError, match="`row_names` must name the 2 rows"):
        change_panels(frames, tmp_path / "a.png", row_names=["one"])


def test_probability_curves_name_the_target_and_the_models(tmp_path, monkeypatch):
    import cfx.viz

    drawn = kept_figures(monkeypatch, cfx.viz.trajectory)
    probs, levels = torch.tensor([[0.1, 0.5, 0.9]]), torch.tensor([0.0, 0.5, 1.0])
    cfx.viz.probability_curves(probs, levels, tmp_path / "a.png", oracle_probs=probs)
    ax = drawn["ax"]
    assert ax.get_ylabel() == "target probability"
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"classifier", "oracle", "t/T"}
    cfx.viz.probability_curves(
        probs,
        levels,
        tmp_path / "b.png",
        oracle_probs=probs,
        target_name="healthy",
        model_names=("brain-cnn", "brain-oracle"),
    )
    ax = drawn["ax"]
    assert ax.get_ylabel() == "P(healthy)"
    # three frames: ticks at whole frames only (matplotlib put them at 0, 0.25, ..., 2)
    ticks = [t for t in ax.get_xticks() if 0 <= t <= 2]
    assert ticks == [0.0, 1.0, 2.0]
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {
        "brain-cnn",
        "brain-oracle",
        "t/T",
    }


def test_probability_curves_give_each_of_a_few_paths_its_colour_and_name(tmp_path, monkeypatch):
    """The curves were one colour per model: which oracle curve belonged to which path, and
    which path to which row of the strip, could not be told."""
    from matplotlib.colors import to_rgba

    import cfx.viz

    drawn = kept_figures(monkeypatch, cfx.viz.trajectory)
    probs = torch.tensor([[0.1, 0.5, 0.9], [0.2, 0.4, 0.8], [0.0, 0.6, 0.7]])
    oracle = probs / 2
    levels = torch.tensor([0.0, 0.5, 1.0])
    cfx.viz.probability_curves(
        probs, levels, tmp_path / "a.png", oracle_probs=oracle, row_names=["a.png", "b.png", "c"]
    )
    ax = drawn["ax"]
    drawn_lines = [line for line in ax.get_lines() if len(line.get_xdata())]
    # per path: the classifier's line, then the oracle's, in one colour, solid then dotted
    for i in range(3):
        mine, its_oracle = drawn_lines[2 * i], drawn_lines[2 * i + 1]
        assert list(mine.get_ydata()) == pytest.approx(probs[i].tolist())
        assert list(its_oracle.get_ydata()) == pytest.approx(oracle[i].tolist())
        assert to_rgba(mine.get_color()) == to_rgba(its_oracle.get_color())
        assert (mine.get_linestyle(), its_oracle.get_linestyle()) == ("-", ":")
    colours = {to_rgba(drawn_lines[2 * i].get_color()) for i in range(3)}
    assert len(colours) == 3
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts == ["a.png", "b.png", "c", "classifier", "oracle", "t/T"]
    # rows counted from 0, as the warnings and sequence_000.gif count them (it said row 1..3)
    cfx.viz.probability_curves(probs, levels, tmp_path / "b.png")
    assert [t.get_text() for t in drawn["ax"].get_legend().get_texts()][:3] == [
        "row 0",
        "row 1",
        "row 2",
    ]
    many = torch.rand(11, 3, generator=torch.Generator().manual_seed(0))
    cfx.viz.probability_curves(many, levels, tmp_path / "c.png", oracle_probs=many)
    # eleven paths: one colour per model, no names
    assert {t.get_text() for t in drawn["ax"].get_legend().get_texts()} == {
        "classifier",
        "oracle",
        "t/T",
    }
    with pytest.raises(ValueError, match="`row_names` must name the 3 rows"):
        cfx.viz.probability_curves(probs, levels, tmp_path / "d.png", row_names=["a"])


def test_change_panels_carry_a_colour_bar_up_to_the_largest_change(tmp_path, monkeypatch):
    import cfx.viz

    drawn = kept_figures(monkeypatch, cfx.viz.trajectory)
    frames = torch.zeros(2, 3, 1, 8, 8)
    frames[1, -1, 0, 2, 2] = 0.75
    cfx.viz.change_panels(frames, tmp_path / "a.png")
    bars = [ax for ax in drawn["fig"].axes if ax.get_label() == "colour bar"]
    assert len(bars) == 1
    assert bars[0].get_xlim() == pytest.approx((0.0, 0.75))
    # below the change column: its panels' extents are inches from the figure's top left
    fig = drawn["fig"]
    width, height = fig.get_size_inches()
    changes = [im for im in fig.axes[0].get_images() if im.get_cmap().name == "magma"]
    left, right, bottom, _ = changes[-1].get_extent()  # the last row's change panel
    assert len(changes) == 2
    assert bars[0].get_position().x0 == pytest.approx(left / width)
    # under the change panel, 0.15 inch short of the figure's edge (its last tick label was
    # cut off at the edge)
    assert bars[0].get_position().x1 < right / width
    assert (1 - bars[0].get_position().x1) * width >= 0.15 - 1e-9
    assert bars[0].get_position().y1 < 1 - bottom / height
    cfx.viz.change_panels(torch.zeros(1, 2, 1, 8, 8), tmp_path / "b.png")  # nothing changed
    assert not [ax for ax in drawn["fig"].axes if ax.get_label() == "colour bar"]


def test_a_result_given_for_its_frames_is_named(tmp_path):
    """trajectory_gif(res, ...) failed inside with "'TrajectoryResult' object has no
    attribute 'shape'"."""
    from types import SimpleNamespace

    from cfx.viz import change_panels

    res = SimpleNamespace(frames=torch.zeros(1, 2, 1, 4, 4))
    with pytest.raises(
        TypeError, match=r"\(e\.g\. res\.frames\[i\]\), got SimpleNamespace: pass one of its"
    ):
        trajectory_gif(res, tmp_path / "a.gif")
    with pytest.raises(TypeError, match=r"`frames` must be a tensor .*pass one of its tensors"):
        change_panels(res, tmp_path / "a.png")
    with pytest.raises(TypeError, match=r"`probs` must be a tensor .*got list$"):
        trajectory_strip(res.frames, [[0.1, 0.9]], tmp_path / "a.png")


def test_half_precision_frames_draw_the_same_figures_as_float32(tmp_path):
    """bfloat16 frames (a VAE run in half precision) failed in numpy with "unsupported
    ScalarType BFloat16"; values exact in bfloat16 must give the float32 picture."""
    from cfx.viz import change_panels, probability_curves, saliency_grid

    frames = -torch.ones(2, 3, 1, 8, 8)
    frames[:, -1, :, :4] = 0.5
    probs = torch.tensor([[0.125, 0.5, 0.875], [0.25, 0.5, 0.75]])
    levels = torch.tensor([0.0, 0.5, 1.0])
    masks = torch.zeros(2, 1, 8, 8, dtype=torch.bool)
    for half in (False, True):
        f, p = (frames.bfloat16(), probs.bfloat16()) if half else (frames, probs)
        trajectory_strip(f, p, tmp_path / f"s{half}.png", oracle_probs=p, sources=f[:, 0])
        change_panels(f, tmp_path / f"c{half}.png")
        probability_curves(p, levels, tmp_path / f"p{half}.png", oracle_probs=p)
        saliency_grid(f[:, 0], masks, f[:, -1][None], ["m"], tmp_path / f"g{half}.png")
    for name in "scpg":
        same = np.asarray(Image.open(tmp_path / f"{name}True.png"))
        assert np.array_equal(same, np.asarray(Image.open(tmp_path / f"{name}False.png"))), name


def test_nothing_to_draw_is_named(tmp_path):
    from cfx.viz import change_panels, probability_curves

    frames, probs = torch.zeros(0, 3, 1, 8, 8), torch.zeros(0, 3)
    with pytest.raises(ValueError, match=r"`frames` holds no sequences \(shape \(0, 3, 1, 8, 8\)"):
        trajectory_strip(frames, probs, tmp_path / "a.png")
    with pytest.raises(ValueError, match="`frames` holds no sequences"):
        change_panels(frames, tmp_path / "a.png")
    with pytest.raises(ValueError, match=r"`frames\[0\]` holds no frames"):
        change_panels(torch.zeros(2, 0, 1, 8, 8), tmp_path / "a.png")
    with pytest.raises(ValueError, match="`probs` holds no sequences"):
        probability_curves(probs, torch.zeros(3), tmp_path / "a.png")
    with pytest.raises(ValueError, match="`frames` holds no frames"):
        trajectory_gif(torch.zeros(0, 1, 8, 8), tmp_path / "a.gif")


def test_labelled_frames_title_frames_with_labels_and_show_the_change(tmp_path, monkeypatch):
    import cfx.viz

    drawn = kept_figures(monkeypatch, cfx.viz.augment)
    images = -torch.ones(6, 1, 8, 8)  # three paths of two frames
    images[1, 0, 2:4, 2:4] = 1.0  # path 0's second frame: a bright square (summed change 2)
    labels = torch.tensor([0, 1, 0, 0, 1, 1])
    cfx.viz.labelled_frames(
        images, labels, tmp_path / "a.png", per_path=2, class_names=["healthy", "tumour"],
        levels=(0.4, 0.6), rows=2,
    )  # fmt: skip

    # one axes: its images in drawing order (row by row), its texts the titles in order
    def images_of():
        return drawn["fig"].axes[0].get_images()

    def texts_of():
        return [t.get_text() for t in drawn["fig"].axes[0].texts]

    assert len(images_of()) == 2 * 3  # two rows drawn (rows=2): two frames and the change each
    titles = texts_of()
    assert titles[:3] == [
        "p(target) ~ 0.4\nlabel: healthy",
        "p(target) ~ 0.6\nlabel: tumour",
        "change (max 2.00)",
    ]
    assert titles[3:] == ["label: healthy", "label: healthy"]  # the change is headed once
    change = images_of()[2].get_array()
    assert float(change[2, 2]) == 2.0 and float(change[0, 0]) == 0.0
    unsure = torch.tensor([-1, 1, 0, 0, 1, 1])  # the first frame could not be called
    cfx.viz.labelled_frames(images, unsure, tmp_path / "u.png", per_path=2, class_names=["h", "t"])
    assert texts_of()[0] == "label: unsure"  # not the last class's name
    # 5 labels in paths of 2: the last path was cut short, and was left out (3 labels spent,
    # 2 drawn; 1 label, no figure: session 44 audit); it is drawn as far as it goes
    cut = images[:5].clone()
    cut[4] = 1.0  # the lone frame is white: it, not the padding, must be on the figure
    cfx.viz.labelled_frames(cut, labels[:5], tmp_path / "c.png", per_path=2)
    assert len(images_of()) == 3 + 3 + 1  # nothing drawn after the lone frame
    assert texts_of()[-2:] == ["label: class 1", "(budget spent)"]
    assert float(images_of()[-1].get_array().min()) == 1.0
    assert images_of()[2].get_clim()[1] == pytest.approx(2.0 / 0.8)  # whole paths
    cfx.viz.labelled_frames(images[:1], labels[:1], tmp_path / "d.png", per_path=8)
    assert texts_of() == ["label: class 0", "(budget spent)"]
    with pytest.raises(ValueError, match=r"class indices, or -1 \(unsure\), got -2"):
        cfx.viz.labelled_frames(images, labels - 2, tmp_path / "b.png", per_path=2)
    with pytest.raises(ValueError, match="`class_names` must name every label: 1 names, label 1"):
        cfx.viz.labelled_frames(images, labels, tmp_path / "b.png", per_path=2, class_names=["a"])
    with pytest.raises(ValueError, match=r"`labels` must have shape \(6,\)"):
        cfx.viz.labelled_frames(images, labels[:3], tmp_path / "b.png", per_path=2)


def test_a_strip_says_what_its_titles_are(tmp_path, monkeypatch):
    """The titles read "f=0.10" / "o=0.20" with no word of which model or class: the caption
    above the rows names both, as the probability plot's axis and legend do."""
    import cfx.viz.trajectory as module

    drawn = kept_figures(monkeypatch, module)
    frames, probs = -torch.ones(1, 2, 1, 8, 8), torch.tensor([[0.1, 0.9]])
    trajectory_strip(frames, probs, tmp_path / "a.png")
    assert drawn["fig"]._suptitle.get_text() == "f: classifier's target probability"
    trajectory_strip(
        frames,
        probs,
        tmp_path / "b.png",
        oracle_probs=probs,
        target_name="healthy",
        model_names=("brain-cnn", "brain-oracle"),
    )
    assert drawn["fig"]._suptitle.get_text() == (
        "f: brain-cnn's P(healthy), o: brain-oracle's P(healthy)"
    )


def test_image_preview_draws_grey_and_colour_and_names_its_mistakes(tmp_path):
    from cfx.viz import image_preview

    colour = torch.zeros(2, 3, 8, 8)
    colour[:, 0] = 1.0  # red where cfx reads [-1, 1]
    out = image_preview(colour, tmp_path / "c.png", titles=["a", "b"])
    pixels = np.asarray(Image.open(out).convert("RGB")).reshape(-1, 3).astype(int)
    assert ((pixels[:, 0] > 200) & (pixels[:, 1] < 160) & (pixels[:, 2] < 160)).any()  # red
    grey = torch.zeros(3, 1, 8, 8)
    masks = torch.zeros(3, 1, 8, 8, dtype=torch.bool)
    masks[0, 0, 2:5, 2:5] = True
    assert image_preview(grey, tmp_path / "g.png", masks=masks).is_file()
    with pytest.raises(ValueError, match=r"`titles` must have one title per image \(3\), got 1"):
        image_preview(grey, tmp_path / "x.png", titles=["a"])
    with pytest.raises(ValueError, match=r"`images` must have 1 or 3 channels, got 2"):
        image_preview(torch.zeros(1, 2, 8, 8), tmp_path / "x.png")


def test_a_result_passed_whole_to_the_figures_says_which_tensors_to_pass(tmp_path):
    """`trajectory_strip(res, "s.png")` failed on a missing `path`, naming no fix (session 45
    API audit)."""
    from types import SimpleNamespace

    from cfx.viz import probability_curves

    res = SimpleNamespace(frames=torch.zeros(1, 3, 1, 4, 4), probs=torch.zeros(1, 3))
    with pytest.raises(TypeError, match=r"not the result: trajectory_strip\(res.frames, res.probs"):
        trajectory_strip(res, tmp_path / "s.png")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"not the result: probability_curves\(res.probs, res.lev"):
        probability_curves(res, tmp_path / "p.png")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"`path` is required"):
        trajectory_strip(res.frames, res.probs)


def test_shortcut_examples_refuses_an_empty_choice_of_rows(tmp_path):
    """rows=[] drew a 1032 x 210 figure of empty axes (session 46 audit)."""
    from cfx.viz.shortcuts import shortcut_examples
    from tests.shortcuts.test_audit import _toy_audit

    report, _ = _toy_audit(4.0, 0.0)
    with pytest.raises(ValueError, match="`rows` must name at least one path to draw, got none"):
        shortcut_examples(report, tmp_path / "e.png", rows=[])
    assert not (tmp_path / "e.png").exists()


def test_file_names_with_dollars_and_dots_are_drawn_and_saved_as_written(tmp_path):
    """A `$` pair in a file name was read as mathematics: 'scan$_$.png' failed to parse and
    lost the figure (cfx data preview wrote nothing); 'run.v2' failed as an unknown format;
    Path row names failed in the curves' legend (session-53 audit)."""
    from pathlib import Path

    from cfx.viz import image_preview, probability_curves

    images = torch.zeros(2, 1, 8, 8)
    out = image_preview(images, tmp_path / "p.png", titles=["scan$_$.png", "price $5 to $10"])
    assert out.is_file()
    frames, p = _sequence(1)[None], torch.tensor([[0.2, 0.8]])
    assert trajectory_strip(frames, p, tmp_path / "run.v2") == tmp_path / "run.v2.png"
    probs = torch.tensor([[0.1, 0.5, 0.9], [0.2, 0.6, 0.8]])
    levels = torch.tensor([0.0, 0.5, 1.0])
    names = [Path("a$x$.png"), Path("b.png")]
    assert probability_curves(probs, levels, tmp_path / "c", row_names=names).is_file()


def test_figures_name_nan_integer_and_misshapen_inputs(tmp_path, caplog):
    """NaN frames were drawn white (a valid all-+1 image), one NaN pixel blanked a method's
    whole overlay, uint8 images were washed out, 8 x 8 maps were drawn over a corner of
    16 x 16 images and rows=0 failed inside matplotlib (session-53 audit)."""
    from cfx.viz import attack_figure, image_grid, image_preview, saliency_grid

    images = torch.zeros(2, 1, 16, 16)
    masks = torch.zeros(2, 1, 16, 16, dtype=torch.bool)
    maps = torch.rand(1, 2, 1, 16, 16)
    maps[0, 0, 0, 0, 0] = float("nan")
    with caplog.at_level("WARNING", logger="cfx.viz"):
        saliency_grid(images, masks, maps, ["m"], tmp_path / "g.png")
        image_preview(images.clone().fill_(float("nan")), tmp_path / "n.png")
    said = [r.getMessage() for r in caplog.records]
    assert "`maps` holds 1 NaN or infinite value(s) (rows [0]): drawn as 0" in said
    assert "`images` holds 512 NaN or infinite value(s) (rows [0, 1]): drawn as 0" in said
    with pytest.raises(TypeError, match=r"`images` must be float images in \[-1, 1\], got dtype"):
        image_grid(torch.zeros(2, 1, 8, 8, dtype=torch.uint8), tmp_path / "u.png")
    with pytest.raises(ValueError, match=r"`maps` must have shape \(1, 2, 1, 16, 16\)"):
        saliency_grid(images, masks, torch.rand(1, 2, 1, 8, 8), ["m"], tmp_path / "g.png")
    with pytest.raises(ValueError, match=r"`maps` must have shape \(2, 2, 1, 16, 16\)"):
        saliency_grid(images, masks, maps, ["m", "extra"], tmp_path / "g.png")
    with pytest.raises(ValueError, match=r"`maps` must have shape \(2, 1, 16, 16\)"):
        attack_figure(images, images, maps[0, :, 0], maps[0, :, 0], tmp_path / "a.png")
    with pytest.raises(ValueError, match=r"`rows` must be an int >= 1, got 0"):
        saliency_grid(images, masks, maps, ["m"], tmp_path / "g.png", rows=0)
    with pytest.raises(ValueError, match=r"`columns` must be an int >= 1, got 0"):
        image_grid(images, tmp_path / "z.png", columns=0)


def test_gif_draws_nan_frames_grey_and_says_so(tmp_path, caplog):
    """trajectory_gif turned a NaN frame (a half-precision VAE's overflow) black in silence
    while the PNG figures drew it as 0 and warned (session-53 left-alone item)."""
    frames = torch.full((3, 1, 4, 4), 0.5)  # (GIF merges equal neighbours: keep them apart)
    frames[1] = float("nan")
    frames[2] = -1.0  # a true black frame beside it
    with caplog.at_level("WARNING", logger="cfx.viz"):
        path = trajectory_gif(frames, tmp_path / "n.gif", scale=1)
    said = [r.getMessage() for r in caplog.records]
    assert "`frames` holds 16 NaN or infinite value(s) (rows [1]): drawn as 0" in said
    with Image.open(path) as gif:
        pics = []
        for k in range(gif.n_frames):
            gif.seek(k)
            pics.append(np.asarray(gif.convert("L")))
    assert [int(p.max()) for p in pics] == [191, 128, 0, 128]  # NaN as 0: mid-grey; and back
    with pytest.raises(TypeError, match=r"`frames` must be float images in \[-1, 1\]"):
        trajectory_gif(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), tmp_path / "u.gif")


def test_an_interrupted_figure_leaves_the_earlier_file_whole(tmp_path, monkeypatch):
    """Ctrl-C during cfx data preview left a truncated PNG where the earlier one was
    (session-53 audit): a figure is now written whole or not at all."""
    from pathlib import Path

    from matplotlib.figure import Figure

    from cfx.viz import image_preview

    out = image_preview(torch.zeros(2, 1, 8, 8), tmp_path / "p.png")
    before = out.read_bytes()

    def cut_short(self, target, *args, **kwargs):  # half a file, then Ctrl-C
        if hasattr(target, "write"):
            target.write(before[:20])
        else:
            Path(target).write_bytes(before[:20])
        raise KeyboardInterrupt

    monkeypatch.setattr(Figure, "savefig", cut_short)
    with pytest.raises(KeyboardInterrupt):
        image_preview(torch.ones(2, 1, 8, 8), tmp_path / "p.png")
    assert out.read_bytes() == before


def test_pixel_scale_frames_are_refused_not_drawn_white(tmp_path):
    """[0, 255] frames were clamped and drawn nearly white (mean grey 246 for 94; session-55
    audit); a generator's overshoot to 1.8 is still drawn."""
    frames = _sequence(1)
    with pytest.raises(ValueError, match=r"`frames` must be images in \[-1, 1\] .* / 255\)"):
        trajectory_gif((frames + 1) * 127.5, tmp_path / "s.gif")
    assert trajectory_gif(frames * 1.8, tmp_path / "t.gif").is_file()
    assert not (tmp_path / "s.gif").exists()


def test_gif_scale_and_frame_time_are_checked():
    """scale=0 gave PIL's "height and width must be > 0", scale=2.5 a TypeError about floats,
    ms=-5 was taken (session-55 audit)."""
    frames = _sequence(1)
    for kwargs, error in (({"scale": 0}, ValueError), ({"scale": 2.5}, TypeError)):
        with pytest.raises(error, match="`scale` must be an int >= 1"):
            trajectory_gif(frames, "unused.gif", **kwargs)
    with pytest.raises(ValueError, match="`ms` must be an int >= 1, got -5"):
        trajectory_gif(frames, "unused.gif", ms=-5)


def test_labels_that_are_no_class_and_a_string_of_row_names_are_named(tmp_path):
    """A probability of 0.5 for a label was drawn as class 0, a brain label 2 as healthy, and
    the string "ab" named two rows "a" and "b" (session 57; an earlier audit's left-alone
    item). Nothing is written."""
    from cfx.viz import brain_preview, labelled_frames, saliency_grid

    x = torch.zeros(2, 1, 8, 8)
    no_tags = torch.zeros(2, dtype=torch.bool)
    wanted = r"`labels` must be 0 \(healthy\) or 1 \(tumour\), got "
    with pytest.raises(ValueError, match=wanted + "0.5"):
        brain_preview(x, torch.tensor([1.0, 0.5]), x.bool(), no_tags, tmp_path / "p.png")
    with pytest.raises(ValueError, match=wanted + "2"):
        brain_preview(x, torch.tensor([0, 2]), x.bool(), no_tags, tmp_path / "p.png")
    with pytest.raises(ValueError, match=r"class indices, or -1 \(unsure\), got 0.5"):
        labelled_frames(x, torch.tensor([1.0, 0.5]), tmp_path / "p.png", per_path=2)
    with pytest.raises(TypeError, match="`row_names` must be a list of names, one per row, got "
                       "the string 'ab'"):  # fmt: skip
        saliency_grid(x, x.bool(), x[None], ["m"], tmp_path / "p.png", row_names="ab")
    assert not (tmp_path / "p.png").exists()
    # the labels it takes: bool, int and whole floats
    for labels in (torch.tensor([True, False]), torch.tensor([1, 0]), torch.tensor([1.0, 0.0])):
        assert brain_preview(x, labels, x.bool(), no_tags, tmp_path / "p.png").is_file()


def test_a_figure_checks_its_path_before_drawing(tmp_path, monkeypatch):
    """A path that is no path failed only when the figure was saved, after the drawing (a
    strip page of 16 sequences: seconds); now before any figure is made."""
    import matplotlib.figure

    from cfx.viz import change_panels, probability_curves, saliency_grid

    def no_drawing(*args, **kwargs):
        raise AssertionError("a figure was made before the path was checked")

    monkeypatch.setattr(matplotlib.figure.Figure, "__init__", no_drawing)
    frames, probs = torch.zeros(1, 2, 1, 8, 8), torch.tensor([[0.1, 0.9]])
    masks = torch.zeros(1, 1, 8, 8, dtype=torch.bool)
    calls = [
        lambda: trajectory_strip(frames, probs, 5),
        lambda: change_panels(frames, path=5),
        lambda: probability_curves(probs, torch.tensor([0.0, 1.0]), 5),
        lambda: saliency_grid(frames[:, 0], masks, frames[None, :, 0], ["m"], 5),
    ]
    for call in calls:
        with pytest.raises(TypeError, match=r"^`path` must be a path \(str or Path\), got int$"):
            call()
    with pytest.raises(AssertionError, match="a figure was made"):  # the check stands
        trajectory_strip(frames, probs, tmp_path / "a.png")
    # the GIF and the plain grid draw with PIL: their pictures are made after the check too
    import cfx.viz.data
    import cfx.viz.trajectory
    from cfx.viz import image_grid

    for module in (cfx.viz.data, cfx.viz.trajectory):
        monkeypatch.setattr(module, "_picture_bytes", no_drawing)
    for call in (lambda: trajectory_gif(frames[0], 5), lambda: image_grid(frames[0], 5)):
        with pytest.raises(TypeError, match=r"^`path` must be a path \(str or Path\), got int$"):
            call()


def test_panels_keep_the_images_shape_and_long_row_names_are_shortened(tmp_path, monkeypatch):
    """The one-axes figures drew every panel square: a 16 x 32 image was stretched to twice
    its height (session 58's review); a long file name ran into the next row's."""
    import cfx.viz.trajectory as module

    drawn = kept_figures(monkeypatch, module)
    frames = torch.zeros(1, 2, 1, 16, 32)  # wide images
    name = "BraTS2021_00012_slice_078_flair_registered_to_mni.png"
    trajectory_strip(frames, torch.tensor([[0.1, 0.9]]), tmp_path / "a.png", row_names=[name])
    for shown in drawn["fig"].axes[0].get_images():
        left, right, bottom, top = shown.get_extent()
        assert (right - left) == pytest.approx(2 * (bottom - top))  # inches: 2 across, 1 down
    texts = [t.get_text() for t in drawn["fig"].axes[0].texts if t.get_rotation() == 90]
    assert len(texts) == 1 and "…" in texts[0] and len(texts[0]) < len(name)
    assert texts[0].startswith("BraTS") and texts[0].endswith("mni.png")  # both ends kept
    region = torch.zeros(1, 1, 16, 32)
    region[..., 4:12, 8:24] = 1.0
    module.change_panels(frames, tmp_path / "b.png", edit_masks=region)
    panel = drawn["fig"].axes[0].get_images()[-1].get_extent()  # the change panel
    (outline,) = drawn["fig"].axes[0].collections  # the region's contour, inside the panel
    box = outline.get_paths()[0].get_extents()
    # the region is the middle half across and the middle half down of the wide panel
    assert box.x0 == pytest.approx(panel[0] + 0.25 * (panel[1] - panel[0]), abs=0.03)
    assert box.y0 == pytest.approx(panel[3] + 0.25 * (panel[2] - panel[3]), abs=0.03)
    # at the top of its square, under its title: the square's top is the heads' baseline
    heads = [t for t in drawn["fig"].axes[0].texts if t.get_text() == "frame 0"]
    assert panel[3] == pytest.approx(heads[0].get_position()[1] + 0.03)


def test_a_preview_keeps_wide_images_wide_and_shortens_long_titles(tmp_path, monkeypatch):
    """tight_layout shrank every image to make room for a long file-name title; on the
    sheet a title loses its middle instead, and a wide scan keeps its shape."""
    import cfx.viz.data as module

    drawn = kept_figures(monkeypatch, module)
    name = "a_very_long_scan_file_name_000123_flair.png, label 1"
    module.image_preview(torch.zeros(2, 1, 8, 16), tmp_path / "p.png", titles=[name, "b"])
    texts = [t.get_text() for t in drawn["fig"].axes[0].texts]
    assert texts[1] == "b" and "…" in texts[0] and texts[0].endswith(", label 1")
    for shown in drawn["fig"].axes[0].get_images():
        left, right, bottom, top = shown.get_extent()
        assert (right - left) == pytest.approx(2 * (bottom - top))
