import math

import numpy as np
import pytest
import torch

from cfx.metrics import frechet_distance, l1_distance, psnr, ssim


def test_psnr_known_answer():
    a = torch.zeros(2, 1, 8, 8)
    b = torch.full((2, 1, 8, 8), 0.2)  # MSE 0.04 on a data range of 2
    assert torch.allclose(psnr(a, b), torch.full((2,), 10 * math.log10(4 / 0.04)))
    assert torch.allclose(l1_distance(a, b), torch.full((2,), 0.2))


def test_ssim_identical_and_constant_images():
    x = torch.rand(3, 1, 16, 16) * 2 - 1
    assert torch.allclose(ssim(x, x), torch.ones(3), atol=1e-6)
    a, b = torch.full((1, 1, 16, 16), 0.5), torch.full((1, 1, 16, 16), -0.5)
    c1 = (0.01 * 2) ** 2
    expected = (2 * 0.5 * -0.5 + c1) / (0.25 + 0.25 + c1)  # variances and covariance are 0
    assert torch.allclose(ssim(a, b), torch.tensor([expected]), atol=1e-5)


def test_psnr_of_identical_images_is_capped_by_the_error_floor():
    # the squared error is floored at 1e-12: 10 log10(4 / 1e-12) = 126.02 dB, not infinity
    s = torch.zeros(1, 1, 4, 4)
    assert psnr(s, s).item() == pytest.approx(10 * math.log10(4 / 1e-12), abs=1e-3)


def test_psnr_scores_an_image_just_inside_the_scale_limit():
    # 3.9 is outside [-1, 1] but inside the room left for an overshooting generator
    s = torch.zeros(1, 1, 4, 4)
    assert torch.isfinite(psnr(torch.full((1, 1, 4, 4), 3.9), s)).all()


def test_ssim_closed_form_with_flat_window():
    # sigma -> inf: the 3x3 window weights are 1/9 each, so SSIM uses plain (population)
    # moments. The pattern below has mean 0 and sum of squares 2.64; a is it shifted by 0.1
    # and b = a / 2, so b has a quarter of a's variance and half of it as covariance.
    a = torch.tensor([[-0.8, 0.2, 0.6], [0.1, -0.4, 0.9], [0.3, -0.7, -0.2]]) + 0.1
    b = 0.5 * a
    mu_a, mu_b = 0.1, 0.05
    var_a = 2.64 / 9
    var_b, cov = 0.25 * var_a, 0.5 * var_a
    c1, c2 = 0.02**2, 0.06**2  # (K1 * 2)^2, (K2 * 2)^2 for data range 2
    expected = (
        (2 * mu_a * mu_b + c1) * (2 * cov + c2) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    )  # ~0.6465
    got = ssim(a[None, None], b[None, None], window=3, sigma=1e6).item()
    assert got == pytest.approx(expected, abs=1e-5)


def test_shape_mismatch_is_clear():
    with pytest.raises(ValueError, match="one shape"):
        psnr(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 5))


def test_frechet_known_answers():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 4))
    assert abs(frechet_distance(a, a)) < 1e-6
    shift = np.array([1.0, -2.0, 0.0, 0.5])
    assert frechet_distance(a, a + shift) == pytest.approx(float(shift @ shift), abs=1e-6)
    # scaling by s: trace term (1 - s)^2 * tr(S)
    s = 2.0
    cov = np.cov(a, rowvar=False)
    expected = (1 - s) ** 2 * np.trace(cov) + (s - 1) ** 2 * float(a.mean(0) @ a.mean(0))
    assert frechet_distance(a, s * a) == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="equal D"):
        frechet_distance(a, a[:, :3])


def test_frechet_needs_at_least_two_rows():
    with pytest.raises(ValueError, match="`features_a` must hold at least 2 rows, got 1"):
        frechet_distance(np.zeros((1, 3)), np.ones((5, 3)))
    with pytest.raises(ValueError, match="`features_b` must hold at least 2 rows, got 0"):
        frechet_distance(np.ones((5, 3)), np.zeros((0, 3)))


def test_frechet_of_no_numbers_is_named():
    """A string was read as a 0-d array: "must be (N, D) with equal D, got () and ()"
    (session 57)."""
    with pytest.raises(TypeError, match=r"`features_a` must be an \(N, D\) tensor or array of "
                       r"numbers, got str$"):  # fmt: skip
        frechet_distance("real.npy", np.ones((5, 3)))
    with pytest.raises(TypeError, match=r"`features_b` .* got list of <U1$"):
        frechet_distance(np.ones((5, 3)), [["a", "b", "c"]] * 5)
    assert frechet_distance([[0, 1], [1, 0], [1, 1]], np.eye(2)[[0, 1, 1]]) >= 0  # int lists


@pytest.mark.parametrize(("side", "window"), [(1, 1), (2, 1), (4, 3), (10, 9), (11, 11), (12, 11)])
def test_ssim_fits_its_window_to_small_images(side, window):
    g = torch.Generator().manual_seed(side)
    a = torch.rand(2, 1, side, side, generator=g) * 2 - 1
    b = torch.rand(2, 1, side, side, generator=g) * 2 - 1
    assert torch.equal(ssim(a, b), ssim(a, b, window=window))
    if window > 1:  # the fitted window is the largest that fits, not any smaller one
        assert not torch.allclose(ssim(a, b), ssim(a, b, window=window - 2))
    with pytest.raises(ValueError, match=f"`window` must be between 1 and the images' side {side}"):
        ssim(a, b, window=side + 1)


def test_ssim_of_constant_small_images_is_the_luminance_term():
    b = torch.full((1, 1, 4, 4), 0.5)
    c1 = (0.01 * 2) ** 2
    expected = (2 * 0.5 * -0.5 + c1) / (0.25 + 0.25 + c1)  # as for large constant images
    assert torch.allclose(ssim(b, -b), torch.tensor([expected]), atol=1e-4)  # float32 var


def test_frechet_is_never_negative_and_names_nan_rows():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(20, 64))  # fewer rows than dimensions: rounding went below 0
    assert frechet_distance(a, a) >= 0.0
    b = a.copy()
    b[3, 5] = np.nan
    with pytest.raises(ValueError, match=r"`features_b` holds NaN.*1 of 20 rows.*\[3\]"):
        frechet_distance(a, b)


def test_images_on_another_scale_are_refused_not_scored():
    """The metrics assume data range 2: uint8 images once failed inside torch and [0, 255]
    floats were scored on the wrong scale without a word."""
    g = torch.Generator().manual_seed(0)
    a = torch.rand(2, 1, 16, 16, generator=g) * 2 - 1
    b = torch.rand(2, 1, 16, 16, generator=g) * 2 - 1
    raw_a, raw_b = (a + 1) * 127.5, (b + 1) * 127.5
    for metric in (psnr, ssim, l1_distance):
        with pytest.raises(TypeError, match=r"`a` must be a floating-point tensor.*uint8"):
            metric(raw_a.to(torch.uint8), raw_b.to(torch.uint8))
        with pytest.raises(ValueError, match=r"`a` must have values in \[-1, 1\].*raw pixel"):
            metric(raw_a, raw_b)
        with pytest.raises(ValueError, match="`b` contains NaN"):
            metric(a, b.clone().fill_(float("nan")))
    # a generator without tanh overshoots a little: still scored
    assert torch.isfinite(psnr(1.5 * a, b)).all()
    with pytest.raises(TypeError, match=r"`window` must be an int >= 1, got 2.5"):
        ssim(a, b, window=2.5)
    assert torch.equal(ssim(a, b, window=np.int64(5)), ssim(a, b, window=5))
    with pytest.raises(ValueError, match="`sigma` must be a number in \\(0"):
        ssim(a, b, sigma=0.0)


def test_frechet_of_rank_one_covariances_is_exact():
    """Known answer: a's covariance has rank 1 (two distinct rows), so (S_a S_b)^(1/2) has the
    single nonzero eigenvalue sqrt(tr(S_a S_b)) and the distance is
    |mu_a - mu_b|^2 + tr S_a + tr S_b - 2 sqrt(tr(S_a S_b)). scipy's sqrtm returns non-finite
    entries for this singular product, and the usual retry with 1e-6 added to both
    covariances was 2.4e-3 off (3.8569 for 3.8593)."""
    a = np.array([[-1.0, 1.0, 1.0], [1.0, 1.0, -1.0], [-1.0, 1.0, 1.0]])
    b = np.array([[1.0, 1.0, 0.0], [1.0, -1.0, -1.0], [-1.0, -1.0, 1.0]])
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    diff = a.mean(0) - b.mean(0)
    expected = (
        diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2 * math.sqrt(np.trace(cov_a @ cov_b))
    )
    assert frechet_distance(a, b) == pytest.approx(expected, abs=1e-9)


def test_frechet_of_sets_in_one_plane_is_exact():
    """Known answer: a spans x with variance 2, b spans x + y with covariance [[2, 2], [2, 2]]
    in that plane; equal means, tr S_a = 2, tr S_b = 4, S_a S_b has the single eigenvalue 4:
    2 + 4 - 2 * 2 = 2, with both covariances singular."""
    a = np.array([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]])
    b = np.array([[1.0, 1.0, 0.0], [-1.0, -1.0, 0.0]])
    assert frechet_distance(a, b) == pytest.approx(2.0, abs=1e-9)


def test_frechet_of_full_rank_sets_matches_the_matrix_square_root():
    """Where scipy's sqrtm of S_a S_b is well defined, Tr of it gives the same distance."""
    from scipy import linalg

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(50, 6)), rng.normal(0.3, 1.5, size=(40, 6)) @ rng.normal(size=(6, 6))
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    diff = a.mean(0) - b.mean(0)
    tr_sqrt = np.trace(linalg.sqrtm(cov_a @ cov_b)).real
    expected = diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2 * tr_sqrt
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)


def test_frechet_of_one_feature_is_the_gaussians_closed_form():
    """D = 1: (mu_a - mu_b)^2 + (s_a - s_b)^2 with s the standard deviations; a = (0, 2),
    b = (1, 5): means 1 and 3, variances 2 and 8, so 4 + (sqrt 2 - sqrt 8)^2 = 4 + 2 = 6 (np.cov
    returned a 0-d array and the trace failed)."""
    assert frechet_distance(np.array([[0.0], [2.0]]), np.array([[1.0], [5.0]])) == pytest.approx(
        6.0
    )


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_psnr_of_identical_images_is_finite_in_every_dtype(dtype):
    """The 1e-12 floor is 0 in float16: identical images gave inf, and a summary's mean
    PSNR was written as null."""
    s = torch.zeros(2, 1, 4, 4, dtype=dtype)
    out = psnr(s, s)
    assert out.dtype == dtype
    assert out.float().tolist() == pytest.approx([126.02] * 2, abs=0.5)


def test_unit_range_images_are_noticed_and_mixed_dtypes_are_promoted():
    """[0, 1] images gave a PSNR 6 dB too high without a word (deletion_auc warned on the
    same input); float64 beside float32 crashed SSIM's window with torch's own error."""
    from cfx.errors import Notice

    g = torch.Generator().manual_seed(0)
    a = torch.rand(2, 1, 16, 16, generator=g)
    b = (a + 0.1 * torch.rand(2, 1, 16, 16, generator=g)).clamp(0, 1)
    with pytest.warns(Notice, match=r"no pixel of `a` or `b` is below 0.*2x - 1"):
        unit = psnr(a, b)
    assert torch.allclose(unit, psnr(2 * a - 1, 2 * b - 1) + 20 * math.log10(2), atol=1e-4)
    x, y = 2 * a - 1, 2 * b - 1
    assert torch.allclose(ssim(x.double(), y), ssim(x, y).double(), atol=1e-5)
    assert psnr(x, y.double()).dtype == psnr(x.double(), y).dtype == torch.float64


def test_half_precision_ssim_is_the_float32_figure_and_frechet_takes_bfloat16():
    """SSIM's E[x^2] - mu^2 cancelled in bfloat16: 1.18 for a pair whose float64 SSIM is 0.42,
    above its own [-1, 1] range; numpy refused bfloat16 features for the Fréchet distance
    ('Got unsupported ScalarType BFloat16')."""
    g = torch.Generator().manual_seed(0)
    a = torch.rand(4, 1, 32, 32, generator=g) * 2 - 1
    b = (a + 0.3 * torch.randn(4, 1, 32, 32, generator=g)).clamp(-1, 1)
    want = ssim(a.double(), b.double())
    for dtype, tol in ((torch.float16, 2e-3), (torch.bfloat16, 2e-2)):
        got = ssim(a.to(dtype), b.to(dtype))
        assert got.dtype == dtype
        # the inputs' own rounding moves the figure a little; the cancellation moved it 0.76
        assert torch.allclose(got.double(), want, atol=tol)
    feats_a, feats_b = torch.randn(50, 4, generator=g), torch.randn(50, 4, generator=g) + 0.5
    want_fd = frechet_distance(feats_a.bfloat16().float(), feats_b.bfloat16().float())
    assert frechet_distance(feats_a.bfloat16(), feats_b.bfloat16()) == pytest.approx(want_fd)


def test_ssim_of_one_window_written_out():
    """On 11x11 images the valid region is one window: SSIM is Wang et al.'s formula with
    Gaussian weights of sigma 1.5 over the whole image, written out here in numpy. Only a
    constant image's value pinned the window before (a session-55 audit found a 10 % wider
    sigma caught by float32 rounding alone)."""
    g = torch.Generator().manual_seed(3)
    a = torch.rand(2, 1, 11, 11, generator=g, dtype=torch.float64) * 2 - 1
    b = 0.6 * a + 0.4 * (torch.rand(2, 1, 11, 11, generator=g, dtype=torch.float64) * 2 - 1)
    t = np.arange(11) - 5
    w = np.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / (2 * 1.5**2))
    w /= w.sum()
    c1, c2 = (0.01 * 2) ** 2, (0.03 * 2) ** 2  # data range 2: images in [-1, 1]
    want = []
    for x, y in zip(a[:, 0].numpy(), b[:, 0].numpy(), strict=True):
        mx, my = (w * x).sum(), (w * y).sum()
        vx, vy = (w * x * x).sum() - mx**2, (w * y * y).sum() - my**2
        cov = (w * x * y).sum() - mx * my
        want.append((2 * mx * my + c1) * (2 * cov + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    assert 0.3 < min(want) < max(want) < 0.95  # neither trivial end
    assert ssim(a, b).tolist() == pytest.approx(want, abs=1e-9)


def test_ssim_refuses_channels_last_images():
    """(B, H, W, C) images were read as C = H rows of width 1: a 1-pixel window, luminance
    alone, a plausible wrong number (0.67 for a pair whose SSIM is 0.49; session-55 audit)."""
    a = torch.rand(2, 1, 16, 16) * 2 - 1
    with pytest.raises(ValueError, match=r"looks channels last .* a.permute\(0, 3, 1, 2\)"):
        ssim(a.permute(0, 2, 3, 1), a.permute(0, 2, 3, 1))
    assert ssim(a, a).tolist() == pytest.approx([1.0, 1.0])
