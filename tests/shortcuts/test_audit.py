"""The shortcut audit on a toy world with known answers and on the real brain generator."""

import math

import pytest
import torch
from torch import nn

from cfx.data.brain import MARKER_BOX, make_dataset, marker_mask
from cfx.shortcuts import ShortcutAudit, ShortcutReport
from cfx.shortcuts.audit import CROSSING_MARGIN
from cfx.trajectory import GradientAscent, TrajectoryResult

# --- a toy world: 8x8 images, latent 0 paints the marker, 1 the lesion, 2 the rest ------------

H = W = 8
MARKER = torch.zeros(1, 1, H, W, dtype=torch.bool)
MARKER[..., 0:2, 6:8] = True  # 4 px
LESION = torch.zeros(1, 1, H, W, dtype=torch.bool)
LESION[..., 4:7, 1:4] = True  # 9 px


class PatchGenerator(nn.Module):
    """G(z) = -0.5 + z_0 * [marker] + z_1 * [lesion] + z_2 * [rest], so a move of latent k
    changes exactly its own pixels."""

    def __init__(self) -> None:
        super().__init__()
        rest = ~(MARKER | LESION)
        basis = torch.cat([MARKER, LESION, rest]).float().view(3, H * W)
        self.basis = nn.Parameter(basis)

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return (3,)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return (-0.5 + z @ self.basis).view(-1, 1, H, W)


class RegionClassifier(nn.Module):
    """log-odds of class 1 = a * mean(marker pixels) + b * mean(lesion pixels) + 0.5."""

    def __init__(self, a: float, b: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.tensor([a, b]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = x[:, 0][:, MARKER[0, 0]].mean(1)
        les = x[:, 0][:, LESION[0, 0]].mean(1)
        s = self.weight[0] * m + self.weight[1] * les + 0.5
        return torch.stack([torch.zeros_like(s), s], 1)


def _toy_audit(a: float, b: float, **kwargs) -> tuple[ShortcutReport, RegionClassifier]:
    g, f = PatchGenerator(), RegionClassifier(a, b)
    z0 = torch.tensor([[1.0, 1.0, 0.2], [0.8, 1.2, -0.1], [1.2, 0.9, 0.0]])  # all class 1
    x = g.decode(z0).detach()
    explainer = GradientAscent(g, f, steps=4, eta=0.05, max_iter=400, inversion_steps=0)
    audit = ShortcutAudit(g, f, explainer=explainer, **kwargs)
    lesion = LESION.expand(3, -1, -1, -1).clone()
    present = torch.ones(3, dtype=torch.bool)  # z_0 ~ 1: the marker is painted in
    report = audit.audit(
        x, 0, lesion_masks=lesion, marker_masks=MARKER, marker_present=present, latents=z0
    )
    return report, f


def test_toy_marker_classifier_changes_only_the_marker():
    report, _ = _toy_audit(4.0, 0.0, lesion_dilation=0)
    assert bool(report.counted.all())
    assert torch.allclose(report.change.marker, torch.ones(3), atol=1e-5)
    assert torch.allclose(report.change.lesion, torch.zeros(3), atol=1e-5)
    assert torch.allclose(report.change_enrichment.marker, torch.full((3,), 16.0), atol=1e-3)
    assert torch.allclose(report.saliency.marker, torch.ones(3), atol=1e-6)
    assert torch.allclose(report.area.marker, torch.full((3,), 4 / 64))
    assert bool(report.via_marker.all()) and report.marker_rate == 1.0 and report.flagged
    assert bool((report.marker_delta < 0).all())  # darkened: the marker is removed
    assert report.verdict.startswith(
        "flips by removing the scanner marker in 100% of paths from tumour images with the "
        "marker (3 of 3; restoring the marker region undoes the flip of 3 of the 3)"
    )
    assert bool((report.restored_probs < 0.5).all())  # putting the marker back undoes it
    assert report.summary()["marker_undo_rate"] == 1.0


def test_marker_delta_is_the_mean_signed_change_inside_the_marker():
    # the marker toy darkens the 4 marker pixels alone, by one latent step each: the mean
    # signed change over those pixels, not over all 64 (which would be 4/64 of it)
    report, _ = _toy_audit(4.0, 0.0, lesion_dilation=0)
    frames = report.paths.frames
    inside = (frames[:, -1] - frames[:, 0])[:, 0][:, MARKER[0, 0]]  # (3, 4)
    assert torch.allclose(report.marker_delta, inside.mean(1), atol=1e-6)
    assert bool((inside.std(1) < 1e-6).all())  # one latent moves all four alike


def test_toy_lesion_classifier_changes_only_the_lesion():
    report, _ = _toy_audit(0.0, 4.0, lesion_dilation=0)
    assert torch.allclose(report.change.lesion, torch.ones(3), atol=1e-5)
    assert torch.allclose(report.change.marker, torch.zeros(3), atol=1e-5)
    assert torch.allclose(report.saliency.lesion, torch.ones(3), atol=1e-6)
    assert not bool(report.via_marker.any()) and report.marker_rate == 0.0
    assert not report.flagged
    assert report.verdict.startswith("no shortcut found")
    assert bool((report.restored_probs > 0.5).all())


def test_toy_mixed_classifier_splits_the_change_in_closed_form():
    # equal weights on the two means: the latent path moves z_0 and z_1 equally, so the
    # change is |dz| on 4 marker and 9 lesion pixels: shares 4/13 and 9/13
    report, _ = _toy_audit(3.0, 3.0, lesion_dilation=0)
    assert torch.allclose(report.change.marker, torch.full((3,), 4 / 13), atol=1e-4)
    assert torch.allclose(report.change.lesion, torch.full((3,), 9 / 13), atol=1e-4)
    assert torch.allclose(report.change_enrichment.marker, torch.full((3,), 64 / 13), atol=1e-3)
    # the lesion holds more of the change, but the marker is 4.9x enriched (>= 4): the
    # classifier weighs a marker pixel as much as a lesion pixel, so these paths go via it
    assert bool(report.via_marker.all()) and report.flagged
    # the bar is on enrichment alone: just above 64/13 it clears them
    assert not bool(_toy_audit(3.0, 3.0, lesion_dilation=0, min_enrichment=5.0)[0].via_marker.any())


class ScriptedPaths:
    """A path explainer whose paths are given: a straight latent line from each ``z_0`` to a
    chosen end, so every path's change, flip and restoration is known in advance."""

    def __init__(self, generator: PatchGenerator, classifier: nn.Module, ends: torch.Tensor):
        self.generator, self.classifier, self.ends = generator, classifier, ends

    def explain(self, x, target, *, latents=None):
        t = torch.linspace(0, 1, 3)[None, :, None]  # (1, T+1, 1)
        z = latents[:, None] + t * (self.ends - latents)[:, None]  # (B, T+1, 3)
        with torch.no_grad():
            frames = self.generator.decode(z.flatten(0, 1)).view(len(x), 3, 1, H, W)
            every = self.classifier(frames.flatten(0, 1)).softmax(1).view(len(x), 3, -1)
        probs = every.gather(2, target[:, None, None].expand(-1, 3, 1))[..., 0]  # (B, T+1)
        return TrajectoryResult(
            frames=frames,
            latents=z,
            probs=probs,
            levels=torch.linspace(0, 1, 3),
            target=target,
            source=x,
            in_target=every.argmax(2) == target[:, None],  # (B, T+1)
            oracle_probs=None,
            lambdas=None,
            seconds=0.0,
            inversion_seconds=0.0,
        )


def _scripted_report(rows: list, marker: torch.Tensor = MARKER, **settings) -> ShortcutReport:
    """The audit of scripted paths on the toy world (tumour log-odds 4 z_0 + 4 z_1 - 3.5):
    ``rows`` of (source latent, end latent, target class); a source carries the marker when
    z_0 > 0.5 and a lesion when z_1 > 0.25; ``settings`` go to :class:`ShortcutAudit`."""
    z0 = torch.tensor([r[0] for r in rows])
    ends = torch.tensor([r[1] for r in rows])
    target = torch.tensor([r[2] for r in rows])
    present = z0[:, 0] > 0.5
    lesion = LESION.repeat(len(rows), 1, 1, 1) & (z0[:, 1] > 0.25)[:, None, None, None]
    g, f = PatchGenerator(), RegionClassifier(4.0, 4.0)
    audit = ShortcutAudit(g, f, explainer=ScriptedPaths(g, f, ends), lesion_dilation=0, **settings)
    return audit.audit(
        g.decode(z0).detach(),
        target,
        lesion_masks=lesion,
        marker_masks=marker,
        marker_present=present,
        latents=z0,
    )


def test_cells_break_the_marker_rate_down_by_source_with_known_answers():
    # tumour log-odds 4 z_0 + 4 z_1 - 3.5 (z_0 paints the marker, z_1 the lesion): a slice is
    # tumour when z_0 + z_1 > 0.875. Each row: source latent -> end latent, target class.
    rows = [
        # tumour with the marker -> healthy
        ((1.0, 0.5, 0.0), (0.0, 0.5, 0.0), 0),  # removes the marker only: via, undone
        ((1.0, 0.5, 0.0), (0.5, 0.0, 0.0), 0),  # removes both: marker 4.9x enriched, undone
        ((1.0, 0.5, 0.0), (1.0, -0.5, 0.0), 0),  # removes the lesion only: neither
        # tumour without the marker -> healthy: only the lesion can go
        ((0.0, 1.5, 0.0), (0.0, 0.5, 0.0), 0),
        ((0.0, 1.4, 0.2), (0.0, 0.4, 0.2), 0),
        ((0.0, 1.3, -0.2), (0.0, 0.3, -0.2), 0),
        # healthy without the marker -> tumour (2 paths: too few to flag on their own)
        ((0.0, 0.0, 0.0), (0.0, 1.0, 0.0), 1),  # paints a lesion
        ((0.0, 0.0, 0.0), (1.0, 0.0, 0.0), 1),  # paints the marker: via, undone
        # healthy with the marker: the classifier already calls it tumour, not counted
        ((1.0, 0.0, 0.0), (1.0, 0.0, 0.0), 1),
    ]
    report = _scripted_report(rows)
    assert report.counted.tolist() == [True] * 8 + [False]
    # removing both: the lesion holds 9/13 of the change (more than the marker's 4/13), but
    # the marker is 64/13 = 4.9x enriched and restoring it alone undoes the flip
    assert report.change.lesion[1] > report.change.marker[1]
    assert float(report.change_enrichment.marker[1]) == pytest.approx(64 / 13, rel=1e-4)
    assert report.via_marker.tolist() == [True, True] + [False] * 5 + [True, False]
    assert report.undone[report.counted].tolist() == [True, True] + [False] * 5 + [True]

    cells = {(c.target, c.marker_present): c for c in report.cells()}
    assert list(cells) == [(0, True), (0, False), (1, True), (1, False)]
    known = {  # n_paths, n_counted, n_via_marker, n_undone, flagged
        (0, True): (3, 3, 2, 2, True),
        (0, False): (3, 3, 0, 0, False),
        (1, True): (1, 0, 0, 0, False),
        (1, False): (2, 2, 1, 1, False),  # 50% but under min_paths
    }
    for key, (n, counted, via, undone, flagged) in known.items():
        c = cells[key]
        assert (c.n_paths, c.n_counted, c.n_via_marker, c.n_undone, c.flagged) == (
            n,
            counted,
            via,
            undone,
            flagged,
        ), key
    assert cells[(0, True)].via_rate == pytest.approx(2 / 3)
    assert cells[(0, True)].source == "tumour images with the marker"
    assert cells[(1, False)].source == "healthy images without the marker"
    assert math.isnan(cells[(1, True)].via_rate)
    assert cells[(0, False)].median_marker_enrichment == 0.0
    assert report.flagged and report.marker_rate == pytest.approx(3 / 8)
    assert report.verdict == (
        "flips by removing the scanner marker in 67% of paths from tumour images with the "
        "marker (2 of 3; restoring the marker region undoes the flip of 2 of the 3); below the "
        "flag rate: 0% of paths from "
        "tumour images without the marker (0 of 3; restoring the marker region undoes the flip of "
        "0 of the 3); "
        "under 3 counted paths: healthy images with the marker (0 of 0; 1 input already in "
        "the target class), healthy images without the marker (1 of 2); pooled: 3 of 8 "
        "counted paths via the marker, 3 undone by restoring it (of the 9 paths, not counted: "
        "1 input already in the target class)"  # every path accounted for (session 45 audit)
    )
    # a stricter bar clears the classifier; per direction, the cells split with the paths
    assert not _scripted_report(rows, flag_rate=0.7).flagged
    into_tumour = report.cells(report.target == 1)
    assert [c.n_paths for c in into_tumour] == [0, 0, 1, 2]
    assert report.describe(report.target == 1).startswith("no verdict: no cell")
    assert report.status() == "flagged"


def test_marked_sources_the_classifier_already_misreads_make_the_verdict_inconclusive():
    """Every marked slice healthy, and the classifier already calls each one tumour: no path
    from them counts, the only judged cell is clean, and the verdict read "no shortcut found"
    for a classifier whose healthy-with-marker accuracy is 0."""
    rows = [
        ((0.0, 1.5, 0.0), (0.0, 0.5, 0.0), 0),  # tumour without the marker -> healthy, lesion
        ((0.0, 1.4, 0.2), (0.0, 0.4, 0.2), 0),
        ((0.0, 1.3, -0.2), (0.0, 0.3, -0.2), 0),
        ((1.0, 0.0, 0.0), (1.0, 0.0, 0.0), 1),  # healthy with the marker, called tumour
        ((1.0, 0.1, 0.0), (1.0, 0.1, 0.0), 1),
        ((1.0, 0.0, 0.1), (1.0, 0.0, 0.1), 1),
        ((1.0, -0.5, 0.0), (1.0, -0.5, 0.0), 1),  # healthy with the marker, stays healthy
    ]
    report = _scripted_report(rows)
    assert not report.flagged
    assert report.verdict == (
        "inconclusive: no shortcut where paths could be judged (0% of paths from tumour images "
        "without the marker (0 of 3; restoring the marker region undoes the flip of 0 of the "
        "3)), but too few counted paths from healthy images with the marker; under 3 counted "
        "paths: healthy images with the marker (0 of 0; 3 inputs already in the target "
        "class, 1 path that did not flip); pooled: 0 of 3 counted paths via the marker, 0 "
        "undone by restoring it (of the 7 paths, not counted: 3 inputs already in the target "
        "class, 1 path that did not flip)"
    )
    assert report.status() == "inconclusive"  # summary.json's, for scripts
    assert report.status(report.target == 0) == "clean"  # that direction alone is judged
    assert report.status(report.target == 1) == "no verdict"


def test_no_marked_image_at_all_is_inconclusive_and_questions_marker_present(caplog):
    """A marker_present of zeros (a wrong or misread --marker-present file) judged only
    unmarked sources and read "no shortcut found" for a shortcut model (a user review): a
    clean verdict needs marked images whose paths were judged."""
    rows = [  # tumour without the marker -> healthy: only the lesion can go
        ((0.0, 1.5, 0.0), (0.0, 0.5, 0.0), 0),
        ((0.0, 1.4, 0.2), (0.0, 0.4, 0.2), 0),
        ((0.0, 1.3, -0.2), (0.0, 0.3, -0.2), 0),
        ((0.0, 0.0, 0.0), (0.0, 1.0, 0.0), 1),  # healthy without the marker -> tumour
    ]
    with caplog.at_level("WARNING", logger="cfx.shortcuts.audit"):
        report = _scripted_report(rows)
    assert "`marker_present` marks none of the 4 images as carrying the scanner marker" in (
        caplog.text
    )
    assert report.verdict == (
        "inconclusive: no shortcut where paths could be judged (0% of paths from tumour images "
        "without the marker (0 of 3; restoring the marker region undoes the flip of 0 of the "
        "3)), but too few counted paths from tumour images with the marker and healthy images "
        "with the marker (none of the 4 images carries the marker: is `marker_present` "
        "right?); under 3 counted paths: healthy images without the marker (0 of 1); pooled: "
        "0 of 4 counted paths via the marker, 0 undone by restoring it"
    )
    assert report.status() == "inconclusive"


def test_flips_the_marker_undoes_flag_the_classifier_below_the_enrichment_bar():
    """Each tumour-with-marker path removes half the marker and all of the lesion: the
    marker's enrichment is 64/13 = 4.9, under a bar of 8, so no path goes via it, but
    restoring the marker (log-odds 4 + 0 - 3.5 > 0) undoes every flip. The verdict read "no
    shortcut found" beside 3 of 3 flips undone (a user audit); the restoring test flags it."""
    rows = [
        ((1.0, 0.5, 0.0), (0.5, 0.0, 0.0), 0),  # tumour with the marker -> healthy
        ((1.0, 0.5, 0.1), (0.5, 0.0, 0.1), 0),
        ((1.0, 0.5, -0.1), (0.5, 0.0, -0.1), 0),
        ((0.0, 1.5, 0.0), (0.0, 0.5, 0.0), 0),  # tumour without the marker: the lesion only
        ((0.0, 1.4, 0.2), (0.0, 0.4, 0.2), 0),
        ((0.0, 1.3, -0.2), (0.0, 0.3, -0.2), 0),
    ]
    report = _scripted_report(rows, min_enrichment=8.0)
    assert report.via_marker.tolist() == [False] * 6
    assert report.undone.tolist() == [True] * 3 + [False] * 3
    marked, unmarked = (c for c in report.cells() if c.target == 0)
    assert (marked.flagged, marked.flagged_by) == (True, ("restoring",))
    assert (unmarked.flagged, unmarked.flagged_by) == (False, ())
    assert report.flagged and report.status() == "flagged"
    assert report.verdict == (
        "flips by removing the scanner marker: restoring its region undoes the flip of 100% of "
        "paths from tumour images with the marker (3 of 3; the change is enriched there in 0 "
        "of the 3); below the flag rate: 0% of paths from tumour images "
        "without the marker (0 of 3; restoring the marker region undoes the flip of 0 of the "
        "3); pooled: 0 of 6 counted paths via the marker, 3 undone by restoring it"
    )
    # at the default bar both tests flag it, and the verdict leads with the change
    both = _scripted_report(rows)
    cell = next(c for c in both.cells() if (c.target, c.marker_present) == (0, True))
    assert cell.flagged_by == ("change", "restoring")
    assert both.verdict.startswith("flips by removing the scanner marker in 100% of paths")


def test_restoring_a_region_drawn_over_the_lesion_does_not_restore_the_lesion():
    """A suspected region that covers the marker box and the lesion: paths that remove only
    the lesion were 'undone' by pasting the region back (the lesion came back with it), and
    the restoring test flagged the marker for the lesion's flips. The lesion claims its
    pixels first, as for the shares: only the rest of the region is restored."""
    rows = [((1.0, 0.5, 0.0), (1.0, -0.5, 0.0), 0)] * 3  # each removes the lesion only
    report = _scripted_report(rows, marker=MARKER | LESION)
    assert report.counted.all() and not report.undone.any()
    assert not report.flagged and report.status() == "clean"
    # the region's own pixels still count: paths removing the marker are undone
    marked = _scripted_report([((1.0, 0.5, 0.0), (0.0, 0.5, 0.0), 0)] * 3, marker=MARKER | LESION)
    assert marked.undone.all() and marked.flagged


def test_a_path_that_does_not_flip_is_neither_counted_nor_undone():
    # Tumour log-odds 4 z_0 + 4 z_1 - 3.5 as above. Rows 0-2 (tumour with the marker ->
    # healthy) all flip: end log-odds 0 + 2 - 3.5, 2 + 0 - 3.5 and 4 - 2 - 3.5 = -1.5. Row 3
    # starts from the same source but ends at (1.0, 0.4): log-odds 4 + 1.6 - 3.5 = 2.1 > 0,
    # still tumour, so it did not flip and is not counted. Restoring the (unchanged) marker
    # leaves it tumour, target probability < 0.5, so it reads as "undone", but it must not
    # enter the cell's n_undone. Cell (healthy, marker): 4 paths, 3 counted, 2 via the marker
    # (rows 0, 1), 2 undone.
    rows = [
        ((1.0, 0.5, 0.0), (0.0, 0.5, 0.0), 0),
        ((1.0, 0.5, 0.0), (0.5, 0.0, 0.0), 0),
        ((1.0, 0.5, 0.0), (1.0, -0.5, 0.0), 0),
        ((1.0, 0.5, 0.0), (1.0, 0.4, 0.0), 0),
    ]
    report = _scripted_report(rows)
    assert report.paths.success.tolist() == [True, True, True, False]
    assert report.counted.tolist() == [True, True, True, False]
    cell = next(c for c in report.cells() if (c.target, c.marker_present) == (0, True))
    assert (cell.n_paths, cell.n_counted, cell.n_via_marker, cell.n_undone) == (4, 3, 2, 2)
    assert cell.via_rate == pytest.approx(2 / 3) and cell.undo_rate == pytest.approx(2 / 3)


def test_lesion_dilation_claims_the_halo():
    report, _ = _toy_audit(3.0, 3.0, lesion_dilation=1)
    # the 3x3 lesion grown by 1 px is 5x5 = 25 px and does not reach the marker
    assert torch.allclose(report.area.lesion, torch.full((3,), 25 / 64))


def test_user_models_unchanged():
    g, f = PatchGenerator(), RegionClassifier(4.0, 0.0)
    g.train()
    f.train()
    g.basis.requires_grad_(True)
    f.weight.requires_grad_(False)
    before = [p.detach().clone() for p in (*g.parameters(), *f.parameters())]
    z0 = torch.tensor([[1.0, 1.0, 0.0]])
    audit = ShortcutAudit(g, f, steps=3)
    present = torch.ones(1, dtype=torch.bool)
    x = g.decode(z0).detach()
    audit.audit(x, 0, lesion_masks=LESION, marker_masks=MARKER, marker_present=present, latents=z0)
    assert g.training and f.training
    assert g.basis.requires_grad and not f.weight.requires_grad
    after = [p.detach() for p in (*g.parameters(), *f.parameters())]
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))


def test_monotone_explainer_by_name():
    g, f = PatchGenerator(), RegionClassifier(4.0, 0.0)
    z0 = torch.tensor([[1.0, 1.0, 0.0], [1.1, 0.9, 0.1]])
    report = ShortcutAudit(g, f, explainer="monotone", steps=3, min_paths=2).audit(
        g.decode(z0).detach(),
        0,
        lesion_masks=LESION.repeat(2, 1, 1, 1),
        marker_masks=MARKER,
        marker_present=torch.ones(2, dtype=torch.bool),
        latents=z0,
    )
    assert report.paths.frames.shape == (2, 4, 1, H, W)
    assert report.flagged


def test_describe_and_summary_by_subset():
    report, _ = _toy_audit(4.0, 0.0)
    first = torch.tensor([True, False, False])
    assert report.summary(first)["n_paths"] == 1.0
    assert report.describe(first) == (
        "no verdict: no cell of source images has 3 counted paths; under 3 counted paths: "
        "tumour images with the marker (1 of 1); pooled: 1 of 1 counted paths via the marker, "
        "1 undone by restoring it"
    )
    assert sum(c.n_paths for c in report.cells(first)) == 1
    assert report.describe(torch.zeros(3, dtype=torch.bool)) == "no verdict: no paths selected"
    with pytest.raises(ValueError, match=r"`where` must be a bool tensor of shape \(3,\)"):
        report.summary(torch.ones(2, dtype=torch.bool))


def test_no_verdict_when_nothing_needs_to_flip():
    g, f = PatchGenerator(), RegionClassifier(4.0, 0.0)
    z0 = torch.tensor([[1.0, 1.0, 0.0]])
    report = ShortcutAudit(g, f, steps=3).audit(
        g.decode(z0).detach(),
        1,
        lesion_masks=LESION,
        marker_masks=MARKER,
        marker_present=torch.ones(1, dtype=torch.bool),
        latents=z0,
    )
    assert not bool(report.counted.any())
    assert math.isnan(report.marker_rate) and not report.flagged
    assert report.verdict == (
        "no verdict: the path starts in the target class (the classifier already puts the input "
        "there)"
    )
    # the input in class 0, its (given) reconstruction in class 1: the verdict said "the
    # classifier already put all 1 inputs in the target class" below a count of 0 such inputs
    moved = ShortcutAudit(g, f, steps=3).audit(
        g.decode(torch.zeros(1, 3)).detach(),
        1,
        lesion_masks=LESION,
        marker_masks=MARKER,
        marker_present=torch.ones(1, dtype=torch.bool),
        latents=z0,
    )
    assert moved.summary()["n_input_in_target"] == 0
    assert moved.verdict == (
        "no verdict: the path starts in the target class (the classifier puts the "
        "reconstruction G(z_0) there, not the input)"
    )
    # three paths: two inputs in class 1 already, one whose reconstruction only is
    x3 = torch.cat([g.decode(z0), g.decode(z0), g.decode(torch.zeros(1, 3))]).detach()
    mixed = ShortcutAudit(g, f, steps=3).audit(
        x3,
        1,
        lesion_masks=LESION.expand(3, -1, -1, -1),
        marker_masks=MARKER,
        marker_present=torch.ones(3, dtype=torch.bool),
        latents=z0.expand(3, -1),
    )
    assert mixed.verdict == (
        "no verdict: all 3 paths start in the target class (2 inputs already there, "
        "1 reconstruction only)"
    )
    # the labels given as the target: most inputs start where their paths should end
    labels_as_target = ShortcutAudit(g, f, steps=3).audit(
        torch.cat([g.decode(z0), g.decode(z0), g.decode(torch.zeros(1, 3))]).detach(),
        1,
        lesion_masks=LESION.expand(3, -1, -1, -1),
        marker_masks=MARKER,
        marker_present=torch.ones(3, dtype=torch.bool),
        latents=torch.cat([z0, z0, torch.zeros(1, 3)]),
    )
    assert int(labels_as_target.counted.sum()) == 1
    assert labels_as_target.verdict.startswith("no verdict: no cell of source images has 3")
    assert labels_as_target.verdict.endswith(
        "; most inputs are already in their target class: `target` is the class each path "
        "walks into (1 - labels walks every image into the other of two classes)"
    )


def test_a_flag_from_mostly_misdirected_paths_says_what_target_is(caplog):
    """The labels passed as the target (a user review): the verdict flagged the few paths
    that counted and said nothing of the rest; the hint came only with "no verdict"."""
    rows = [
        ((1.0, 0.5, 0.0), (0.0, 0.5, 0.0), 0),  # tumour with the marker -> healthy: via it
        ((1.0, 0.5, 0.0), (0.0, 0.5, 0.0), 0),
        ((1.0, 0.5, 0.0), (0.0, 0.5, 0.0), 0),
        *[((0.0, 0.0, 0.0), (0.0, 0.0, 0.0), 0)] * 4,  # healthy walked "into" healthy
    ]
    with caplog.at_level("WARNING", logger="cfx.shortcuts.audit"):
        report = _scripted_report(rows)
    assert "4 of 7 inputs are already in their target class for the classifier" in caplog.text
    assert report.status() == "flagged"
    assert report.verdict.startswith("flips by removing the scanner marker in 100% of paths")
    assert report.verdict.endswith(
        "(of the 7 paths, not counted: 4 inputs already in the target class); most inputs are "
        "already in their target class: `target` is the class each path walks into (1 - "
        "labels walks every image into the other of two classes)"
    )
    caplog.clear()
    with caplog.at_level("WARNING", logger="cfx.shortcuts.audit"):
        fine = _scripted_report(rows[:6])  # 3 of 6: not most
    assert "already in their target class" not in caplog.text
    assert "most inputs" not in fine.verdict


def test_bad_arguments_are_clear_errors():
    g, f = PatchGenerator(), RegionClassifier(4.0, 0.0)
    z0 = torch.tensor([[1.0, 1.0, 0.0]])
    x = g.decode(z0).detach()

    def run(audit, **kw):
        present = torch.ones(1, dtype=torch.bool)
        args = {"lesion_masks": LESION, "marker_masks": MARKER, "latents": z0} | kw
        return audit.audit(x, 0, **({"marker_present": present} | args))

    with pytest.raises(ValueError, match="`explainer` must be 'gradient', 'monotone'"):
        run(ShortcutAudit(g, f, explainer="adam"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`explainer` must be"):
        run(ShortcutAudit(g, f, explainer=object()))  # type: ignore[arg-type]
    other = GradientAscent(g, RegionClassifier(0.0, 1.0))
    with pytest.raises(ValueError, match="`explainer` explains a different classifier"):
        run(ShortcutAudit(g, f, explainer=other))
    with pytest.raises(TypeError, match="`saliency` must be None, a method name or an object"):
        run(ShortcutAudit(g, f, saliency=object()))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"`flag_rate` must be a number in \(0, 1\], got 0"):
        run(ShortcutAudit(g, f, flag_rate=0))
    with pytest.raises(
        ValueError, match="`min_enrichment` must be a positive finite number, got -1"
    ):
        run(ShortcutAudit(g, f, min_enrichment=-1))
    with pytest.raises(ValueError, match="`lesion_dilation` must be an int >= 0"):
        run(ShortcutAudit(g, f, lesion_dilation=-2))
    with pytest.raises(ValueError, match="`min_paths` must be an int >= 1, got 0"):
        run(ShortcutAudit(g, f, min_paths=0))
    with pytest.raises(ValueError, match="`class_names` must be a sequence of at least two"):
        run(ShortcutAudit(g, f, class_names="healthy"))

    class NeverWalks:  # the class names are checked before any path is walked
        classifier = f

        def explain(self, *args, **kwargs):
            raise AssertionError("paths walked before class_names were checked")

    with pytest.raises(ValueError, match="`class_names` must name each of the classifier's 2"):
        run(ShortcutAudit(g, f, explainer=NeverWalks(), class_names=("a", "b", "c")))
    # colour images for a grey generator and classifier: named, not torch's channel error
    colour = x.repeat(1, 3, 1, 1)
    with pytest.raises(ValueError, match=r"`x` must have the generator's image shape .*\(1, 3,"):
        ShortcutAudit(g, f).audit(
            colour,
            0,
            lesion_masks=LESION,
            marker_masks=MARKER,
            marker_present=torch.ones(1, dtype=torch.bool),
        )
    audit = ShortcutAudit(g, f)
    with pytest.raises(ValueError, match=r"`lesion_masks` must have shape \(1, 1, 8, 8\)"):
        run(audit, lesion_masks=torch.zeros(1, 1, 4, 4, dtype=torch.bool))
    with pytest.raises(TypeError, match="`lesion_masks` must be a bool tensor"):
        run(audit, lesion_masks=[[0.0]])
    # 0/1 masks are taken as cfx.metrics takes them (a float mask was refused here only)
    with pytest.raises(ValueError, match="`lesion_masks` must be bool or hold only 0 and 1"):
        run(audit, lesion_masks=torch.full((1, 1, 8, 8), 0.5))
    as_float = run(audit, lesion_masks=LESION.float(), marker_masks=MARKER.long())
    assert as_float.summary() == run(audit).summary()
    with pytest.raises(ValueError, match="`marker_masks` is required for images that are not"):
        run(audit, marker_masks=None)
    with pytest.raises(ValueError, match=r"`marker_masks` must have shape \(1, 1, 8, 8\)"):
        run(audit, marker_masks=torch.zeros(2, 1, 8, 8, dtype=torch.bool))
    with pytest.raises(ValueError, match="`marker_present` is required with `marker_masks`"):
        run(audit, marker_present=None)
    with pytest.raises(TypeError, match="`marker_present` must be a bool or 0/1 tensor"):
        run(audit, marker_present="yes")
    # a list or numpy array, as `target` is taken (both were refused)
    import numpy as np

    for given in ([True], np.array([1]), (1,)):
        assert run(audit, marker_present=given).summary() == run(audit).summary()
    with pytest.raises(ValueError, match=r"`marker_present` must have shape \(1,\)"):
        run(audit, marker_present=torch.ones(2, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"`marker_present` must be bool or hold only 0 and 1"):
        run(audit, marker_present=torch.tensor([2]))
    # 0/1 numbers are the bools they stand for, as masks' 0/1 are: which images carry the
    # marker, and so the cells, follow them
    two = {
        "lesion_masks": LESION.repeat(2, 1, 1, 1),
        "marker_masks": MARKER,
        "latents": torch.cat([z0, z0]),
    }
    flags = torch.tensor([True, False])
    as_bool = audit.audit(torch.cat([x, x]), 0, marker_present=flags, **two)
    for numbers in (flags.long(), flags.float()):
        as_numbers = audit.audit(torch.cat([x, x]), 0, marker_present=numbers, **two)
        assert as_numbers.marker_present.tolist() == [True, False]
        assert as_numbers.cells() == as_bool.cells()
    # a region that marks nothing, or everything, cannot tell a marker change from another
    with pytest.raises(ValueError, match="`marker_masks`: the mask marks no pixel"):
        run(audit, marker_masks=torch.zeros(1, 1, 8, 8, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"masks \[1\] mark every pixel, .* \(inverted"):
        both = torch.stack([MARKER[0], torch.ones(1, 8, 8, dtype=torch.bool)])
        audit.audit(
            torch.cat([x, x]),
            0,
            lesion_masks=LESION.repeat(2, 1, 1, 1),
            marker_masks=both,
            marker_present=torch.ones(2, dtype=torch.bool),
            latents=torch.cat([z0, z0]),
        )


def test_your_own_region_is_named_and_given_as_users_give_it():
    """The verdict names the region the user audits (it said "scanner marker" for any, then
    "the ruler" in its verb but "with the marker" in its counts), the region may be one (H, W)
    mask, and without lesion masks the lesion claims nothing."""
    rows = [((1.0, 0.5, 0.0), (0.0, 0.5, 0.0), 0)] * 3  # each removes the marker only
    report = _scripted_report(rows, marker_name="ruler")
    assert report.verdict == (
        "flips by removing the ruler in 100% of paths from tumour images with the ruler (3 of "
        "3; restoring the ruler region undoes the flip of 3 of the 3); pooled: 3 of 3 counted "
        "paths via the ruler, 3 undone by restoring it"
    )
    assert "marker" not in report.verdict
    clean = _scripted_report([((1.0, 0.5, 0.0), (1.0, -0.5, 0.0), 0)] * 3, marker_name="ruler")
    assert clean.verdict.startswith("no shortcut found: the ruler carries the change in 0% ")
    g, f = PatchGenerator(), RegionClassifier(4.0, 4.0)
    z0 = torch.tensor([[1.0, 0.5, 0.0]] * 3)
    ends = torch.tensor([[0.0, 0.5, 0.0]] * 3)
    audit = ShortcutAudit(g, f, explainer=ScriptedPaths(g, f, ends), lesion_dilation=0)
    given = {"marker_present": torch.ones(3, dtype=torch.bool), "latents": z0}
    x, zero = g.decode(z0).detach(), torch.zeros(3, dtype=torch.long)
    lesions = LESION.repeat(3, 1, 1, 1)
    as_2d = audit.audit(x, zero, marker_masks=MARKER[0, 0], lesion_masks=lesions, **given)
    as_4d = audit.audit(x, zero, marker_masks=MARKER, lesion_masks=lesions, **given)
    assert as_2d.cells() == as_4d.cells() and as_2d.cells()[0].n_via_marker == 3
    no_lesion = audit.audit(x, zero, marker_masks=MARKER, **given)
    assert no_lesion.area.lesion.tolist() == [0.0] * 3  # the lesion's pixels count elsewhere
    assert float(no_lesion.change.elsewhere[0]) == pytest.approx(
        float(as_2d.change.elsewhere[0] + as_2d.change.lesion[0])
    )
    assert no_lesion.verdict == as_2d.verdict  # only the marker's change enters it
    with pytest.raises(ValueError, match=r"`marker_masks` must have shape .* or \(8, 8\)"):
        audit.audit(x, zero, marker_masks=MARKER[0, 0, :4], **given)
    with pytest.raises(ValueError, match="`marker_name` must be a non-empty string"):
        ShortcutAudit(g, f, marker_name=" ").audit(x, zero, marker_masks=MARKER, **given)


# --- the required test: the real brain generator and two hand-built classifiers -----------------


class MarkerOnly(nn.Module):
    """Looks only at the marker box: tumour log-odds = 20 * (mean intensity in box + 0.8).

    The box is background (~ -0.95) without the marker and ~ -0.65 with it (22 of its 121
    pixels at 0.5-0.9), so -0.8 separates the two."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = x[:, 0, MARKER_BOX[0], MARKER_BOX[1]].mean((1, 2))
        s = 20.0 * (m + 0.8)
        return torch.stack([torch.zeros_like(s), s], 1)


class LesionOnly(nn.Module):
    """The zoo oracle on the image with the marker box blanked to black: provably blind to
    the marker (the lesion is bright tissue inside the brain, far from the box)."""

    def __init__(self, oracle: nn.Module) -> None:
        super().__init__()
        self.oracle = oracle

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        box = marker_mask(x.shape[-1]).to(x.device)
        return self.oracle(torch.where(box, torch.full_like(x, -1.0), x))


@pytest.fixture(scope="module")
def brain():
    from cfx.zoo import load_classifier, load_generator

    generator = load_generator("brain-gan")
    data = make_dataset(16, seed=2, tagged=True, tag_correlation=0.5)
    with torch.no_grad():
        latents = generator.encode(data.images)
    return generator, data, latents, LesionOnly(load_classifier("brain-oracle"))


def _brain_audit(classifier, brain) -> ShortcutReport:
    generator, data, latents, _ = brain
    # paths end just past the boundary, as the audit's own explainers do
    explainer = GradientAscent(
        generator, classifier, steps=5, margin=CROSSING_MARGIN, inversion_steps=0
    )
    audit = ShortcutAudit(generator, classifier, explainer=explainer)
    # every slice walks into the other class: tumour -> healthy and healthy -> tumour
    return audit.audit(data.images, 1 - data.labels, lesion_masks=data.masks, latents=latents)


def test_hand_built_classifiers_do_what_they_claim(brain):
    _, data, _, lesion_only = brain
    with torch.no_grad():
        assert torch.equal(MarkerOnly()(data.images).argmax(1), data.tags.long())
        painted = data.images.clone()
        painted[..., MARKER_BOX[0], MARKER_BOX[1]] = 1.0
        assert torch.equal(lesion_only(painted), lesion_only(data.images))
        assert float((lesion_only(data.images).argmax(1) == data.labels).float().mean()) >= 0.9


def test_report_flags_a_marker_classifier_and_clears_a_lesion_classifier(brain):
    marker = _brain_audit(MarkerOnly(), brain)
    assert torch.equal(marker.marker_present, brain[1].tags)  # read off the marker box
    assert int(marker.counted.sum()) >= 6  # slices whose marker disagrees with the target
    assert marker.flagged and marker.marker_rate >= 0.9
    assert marker.verdict.startswith("flips by")
    assert "scanner marker" in marker.verdict
    cells = {(c.target, c.marker_present): c for c in marker.cells()}
    # it calls a slice tumour iff the marker is there: only marker -> healthy and no
    # marker -> tumour paths start outside their target, and all of them go via the box
    assert cells[(0, False)].n_counted == cells[(1, True)].n_counted == 0
    for key in ((0, True), (1, False)):
        assert cells[key].n_counted >= 3 and cells[key].via_rate >= 0.9, cells[key]
        assert cells[key].flagged and cells[key].undo_rate >= 0.9
    assert "removing the scanner marker" in marker.verdict
    assert "adding the scanner marker in" in marker.verdict
    summary = marker.summary()
    assert summary["median_change_enrichment_marker"] >= 8.0
    assert summary["median_saliency_marker"] >= 0.99  # its gradient lives in the box only
    assert summary["marker_undo_rate"] >= 0.9

    lesion = _brain_audit(brain[3], brain)
    assert int(lesion.counted.sum()) >= 10
    assert not lesion.flagged and lesion.marker_rate <= 0.1
    assert lesion.verdict.startswith("no shortcut found")
    for cell in lesion.cells():
        assert not cell.flagged and cell.n_via_marker == cell.n_undone == 0, cell
        assert not cell.median_marker_enrichment > 1.0, cell  # NaN for an empty cell
    summary = lesion.summary()
    assert summary["median_change_enrichment_marker"] <= 1.0
    assert summary["median_saliency_marker"] == 0.0  # blind to the box by construction
    assert summary["marker_undo_rate"] <= 0.1
    # tumour -> healthy: the change sits on the lesion, far above its area
    removing = lesion.summary(lesion.target == 0)
    assert removing["median_change_enrichment_lesion"] >= 3.0


def test_a_unit_range_notice_is_given_once(caplog):
    """[0, 1]-looking inputs: the paths' start logs the notice; the saliency method's probe
    repeated it as a UserWarning."""
    import warnings

    g, f = PatchGenerator(), RegionClassifier(4.0, 4.0)
    z0 = torch.tensor([[1.0, 1.0, 0.6], [0.8, 1.2, 0.7]])  # every pixel >= 0.1
    x = g.decode(z0).detach()
    assert float(x.min()) >= 0.0
    explainer = GradientAscent(g, f, steps=4, eta=0.05, max_iter=400, inversion_steps=0)
    lesion = LESION.expand(2, -1, -1, -1).clone()
    with warnings.catch_warnings(record=True) as caught, caplog.at_level("WARNING"):
        warnings.simplefilter("always")
        ShortcutAudit(g, f, explainer=explainer).audit(
            x, 0, lesion_masks=lesion, marker_masks=MARKER,
            marker_present=torch.ones(2, dtype=torch.bool), latents=z0,
        )  # fmt: skip
    assert caplog.text.count("is below 0") == 1
    assert not [w for w in caught if "is below 0" in str(w.message)]


class _SignedSaliency:
    """A signed map: -3 on each of the 4 marker pixels, +1 on each of the 9 lesion pixels."""

    def attribute(self, x, target):
        maps = torch.zeros(x.shape[0], 1, H, W)
        maps[MARKER.expand_as(maps)] = -3.0
        maps[LESION.expand_as(maps)] = 1.0
        return maps


def test_saliency_shares_are_of_the_absolute_map():
    """Known answer: |map| puts 4 x 3 = 12 on the marker and 9 x 1 = 9 on the lesion, shares
    12/21 = 4/7 and 9/21 = 3/7 (a signed sum would give -12 against 9)."""
    report, _ = _toy_audit(4.0, 0.0, lesion_dilation=0, saliency=_SignedSaliency())
    assert torch.allclose(report.saliency.marker, torch.full((3,), 4 / 7), atol=1e-6)
    assert torch.allclose(report.saliency.lesion, torch.full((3,), 3 / 7), atol=1e-6)
    assert torch.allclose(report.saliency.elsewhere, torch.zeros(3), atol=1e-6)
    assert float(report.saliency_maps.min()) == 0.0 and float(report.saliency_maps.max()) == 3.0


def test_the_verdicts_verb_follows_the_sign_of_the_change_in_the_marker():
    """A cell of images with the marker whose paths brightened it read 'flips by removing the
    scanner marker' (the verb came from the marker's presence alone)."""
    from dataclasses import replace

    from cfx.shortcuts.report import MarkerCell

    cell = MarkerCell(0, True, "tumour images with the marker", 3, 3, 2, 0, 2 / 3, 0.0, 9.0, 0.5,
                      True, True, median_marker_delta=-0.4)  # fmt: skip
    assert cell.verb == "removing the scanner marker"
    assert replace(cell, median_marker_delta=0.05).verb == "brightening the scanner marker"
    absent = replace(cell, marker_present=False, median_marker_delta=0.3)
    assert absent.verb == "adding the scanner marker"
    assert replace(absent, median_marker_delta=-0.2).verb == "darkening the scanner marker's region"
    # no path via the marker: no sign to read ("adding the scanner marker in 0% of paths")
    none = replace(absent, n_via_marker=0, via_rate=0.0, median_marker_delta=math.nan)
    assert none.verb == "changing the scanner marker's region"


def test_reading_images_as_the_brain_slices_is_said(brain, caplog):
    """Any 64x64 images were audited against the brain slices' marker box, and which carried
    it read off that box, in silence: images of your own need both given."""
    generator, data, latents, lesion_only = brain
    explainer = GradientAscent(
        generator, lesion_only, steps=1, margin=CROSSING_MARGIN, inversion_steps=0
    )
    audit = ShortcutAudit(generator, lesion_only, explainer=explainer)
    args = (data.images[:2], 1 - data.labels[:2])
    said = "`marker_masks` and `marker_present` not given: the 2 images are read as cfx's"
    with caplog.at_level("WARNING"):
        audit.audit(*args, lesion_masks=data.masks[:2], latents=latents[:2])
    assert sum(said in r.getMessage() for r in caplog.records) == 1
    caplog.clear()
    with caplog.at_level("WARNING"):
        audit.audit(
            *args, lesion_masks=data.masks[:2], latents=latents[:2], marker_present=data.tags[:2]
        )
    assert not any(said in r.getMessage() for r in caplog.records)
    otherwise = "`marker_present` says otherwise than the scanner-marker box"
    assert not any(otherwise in r.getMessage() for r in caplog.records)  # the slices' own tags
    caplog.clear()
    with caplog.at_level("WARNING"):  # flags that contradict the box: images of one's own?
        audit.audit(
            *args, lesion_masks=data.masks[:2], latents=latents[:2], marker_present=~data.tags[:2]
        )
    assert any(
        f"{otherwise} of cfx's brain slices for 2 of the 2" in r.getMessage()
        for r in caplog.records
    )


def test_settings_a_given_explainer_does_not_use_are_said(caplog):
    """steps and show_progress went unused without a word beside an explainer object (whose
    own margin, not the audit's 0.95, also decides where its paths end)."""
    with caplog.at_level("WARNING"):
        _toy_audit(4.0, 0.0)
    assert "keeps its own settings" not in caplog.text
    with caplog.at_level("WARNING"):
        _toy_audit(4.0, 0.0, steps=20)
    assert "`steps` and `show_progress` apply to an explainer built from its name" in caplog.text
    assert "the given GradientAscent keeps its own settings" in caplog.text


def test_a_saliency_method_by_its_command_line_name():
    """ShortcutAudit(saliency="gradient-x-input") was a TypeError though the command line takes
    names; it builds the method build_method builds."""
    from cfx.saliency import GradientXInput

    by_name, f = _toy_audit(4.0, 0.0, saliency="Gradient-X-Input")
    by_object, _ = _toy_audit(4.0, 0.0, saliency=GradientXInput(f))
    assert torch.equal(by_name.saliency_maps, by_object.saliency_maps)
    assert float(by_name.saliency_maps.abs().sum()) > 0
    with pytest.raises(KeyError, match="magic"):
        _toy_audit(4.0, 0.0, saliency="magic")


class ThreeClass(nn.Module):
    """Logits (1.406 * (lesion mean + 0.5), marker mean + 0.5, 0.818) on the toy world: the
    marker's source (1, 0, 0) is class 1, the lesion's end (0, 1, 0) class 0, and the end
    with the source's marker restored class 0 still, at a probability of 0.45 only."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = x[:, 0][:, MARKER[0, 0]].mean(1)
        les = x[:, 0][:, LESION[0, 0]].mean(1)
        return torch.stack([1.406 * (les + 0.5), m + 0.5, torch.full_like(m, 0.818)], 1)


def test_with_three_classes_a_flip_is_undone_only_out_of_the_target_class():
    """Undone read the restored frame's target probability below 0.5: a 3-class frame at
    (0.45, 0.30, 0.25) is still in class 0, but counted as undone (and a start at 0.45 that
    was the arg-max as not yet in the target), which could flag a classifier wrongly."""
    g, f = PatchGenerator(), ThreeClass()
    z0, ends = torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([[0.0, 1.0, 0.0]])
    audit = ShortcutAudit(
        g, f, explainer=ScriptedPaths(g, f, ends), lesion_dilation=0, class_names=("a", "b", "c")
    )
    report = audit.audit(
        g.decode(z0).detach(),
        torch.tensor([0]),
        lesion_masks=LESION,
        marker_masks=MARKER,
        marker_present=torch.tensor([True]),
        latents=z0,
    )
    assert report.counted.tolist() == [True]  # from class 1 into class 0
    assert abs(float(report.restored_probs[0]) - 0.45) < 0.005
    assert report.undone.tolist() == [False]  # restored, it is still class 0's arg-max


def test_a_saliency_name_the_classifier_cannot_take_says_what_to_pass():
    """saliency="gradcam" on a model without convolutions failed after the paths with
    "`model` has no nn.Conv2d layer; pass `layer` explicitly", an argument the audit lacks."""
    said = r"`saliency`='gradcam' cannot be built .*saliency=GradCAM\("
    with pytest.raises(ValueError, match=said):
        _toy_audit(4.0, 0.0, saliency="gradcam")


def test_a_cell_at_exactly_the_flag_rate_is_flagged():
    """7 of 10 paths via the marker read as 0.69999999 in float32 and missed a flag_rate of
    0.7 that the report's own text said was met ("70% of paths ... no shortcut found")."""
    via = ((1.0, 0.5, 0.0), (0.0, 0.5, 0.0), 0)  # removes the marker only: via, undone
    lesion_only = ((1.0, 0.5, 0.0), (1.0, -0.5, 0.0), 0)  # removes the lesion only
    report = _scripted_report([via] * 7 + [lesion_only] * 3, flag_rate=0.7)
    (cell,) = [c for c in report.cells() if c.n_paths]
    assert (cell.n_via_marker, cell.n_undone, cell.n_counted) == (7, 7, 10)
    assert cell.via_rate == 0.7 and cell.flagged and report.flagged


def test_the_report_keeps_its_own_copies_of_the_callers_tensors():
    """Editing a reused tags buffer (or the images) after the audit rewrote the kept
    report's verdict: it held the caller's tensors."""
    rows = [((1.0, 0.5, 0.0), (0.0, 0.5, 0.0), 0)] * 3
    z0 = torch.tensor([r[0] for r in rows])
    g, f = PatchGenerator(), RegionClassifier(4.0, 4.0)
    ends = torch.tensor([r[1] for r in rows])
    audit = ShortcutAudit(g, f, explainer=ScriptedPaths(g, f, ends), lesion_dilation=0)
    present = torch.ones(3, dtype=torch.bool)
    lesion = LESION.repeat(3, 1, 1, 1).clone()
    marker = MARKER.clone()
    x = g.decode(z0).detach()
    report = audit.audit(
        x,
        torch.zeros(3, dtype=torch.int64),
        lesion_masks=lesion,
        marker_masks=marker,
        marker_present=present,
        latents=z0,
    )
    verdict = report.verdict
    present[:] = False
    lesion[:] = False
    marker[:] = False
    assert report.verdict == verdict
    assert report.marker_present.all() and report.lesion_masks.any() and report.marker_masks.any()


def test_numpy_settings_are_taken_and_nan_maps_named_before_any_path():
    """np.int64(3) was refused as "`min_paths` must be an int >= 1, got 3"; a saliency
    method returning NaN maps failed as "`change` must be finite" after every path."""
    import numpy as np

    g, f = PatchGenerator(), RegionClassifier(4.0, 0.0)
    z0 = torch.tensor([[1.0, 1.0, 0.0]])
    x = g.decode(z0).detach()
    args = {
        "lesion_masks": LESION,
        "marker_masks": MARKER,
        "latents": z0,
        "marker_present": torch.ones(1, dtype=torch.bool),
    }
    numpy_audit = ShortcutAudit(
        g,
        f,
        min_paths=np.int64(1),
        flag_rate=np.float32(0.5),
        lesion_dilation=np.int64(0),
        min_enrichment=np.float32(2),
    )
    plain = ShortcutAudit(g, f, min_paths=1, flag_rate=0.5, lesion_dilation=0, min_enrichment=2)
    assert numpy_audit.audit(x, 0, **args).verdict == plain.audit(x, 0, **args).verdict
    # the settings are kept as given (audit() rewrote them as float and int: session 54)
    assert type(numpy_audit.min_paths) is np.int64 and type(numpy_audit.flag_rate) is np.float32

    class Blank:
        def attribute(self, x, target):
            m = torch.zeros(len(x), 1, *x.shape[-2:])
            return m / m.amax((1, 2, 3), keepdim=True)  # 0 / 0

    class NoWalk(GradientAscent):
        def explain(self, *a, **k):
            raise AssertionError("the paths were walked before the maps were checked")

    audit = ShortcutAudit(g, f, saliency=Blank(), explainer=NoWalk(g, f))
    with pytest.raises(
        ValueError,
        match=r"`saliency` returned maps holding NaN or inf for "
        r"the images \[0\]",
    ):
        audit.audit(x, 0, **args)


class _CountingSaliency(_SignedSaliency):
    """The signed map, counting its calls."""

    def __init__(self):
        self.calls = 0

    def attribute(self, x, target):
        self.calls += 1
        return super().attribute(x, target)


def test_a_target_out_of_range_is_named_before_the_maps_are_made():
    """A class the classifier does not have was named by the explainer, after the saliency
    maps (seconds per image with RISE; session-55 audit)."""
    g, f = PatchGenerator(), RegionClassifier(4.0, 0.0)
    x = g.decode(torch.tensor([[1.0, 1.0, 0.2]])).detach()
    spy = _CountingSaliency()
    audit = ShortcutAudit(g, f, steps=3, saliency=spy)
    with pytest.raises(ValueError, match=r"`target` must be a class index in \[0, 1\], got 5"):
        audit.audit(
            x, 5, lesion_masks=LESION, marker_masks=MARKER, marker_present=torch.ones(1).bool()
        )
    assert spy.calls == 0


def test_an_infinite_enrichment_bar_is_refused():
    """min_enrichment=inf was taken: no path could go via the marker, so every classifier read
    clean (session-55 audit)."""
    g, f = PatchGenerator(), RegionClassifier(4.0, 0.0)
    x = g.decode(torch.tensor([[1.0, 1.0, 0.2]])).detach()
    audit = ShortcutAudit(g, f, steps=3, min_enrichment=float("inf"))
    with pytest.raises(ValueError, match="`min_enrichment` must be a positive finite number"):
        audit.audit(
            x, 0, lesion_masks=LESION, marker_masks=MARKER, marker_present=torch.ones(1).bool()
        )
