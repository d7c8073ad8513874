"""The shortcut audit on a toy world with known answers and on the real brain generator."""

import math

import pytest
import torch
from torch import nn

from cfx.data.brain import MARKER_BOX, make_dataset, marker_mask
from cfx.shortcuts import ShortcutAudit, ShortcutReport
from cfx.trajectory import GradientAscent

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
    report = audit.audit(x, 0, lesion_masks=lesion, marker_masks=MARKER, latents=z0)
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
    assert report.verdict.startswith("flips by removing the scanner marker in 100% of 3 paths")
    assert bool((report.restored_probs < 0.5).all())  # putting the marker back undoes it
    assert report.summary()["marker_undo_rate"] == 1.0


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
    # enriched (4.9x > 4) but the lesion carries more of the change: not via the marker
    assert not bool(report.via_marker.any())
    # a lower bar on enrichment does not change that; a marker-heavy weighting does
    assert not bool(_toy_audit(3.0, 3.0, lesion_dilation=0, min_enrichment=1.0)[0].via_marker.any())
    assert bool(_toy_audit(6.0, 1.0, lesion_dilation=0)[0].via_marker.all())


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
    audit.audit(g.decode(z0).detach(), 0, lesion_masks=LESION, marker_masks=MARKER, latents=z0)
    assert g.training and f.training
    assert g.basis.requires_grad and not f.weight.requires_grad
    after = [p.detach() for p in (*g.parameters(), *f.parameters())]
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))


def test_monotone_explainer_by_name():
    g, f = PatchGenerator(), RegionClassifier(4.0, 0.0)
    z0 = torch.tensor([[1.0, 1.0, 0.0], [1.1, 0.9, 0.1]])
    report = ShortcutAudit(g, f, explainer="monotone", steps=3).audit(
        g.decode(z0).detach(),
        0,
        lesion_masks=LESION.repeat(2, 1, 1, 1),
        marker_masks=MARKER,
        latents=z0,
    )
    assert report.paths.frames.shape == (2, 4, 1, H, W)
    assert report.flagged


def test_describe_and_summary_by_subset():
    report, _ = _toy_audit(4.0, 0.0)
    first = torch.tensor([True, False, False])
    assert report.summary(first)["n_paths"] == 1.0
    assert "of 1 path " in report.describe(first)
    assert report.describe(torch.zeros(3, dtype=torch.bool)) == "no verdict: no paths selected"
    with pytest.raises(ValueError, match=r"`where` must be a bool tensor of shape \(3,\)"):
        report.summary(torch.ones(2, dtype=torch.bool))


def test_no_verdict_when_nothing_needs_to_flip():
    g, f = PatchGenerator(), RegionClassifier(4.0, 0.0)
    z0 = torch.tensor([[1.0, 1.0, 0.0]])
    report = ShortcutAudit(g, f, steps=3).audit(
        g.decode(z0).detach(), 1, lesion_masks=LESION, marker_masks=MARKER, latents=z0
    )
    assert not bool(report.counted.any())
    assert math.isnan(report.marker_rate) and not report.flagged
    assert report.verdict.startswith("no verdict: the classifier already put all 1 inputs")


def test_bad_arguments_are_clear_errors():
    g, f = PatchGenerator(), RegionClassifier(4.0, 0.0)
    z0 = torch.tensor([[1.0, 1.0, 0.0]])
    x = g.decode(z0).detach()

    def run(audit, **kw):
        args = {"lesion_masks": LESION, "marker_masks": MARKER, "latents": z0} | kw
        return audit.audit(x, 0, **args)

    with pytest.raises(ValueError, match="`explainer` must be 'gradient', 'monotone'"):
        run(ShortcutAudit(g, f, explainer="adam"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`explainer` must be"):
        run(ShortcutAudit(g, f, explainer=object()))  # type: ignore[arg-type]
    other = GradientAscent(g, RegionClassifier(0.0, 1.0))
    with pytest.raises(ValueError, match="`explainer` explains a different classifier"):
        run(ShortcutAudit(g, f, explainer=other))
    with pytest.raises(TypeError, match="`saliency` must be None or an object"):
        run(ShortcutAudit(g, f, saliency=object()))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"`flag_rate` must be a number in \(0, 1\], got 0"):
        run(ShortcutAudit(g, f, flag_rate=0))
    with pytest.raises(ValueError, match="`min_enrichment` must be a positive number, got -1"):
        run(ShortcutAudit(g, f, min_enrichment=-1))
    with pytest.raises(ValueError, match="`lesion_dilation` must be an int >= 0"):
        run(ShortcutAudit(g, f, lesion_dilation=-2))
    audit = ShortcutAudit(g, f)
    with pytest.raises(ValueError, match=r"`lesion_masks` must have shape \(1, 1, 8, 8\)"):
        run(audit, lesion_masks=torch.zeros(1, 1, 4, 4, dtype=torch.bool))
    with pytest.raises(TypeError, match="`lesion_masks` must be a bool tensor"):
        run(audit, lesion_masks=torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="`marker_masks` is required for images that are not"):
        run(audit, marker_masks=None)
    with pytest.raises(ValueError, match=r"`marker_masks` must have shape \(1, 1, 8, 8\)"):
        run(audit, marker_masks=torch.zeros(2, 1, 8, 8, dtype=torch.bool))


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
    explainer = GradientAscent(generator, classifier, steps=5, inversion_steps=0)
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
    assert int(marker.counted.sum()) >= 6  # slices whose marker disagrees with the target
    assert marker.flagged and marker.marker_rate >= 0.9
    assert marker.verdict.startswith("flips by")
    assert "scanner marker" in marker.verdict
    summary = marker.summary()
    assert summary["median_change_enrichment_marker"] >= 8.0
    assert summary["median_saliency_marker"] >= 0.99  # its gradient lives in the box only
    assert summary["marker_undo_rate"] >= 0.9

    lesion = _brain_audit(brain[3], brain)
    assert int(lesion.counted.sum()) >= 10
    assert not lesion.flagged and lesion.marker_rate <= 0.1
    assert lesion.verdict.startswith("no shortcut found")
    summary = lesion.summary()
    assert summary["median_change_enrichment_marker"] <= 1.0
    assert summary["median_saliency_marker"] == 0.0  # blind to the box by construction
    assert summary["marker_undo_rate"] <= 0.1
    # tumour -> healthy: the change sits on the lesion, far above its area
    removing = lesion.summary(lesion.target == 0)
    assert removing["median_change_enrichment_lesion"] >= 3.0
