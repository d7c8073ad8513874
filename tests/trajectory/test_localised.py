"""Known answers for the localised ascent on a toy whose evidence sits in four pixels.

G(z) = A z on 4x4 images: latent 0 moves the four "lesion" pixels R = {0, 1, 2, 3} by
1.0, 0.9, 0.8, 0.7 (and every other pixel by 0.1); latent 1 moves only pixels outside R. The
classifier's log-odds are the sum of the pixels in R, so the ascent moves along latent 0 only,
its change map ranks R's pixels first (in that order), and a composite that may change k of
R's pixels gains log-odds at the rate of their A-values: 3.4 per unit of z for all four,
1.9 for the top two.
"""

import itertools
import math

import pytest
import torch
from torch import nn

from cfx.trajectory import LocalisedAscent, MonotonePath, PixelSpace
from cfx.trajectory.localised import region_masks

R = torch.zeros(16, dtype=torch.bool)
R[:4] = True


class TwoDirections(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        a = torch.zeros(16, 2)
        a[:, 0] = 0.1
        a[:4, 0] = torch.tensor([1.0, 0.9, 0.8, 0.7])
        a[4:, 1] = torch.linspace(0.2, 0.5, 12)
        self.A = nn.Parameter(a)

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return (2,)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return (z @ self.A.T).view(-1, 1, 4, 4)


class SumOfR(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(R.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.flatten(1) @ self.w
        return torch.stack([torch.zeros_like(s), s], 1)  # (B, 2): log-odds of class 1 = s


@pytest.fixture
def toy():
    g, f = TwoDirections(), SumOfR()
    # log-odds 3.4 * z_0 = -6.8 (p ~ 0.001); latent 1 differs per image and must not move
    z0 = torch.tensor([[-2.0, 0.5], [-2.0, -1.0]])
    x = g.decode(z0).detach().clamp(-1, 1)
    return g, f, z0, x


def _explainer(g, f, **kw):
    kw = {"steps": 5, "eta": 0.25, "change_blur": 0.0, "soften": 0.0} | kw
    return LocalisedAscent(g, f, inversion_steps=0, **kw)


def test_frames_change_only_the_smallest_region_that_flips(toy):
    g, f, z0, x = toy
    res = _explainer(g, f, max_iter=100, mask_fractions=(0.125, 0.25)).explain(x, 1, latents=z0)
    expected = torch.zeros(16)
    expected[:2] = 1.0  # the two pixels with the largest change: 1/8 of the image
    assert torch.equal(res.edit_masks.flatten(1), expected.expand(2, -1))
    change = (res.frames - res.frames[:, :1]).flatten(2)  # (B, T+1, 16)
    assert torch.equal(change[..., 2:], torch.zeros_like(change[..., 2:]))
    assert bool((change[:, -1, :2] > 0).all())
    assert bool(res.success.all())
    assert bool((res.probs.diff(dim=1) > 0).all())
    # log-odds are linear along the path, so resampling places every level almost exactly
    assert torch.allclose(res.probs[:, 1:-1], res.levels[1:-1].expand(2, -1), atol=0.01)


def test_a_region_too_small_to_flip_in_time_is_passed_over(toy):
    g, f, z0, x = toy
    # 11.4 log-odds to reach p = 0.99: 14 steps of 0.25 at rate 3.4 (all of R), 24 at 1.9
    res = _explainer(g, f, max_iter=20, mask_fractions=(0.125, 0.25)).explain(x, 1, latents=z0)
    assert torch.equal(res.edit_masks.flatten(1), R.float().expand(2, -1))
    assert bool((res.probs[:, -1] >= 0.99).all())


def test_no_region_flips_falls_back_to_the_unmasked_path(toy, caplog):
    g, f, z0, x = toy
    with caplog.at_level("WARNING"):
        res = _explainer(g, f, max_iter=20, mask_fractions=(0.125,)).explain(x, 1, latents=z0)
    # said, not silent: the frames are not localised (the default give_up is named)
    assert "2 of 2 localised paths change the whole image (rows [0, 1])" in caplog.text
    assert "`give_up=1` abandons a region" in caplog.text
    assert torch.equal(res.edit_masks, torch.ones_like(res.edit_masks))
    change = (res.frames[:, -1] - res.frames[:, 0]).flatten(1)
    assert bool((change[:, 4:] > 0).all())  # latent 0 also moves the pixels outside R
    assert bool(res.success.all())


def test_same_inputs_same_frames_and_models_untouched(toy):
    g, f, z0, x = toy
    g.train()
    f.eval()
    before = [p.detach().clone() for p in [*g.parameters(), *f.parameters()]]
    a = _explainer(g, f, max_iter=100).explain(x, 1, latents=z0)
    b = _explainer(g, f, max_iter=100).explain(x, 1, latents=z0)
    assert torch.equal(a.frames, b.frames)
    assert g.training and not f.training
    assert all(p.requires_grad for p in [*g.parameters(), *f.parameters()])
    for p0, p1 in zip(before, [*g.parameters(), *f.parameters()], strict=True):
        assert torch.equal(p0, p1)


def test_region_masks_known_values():
    change = torch.arange(16.0).view(1, 1, 4, 4)
    m = region_masks(change, 0.25, soften=0.0)
    assert m.flatten().tolist() == [0.0] * 12 + [1.0] * 4
    assert torch.equal(region_masks(change, 1.0, soften=0.0), torch.ones_like(change))
    soft = region_masks(change, 0.25, soften=1.0)
    assert float(soft.min()) >= 0.0 and float(soft.max()) <= 1.0
    assert float(soft[0, 0, 3].mean()) > float(soft[0, 0, 0].mean())


def _documented_kernel(sigma: float) -> list[float]:
    """The Gaussian ``soften`` is documented to blur with, written out independently of cfx:
    radius ``ceil(2 sigma)``, weights ``exp(-t^2 / (2 sigma^2))`` normalised to sum 1."""
    radius = max(1, math.ceil(2 * sigma))
    w = [math.exp(-(t**2) / (2 * sigma**2)) for t in range(-radius, radius + 1)]
    return [v / sum(w) for v in w]


def test_region_masks_soften_the_border_with_the_documented_gaussian():
    """The softened mask is the binary one blurred by a Gaussian of ``soften`` px, pixel for
    pixel (the audit found only a [0, 1] range and an ordering pinned, which a plain binary
    mask or a wrong width also passed).

    The bottom row of a 4x4 map (fraction 0.25) is constant along rows, so only the blur down
    the columns acts, with replicated edges: weights w_t = exp(-t^2 / 2) for |t| <= 2 and
    S = w_0 + 2 w_1 + 2 w_2 = 2.48373 give rows 0, w_2 / S = 0.05449, (w_1 + w_2) / S = 0.29869
    and (w_0 + w_1 + w_2) / S = 0.70131. A single set pixel at the centre of a 9x9 map (fraction
    1/81) spreads as the outer product k k^T of the normalised kernel, for sigma 1 and 2.
    """
    w0, w1, w2 = 1.0, math.exp(-0.5), math.exp(-2.0)
    total = w0 + 2 * w1 + 2 * w2
    rows = torch.tensor([0.0, w2 / total, (w1 + w2) / total, (w0 + w1 + w2) / total])
    assert rows.tolist() == pytest.approx([0.0, 0.05449, 0.29869, 0.70131], abs=1e-5)
    soft = region_masks(torch.arange(16.0).view(1, 1, 4, 4), 0.25, soften=1.0)
    torch.testing.assert_close(soft[0, 0], rows[:, None].expand(4, 4), atol=1e-6, rtol=0)

    i = torch.arange(9.0)
    peak = 100.0 - (i[:, None] - 4) ** 2 - (i[None, :] - 4) ** 2  # (9, 9), largest at (4, 4)
    for sigma in (1.0, 2.0):
        k = torch.tensor(_documented_kernel(sigma))
        r = (k.numel() - 1) // 2
        expected = torch.zeros(9, 9)
        expected[4 - r : 5 + r, 4 - r : 5 + r] = k[:, None] * k[None, :]
        soft = region_masks(peak.view(1, 1, 9, 9), 1 / 81, soften=sigma)
        torch.testing.assert_close(soft[0, 0], expected, atol=1e-6, rtol=0)
        assert float(soft[0, 0, 4, 4]) < 1.0  # the set pixel itself is softened too


def test_region_masks_keep_pixels_tied_with_the_threshold():
    # 5 pixels 0..4, fraction 0.25: torch.quantile (linear) at 0.75 sits at index
    # 0.75 * (5 - 1) = 3 exactly, i.e. the value 3; pixels ">= 3" are {3, 4}.
    change = torch.arange(5.0).view(1, 1, 1, 5)
    assert region_masks(change, 0.25, soften=0.0).flatten().tolist() == [0, 0, 0, 1, 1]
    # an unchanged image (constant map): every pixel is at the threshold, so all are kept
    flat = torch.zeros(1, 1, 2, 2)
    assert region_masks(flat, 0.5, soften=0.0).flatten().tolist() == [1, 1, 1, 1]


def test_region_masks_of_a_map_mostly_tied_at_zero_are_the_changed_pixels():
    """10 of 256 pixels changed (3.9 %), fraction 0.08: the 0.92 quantile is 0, and the
    pixels ">= 0" were the whole image, the very region the search is meant to avoid; the
    region is now those 10 pixels. A second map in the batch, all distinct, keeps its top 8 %
    (ceil(0.08 * 256) = 21 pixels above the interpolated quantile)."""
    sparse = torch.zeros(256)
    changed = torch.tensor([3, 40, 41, 77, 100, 128, 129, 200, 230, 255])
    sparse[changed] = torch.linspace(0.1, 1.0, 10)
    ramp = torch.randperm(256, generator=torch.Generator().manual_seed(0)).float()
    change = torch.stack([sparse, ramp]).view(2, 1, 16, 16)
    m = region_masks(change, 0.08, soften=0.0).flatten(1)
    assert torch.nonzero(m[0]).flatten().tolist() == changed.tolist()
    assert torch.nonzero(m[1]).flatten().tolist() == torch.nonzero(ramp >= 235).flatten().tolist()
    assert int(m[1].sum()) == 21


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"mask_fractions": ()}, "mask_fractions"),
        ({"mask_fractions": (0.0, 0.5)}, "mask_fractions"),
        ({"mask_fractions": (1.5,)}, "mask_fractions"),
        ({"change_blur": -1.0}, "change_blur"),
        ({"margin": 1.0}, "margin"),
        ({"steps": 0}, "steps"),
        ({"patience": 0.0}, "patience"),
        ({"patience": -1.0}, "patience"),
    ],
)
def test_bad_hyperparameters(toy, kw, match):
    g, f, z0, x = toy
    with pytest.raises(ValueError, match=match):
        _explainer(g, f, **kw).explain(x, 1, latents=z0)


def test_monotone_path_localised_keeps_every_frame_inside_the_region(toy):
    g, f, z0, x = toy
    mp = MonotonePath(
        g,
        f,
        steps=5,
        iterations=20,
        localise=True,
        mask_fractions=(0.125, 0.25),
        inversion_steps=0,
        blur_check=0.0,  # the toy classifier reads single pixels: a blurred end frame fails
    )
    res = mp.explain(x, 1, latents=z0)
    mp.iterations = 0
    warm = mp.explain(x, 1, latents=z0)
    assert not torch.equal(res.frames, warm.frames)  # the joint optimisation moved the path
    assert res.lambdas is not None and bool(res.lambdas.isfinite().all())
    assert res.edit_masks is not None
    outside = res.edit_masks.flatten(1) == 0  # (B, 16)
    assert bool(outside.any())
    change = (res.frames - res.frames[:, :1]).flatten(2)  # (B, T+1, 16)
    assert torch.equal(
        change[outside[:, None].expand_as(change)], torch.zeros(int(outside.sum()) * 6)
    )
    assert bool(res.success.all())
    assert bool((res.probs.diff(dim=1) > 0).all())
    assert float((res.probs[:, 1:] - res.levels[1:]).abs().max()) <= 0.08
    assert MonotonePath(g, f, inversion_steps=0).explain(x, 1, latents=z0).edit_masks is None


def test_monotone_path_checks_its_regions(toy):
    g, f, z0, x = toy
    with pytest.raises(ValueError, match="mask_fractions"):
        MonotonePath(g, f, localise=True, mask_fractions=(2.0,)).explain(x, 1, latents=z0)
    with pytest.raises(TypeError, match="localise"):
        MonotonePath(g, f, localise="yes").explain(x, 1, latents=z0)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["ascent", "monotone"])
def test_source_background_keeps_the_input_pixel_for_pixel_outside_the_region(toy, kind):
    g, f, z0, x = toy
    x = (x + 0.05 * torch.linspace(-1, 1, 16).view(1, 1, 4, 4)).clamp(-1, 1)  # not G(z_0)
    kw = {"mask_fractions": (0.125, 0.25), "background": "source"}
    if kind == "ascent":
        explainer = _explainer(g, f, max_iter=100, **kw)
    else:
        explainer = MonotonePath(
            g, f, steps=5, iterations=20, localise=True, inversion_steps=0, **kw
        )
    res = explainer.explain(x, 1, latents=z0)
    outside = (res.edit_masks == 0).expand_as(x)  # (B, 1, 4, 4)
    assert bool(outside.any())
    for t in range(res.frames.shape[1]):
        assert torch.equal(res.frames[:, t][outside], x[outside])
    assert bool(res.success.all())
    assert bool((res.probs.diff(dim=1) > 0).all())


def test_source_background_frames_are_placed_at_their_levels(toy):
    # With background = x the composite's log-odds are linear in z (2 region pixels from
    # G(z), the other two pixels of R from x, constant), so false-position placement hits
    # each level t / T almost exactly -- if it decodes over the same background as the frames.
    g, f, z0, x = toy
    x = (x + 0.05 * torch.linspace(-1, 1, 16).view(1, 1, 4, 4)).clamp(-1, 1)  # not G(z_0)
    res = _explainer(g, f, max_iter=100, mask_fractions=(0.125, 0.25), background="source").explain(
        x, 1, latents=z0
    )
    assert res.edit_masks.flatten(1).sum(1).tolist() == [2.0, 2.0]
    torch.testing.assert_close(
        res.probs[:, 1:-1], res.levels[1:-1].expand(2, -1), atol=0.01, rtol=0
    )


def test_bad_background_and_give_up(toy):
    g, f, z0, x = toy
    with pytest.raises(ValueError, match="background"):
        _explainer(g, f, background="input").explain(x, 1, latents=z0)
    with pytest.raises(ValueError, match="background"):
        MonotonePath(g, f, localise=True, background="x").explain(x, 1, latents=z0)
    with pytest.raises(ValueError, match="give_up"):
        _explainer(g, f, give_up=0.0).explain(x, 1, latents=z0)
    with pytest.raises(ValueError, match="give_up"):
        MonotonePath(g, f, localise=True, give_up=-1.0).explain(x, 1, latents=z0)


def test_settings_of_the_wrong_kind_are_named(toy):
    g, f, z0, x = toy
    with pytest.raises(ValueError, match="mask_fractions"):
        _explainer(g, f, mask_fractions=0.1).explain(x, 1, latents=z0)
    with pytest.raises(TypeError, match="`change_blur`"):
        _explainer(g, f, change_blur="a").explain(x, 1, latents=z0)
    with pytest.raises(ValueError, match="image_shape"):
        PixelSpace(64)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="image_shape"):
        PixelSpace((1, 4.5, 4))  # type: ignore[arg-type]


def test_sequences_of_any_kind_are_accepted(toy):
    import numpy as np

    g, f, z0, x = toy
    res = _explainer(g, f, mask_fractions=np.array([0.125, 0.25])).explain(x, 1, latents=z0)
    assert res.edit_masks is not None
    assert PixelSpace([1, np.int64(4), 4]).latent_shape == (1, 4, 4)


def _record_region_sizes(explainer, monkeypatch) -> list:
    """Per call of ``explainer.ascend_masked``, the pixel count of each image's region."""
    sizes = []
    ascend = explainer.ascend_masked

    def recording(z, start, mask, *args, **kwargs):
        sizes.append(mask.flatten(1).sum(1).round().long().tolist())
        return ascend(z, start, mask, *args, **kwargs)

    monkeypatch.setattr(explainer, "ascend_masked", recording)
    return sizes


@pytest.mark.parametrize(
    ("max_iter", "pixels", "tried"),
    # 11.4 log-odds to p = 0.99 at rates 1.0 / 1.9 / 2.7 / 3.4 per unit of z (top 1-4 pixels
    # of R): 46 / 24 / 17 / 14 steps of 0.25. Bisection tries the second candidate first, then
    # the smaller or the larger half.
    [(100, 1, [2, 1]), (20, 3, [2, 3]), (15, 4, [2, 3, 4])],
)
def test_the_smallest_region_that_flips_is_found_by_bisection(
    toy, monkeypatch, max_iter, pixels, tried
):
    g, f, z0, x = toy
    explainer = _explainer(g, f, max_iter=max_iter, mask_fractions=(1 / 16, 2 / 16, 3 / 16, 4 / 16))
    sizes = _record_region_sizes(explainer, monkeypatch)
    res = explainer.explain(x, 1, latents=z0)
    assert sizes == [[n, n] for n in tried]  # both images take the same turns
    expected = torch.zeros(16)
    expected[:pixels] = 1.0  # R's pixels in the order of their change
    assert torch.equal(res.edit_masks.flatten(1), expected.expand(2, -1))
    assert bool((res.probs[:, -1] >= 0.99).all())


def test_images_on_different_turns_of_the_bisection_get_their_own_regions(toy, monkeypatch):
    g, f, _, _ = toy
    # image 0 starts at log-odds -6.8 (46 / 24 / 17 / 14 steps for the top 1-4 pixels of R),
    # image 1 at -3.4 (32 / 17 / 12 / 10): with 20 iterations image 0 needs 3 pixels and image
    # 1 two, so the second turn ascends 3- and 1-pixel regions in one batch
    z0 = torch.tensor([[-2.0, 0.5], [-1.0, -1.0]])
    x = g.decode(z0).detach().clamp(-1, 1)
    explainer = _explainer(g, f, max_iter=20, mask_fractions=(1 / 16, 2 / 16, 3 / 16, 4 / 16))
    sizes = _record_region_sizes(explainer, monkeypatch)
    res = explainer.explain(x, 1, latents=z0)
    assert sizes == [[2, 2], [3, 1]]
    assert res.edit_masks.flatten(1).sum(1).tolist() == [3.0, 2.0]
    assert torch.equal(res.edit_masks.flatten(1)[:, 4:], torch.zeros(2, 12))
    assert bool((res.probs[:, -1] >= 0.99).all())


def test_region_budget_is_patience_times_the_global_iterations_plus_ten(toy, monkeypatch):
    # From log-odds -6.8, p = 0.99 (log-odds 4.595) is 11.395 away; steps of 0.25 along
    # latent 0 gain 0.25 * (sum of A over the region's pixels): 0.85 for all of R (14 steps),
    # 0.675 for 3 pixels (17), 0.475 for 2 (24), 0.25 for 1 (46). The global ascent takes
    # 14 frames below 0.99 (start + 13 steps), so needed = 14 and patience 1.25 gives the
    # budget ceil(1.25 * 14 + 10) = 28 >= 24: the 2-pixel region flips, then the 1-pixel one
    # fails; sizes tried [2, 1], region 2 pixels. (Without the "+ 10" the budget is 18:
    # 2 pixels fail and 3 pixels, 17 steps, flip.)
    g, f, z0, x = toy
    explainer = _explainer(
        g, f, max_iter=100, patience=1.25, mask_fractions=(1 / 16, 2 / 16, 3 / 16, 4 / 16)
    )
    sizes = _record_region_sizes(explainer, monkeypatch)
    res = explainer.explain(x, 1, latents=z0)
    assert sizes == [[2, 2], [1, 1]]
    assert res.edit_masks.flatten(1).sum(1).tolist() == [2.0, 2.0]


def test_give_up_abandons_a_region_that_cannot_flip_within_its_budget(toy, monkeypatch):
    # max_iter 30: the 1-pixel region gains at most 0.25 * 30 = 7.5 < 11.395 log-odds, so
    # with give_up = 1.0 its ascent stops early (fewer than 30 steps); give_up = None runs
    # all 30. Bisection tries 2 pixels (24 steps, flips), then 1 pixel.
    g, f, z0, x = toy
    lengths = {}
    for give_up in (1.0, None):
        explainer = _explainer(
            g, f, max_iter=30, give_up=give_up, mask_fractions=(1 / 16, 2 / 16, 3 / 16, 4 / 16)
        )
        ascend = explainer.ascend_masked
        frames = {}  # region pixels -> frames of the path ascended for it

        def recording(z, start, mask, *args, _ascend=ascend, _frames=frames, **kwargs):
            path, p = _ascend(z, start, mask, *args, **kwargs)
            _frames[int(mask[0].sum().round())] = path.shape[1]
            return path, p

        monkeypatch.setattr(explainer, "ascend_masked", recording)
        explainer.explain(x, 1, latents=z0)
        lengths[give_up] = frames[1]
    assert lengths[None] == 31  # start + 30 steps
    assert lengths[1.0] < 31


def test_a_start_past_the_margin_gets_the_region_that_exaggerates_as_far(toy):
    """A start past the margin passed it at once on every candidate, so the smallest region
    was taken untried and its path stopped at the 10-iteration budget (0.2 log-odds of
    climb). Now regions must reach the global ascent's goal, the start's log-odds + 1.0:
    from log-odds 5.1 (p 0.994 > margin 0.99) at eta 0.02, the global ascent (rate 3.4)
    takes 15 steps, budget 15 + 10 = 25 with patience 1; 1 / 2 / 3 pixels (rates 1.0 / 1.9 /
    2.7) need 50 / 27 / 19 steps: the 3-pixel region."""
    g, f, _, _ = toy
    z0 = torch.tensor([[1.5, 0.5], [1.5, -1.0]])
    x = g.decode(z0).detach().clamp(-1, 1)
    explainer = _explainer(
        g, f, eta=0.02, max_iter=200, patience=1.0, mask_fractions=(1 / 16, 2 / 16, 3 / 16)
    )
    res = explainer.explain(x, 1, latents=z0)
    assert res.edit_masks.flatten(1).sum(1).tolist() == [3.0, 3.0]
    s = torch.logit(res.probs.double())
    assert bool((s[:, -1] - s[:, 0] >= 0.99).all())  # climbed as far as GradientAscent would
    assert bool((res.probs.diff(dim=1) > 0).all())


@pytest.mark.parametrize("give_up", [None, 1.0])
def test_a_start_just_below_the_margin_needs_only_the_margin_from_a_region(toy, give_up):
    """A start within EXAGGERATION log-odds below the margin: the global ascent climbs to
    start + 1, but a region needs only the margin, as before. From log-odds 4.2 (p 0.985)
    at eta 0.02 the margin (4.595) is 6 entries of the global path away (rate 3.4), budget
    6 + 10 = 16 with patience 1; 1 / 2 pixels (rates 1.0 / 1.9) need 20 / 11 steps: the
    2-pixel region (asking for start + 1 took the 3-pixel one, and on brain-cnn, whose
    confidence levels off below it, the whole image). give_up=1 judged a region by the
    ascent's own goal, start + 1, and dropped the 2-pixel one at iteration 10 (projected
    4.2 + 10 * 0.038 + 6 * 0.038 < 5.2); it now judges by the margin the region needs."""
    g, f, _, _ = toy
    z0 = torch.tensor([[4.2 / 3.4, 0.5], [4.2 / 3.4, -1.0]])
    x = g.decode(z0).detach().clamp(-1, 1)
    explainer = _explainer(
        g,
        f,
        eta=0.02,
        max_iter=200,
        patience=1.0,
        give_up=give_up,
        mask_fractions=(1 / 16, 2 / 16, 3 / 16),
    )
    res = explainer.explain(x, 1, latents=z0)
    assert res.edit_masks.flatten(1).sum(1).tolist() == [2.0, 2.0]
    assert bool((res.probs[:, -1] >= 0.99).all())


def test_change_map_is_the_global_edit_per_pixel(toy):
    # the global path moved latent 0 by 1.5: every pixel changed by 1.5 * A[:, 0]
    g, f, z0, _ = toy
    path1 = torch.stack([z0, z0 + torch.tensor([1.5, 0.0])], 1)  # (B, K=2, 2)
    with torch.no_grad():
        change = _explainer(g, f).change_map(path1, g.decode(z0), torch.ones(2, dtype=torch.long))
    expected = (1.5 * g.A[:, 0]).detach().view(1, 1, 4, 4).expand(2, 1, 4, 4)
    torch.testing.assert_close(change, expected)


def test_region_candidates_default_to_one_grid():
    from cfx.trajectory.localised import MASK_FRACTIONS

    g, f = TwoDirections(), SumOfR()
    assert LocalisedAscent(g, f).mask_fractions == MASK_FRACTIONS
    assert MonotonePath(g, f, localise=True).mask_fractions == MASK_FRACTIONS
    assert all(0 < a < b < 1 for a, b in itertools.pairwise(MASK_FRACTIONS))


def test_region_masks_read_each_maps_own_minimum():
    """Two maps of a batch with the same 10 changed pixels (3.9 %, fraction 0.08): the second
    has changed everywhere by 0.2 more, so its mostly tied minimum is 0.2, not 0. Each map's
    own minimum decides: both regions are those 10 pixels (the batch's minimum, 0, would set
    every pixel of the second)."""
    sparse = torch.zeros(256)
    changed = torch.tensor([3, 40, 41, 77, 100, 128, 129, 200, 230, 255])
    sparse[changed] = torch.linspace(0.1, 1.0, 10)
    change = torch.stack([sparse, sparse + 0.2]).view(2, 1, 16, 16)
    m = region_masks(change, 0.08, soften=0.0).flatten(1)
    assert torch.nonzero(m[0]).flatten().tolist() == changed.tolist()
    assert torch.nonzero(m[1]).flatten().tolist() == changed.tolist()


class _GivenLatents:
    """A user's wrapper passing each chunk's own latents ``z0`` rows of the images ``x``."""

    def __init__(self, inner, x, z0):
        self.inner, self.x, self.z0 = inner, x, z0

    def explain(self, xs, target):
        rows = [int((self.x == xi).flatten(1).all(1).nonzero()) for xi in xs]
        return self.inner.explain(xs, target, latents=self.z0[rows])


def test_the_whole_image_notice_numbers_rows_of_the_whole_input(toy, caplog):
    """In chunks, the notice names rows of the whole input, once: image 1 (log-odds -3.4)
    finds a 2-pixel region within 20 iterations, images 0 and 2 (-6.8) need 3 pixels, and
    only 1 and 2 are offered."""
    from cfx.trajectory import explain_in_chunks

    g, f, _, _ = toy
    z0 = torch.tensor([[-2.0, 0.5], [-1.0, -1.0], [-2.0, 0.0]])
    x = g.decode(z0).detach().clamp(-1, 1)
    explainer = _explainer(g, f, max_iter=20, give_up=None, mask_fractions=(1 / 16, 2 / 16))
    explainer.inversion_steps = 0

    with caplog.at_level("WARNING"):
        res = explain_in_chunks(_GivenLatents(explainer, x, z0), x, 1, batch_size=2)
    assert res.edit_masks.flatten(1).sum(1).tolist() == [16.0, 2.0, 16.0]
    assert caplog.text.count("localised paths change the whole image") == 1
    assert "2 of 3 localised paths change the whole image (rows [0, 2])" in caplog.text
    assert "give_up" not in caplog.text  # None: nothing to advise


def test_region_masks_of_a_float64_map_keep_a_plateau_at_the_quantile():
    """The quantile was taken in float32 for every dtype: a float64 plateau at 0.1 (which
    float32 rounds up) fell below its own threshold and was dropped."""
    change = torch.zeros(1, 1, 5, 5, dtype=torch.float64)
    flat = change.view(-1)
    flat[:5] = 1.0
    flat[5:20] = 0.1  # a plateau of 15 pixels, where the median (the 0.5 quantile) falls
    mask = region_masks(change, 0.5, soften=0.0)
    assert int(mask.sum()) == 20  # the plateau and the five above it (ties are kept)


def test_region_bar_known_values():
    """What a region's path must reach besides the margin (0.75, log-odds 1.0986 here), from
    the whole-image ascent's probabilities. Row 0 starts past the margin at log-odds 3 and
    climbed to start + 1 = 4; row 1 saturated at 3.6, short of 4; row 2 starts exactly at
    the margin, which every candidate passes at once, and climbed past start + 1 = 2.0986;
    row 3 starts below it and needs the margin alone. Each bar is 0.01 under the climb
    (probabilities round the logits the ascent's goal was set from): a region that climbs
    as far passes."""
    from cfx.trajectory.localised import region_bar
    from cfx.trajectory.resample import log_odds

    climbs = torch.tensor(
        [[3.0, 3.5, 4.0], [3.0, 3.5, 3.6], [math.log(3.0), 2.0, 2.5], [0.0, 2.0, 3.0]],
        dtype=torch.float64,
    )
    probs = torch.sigmoid(climbs)
    assert probs[2, 0] == 0.75  # the premise: exactly at the margin
    bar = region_bar(probs, 0.75)
    expected = torch.tensor([3.99, 3.59, math.log(3.0) + 0.99], dtype=torch.float64)
    torch.testing.assert_close(bar[:3], expected)
    assert bar[3] == -math.inf
    assert bool((log_odds(probs[:, -1]) >= bar).all())  # the global path's own end passes


def test_the_whole_image_notice_in_chunks_reads_give_up_through_a_wrapper(toy, caplog):
    """explain_in_chunks gives the notice once for the whole input, reading the wrapped
    explainer's give_up as it reads its margin: the advice about give_up (what fixed the
    auditor's model) was dropped for a wrapper."""
    from cfx.trajectory import explain_in_chunks

    g, f, z0, x = toy
    explainer = _explainer(g, f, max_iter=20, mask_fractions=(0.125,))  # give_up=1
    assert explainer.give_up == 1  # the premise: the default is set

    with caplog.at_level("WARNING"):
        explain_in_chunks(_GivenLatents(explainer, x, z0), x, 1, batch_size=1)
    assert caplog.text.count("localised paths change the whole image") == 1
    assert "2 of 2 localised paths change the whole image (rows [0, 1])" in caplog.text
    assert "`give_up=1` abandons a region" in caplog.text
