"""Known answers for GAN inversion on a linear generator.

G(z) = A z on 4x4 images with A (16 x 3) of full column rank, so G(z) = G(z*) only at z = z*:
with no prior, every loss term of :func:`cfx.inversion.invert` is zero exactly at z*, and
nowhere else, so the optimisation must find z*. The toy's ``encode`` is the pseudo-inverse,
which maps G(z*) back to z* up to rounding.
"""

import math

import pytest
import torch
from torch import nn

from cfx.inversion import invert, lpips_available
from tests.trajectory.toy import LinearGenerator

Z_STAR = torch.tensor([[1.0, -2.0, 0.5], [-1.5, 0.5, 2.0]])  # (B, 3): the known latents


class DecodeOnly(nn.Module):
    """The toy's linear generator without ``encode`` (and without ``encoder``)."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.A = nn.Parameter(torch.randn(16, 3, generator=g) * 0.1)

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return (3,)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return (z @ self.A.T).view(-1, 1, 4, 4)


class WithEncoderNet(LinearGenerator):
    """The toy with an ``nn.Sequential`` ``encoder`` (whose activations serve as perceptual
    features) next to its pseudo-inverse ``encode``."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(5)
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3))
        with torch.no_grad():
            for p in self.encoder.parameters():
                p.copy_(torch.randn(p.shape, generator=g))


class NonSequentialEncoder(LinearGenerator):
    """An ``encoder`` attribute that is a module but not an ``nn.Sequential``."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Linear(16, 3)


class WrongEncode(LinearGenerator):
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(x.shape[0], 5)  # latent_shape is (3,)


class BatchNormGenerator(LinearGenerator):
    """The toy followed by a BatchNorm2d: in training mode every decode would move its
    running statistics."""

    def __init__(self) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.bn(super().decode(z))


class OnePixel(nn.Module):
    """G(z) = z as a 1x1 image: the inversion loss is closed form."""

    latent_shape = (1,)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z.view(-1, 1, 1, 1)


class Overshoots(OnePixel):
    """One pixel with an encoder 0.1 from the exact latent."""

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) + 0.1


def _images(g: nn.Module) -> torch.Tensor:
    with torch.no_grad():
        x = g.decode(Z_STAR)  # (2, 1, 4, 4)
    assert float(x.abs().max()) <= 1.0  # inside the cfx image range without clamping
    return x


def _psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """PSNR in dB for images in [-1, 1] (peak-to-peak 2), written out."""
    mse = (a - b).pow(2).flatten(1).mean(1)
    return 10.0 * torch.log10(4.0 / mse)


# --- the optimisation finds the known latents -------------------------------------------------


def test_latent_optimisation_recovers_the_known_latents():
    g = DecodeOnly()
    x = _images(g)
    kw = {"lr": 0.05, "prior_weight": 0.0, "perceptual": "none"}
    one = invert(g, x, steps=1, **kw)
    many = invert(g, x, steps=300, **kw)
    # from z = 0 one Adam step of 0.05 cannot get near z* (|z*| >= 2 in some coordinate)
    assert float((one.latents - Z_STAR).abs().max()) > 1.0
    assert float((many.latents - Z_STAR).abs().max()) < 0.01
    assert bool((many.psnr > one.psnr + 30.0).all())
    assert bool((many.psnr > 60.0).all())
    assert many.steps == 300 and many.perceptual == "none"
    # no encoder: nothing to compare against
    assert bool(many.encoder_psnr.isnan().all())


def test_without_encoder_the_search_starts_from_the_zero_latent():
    g = DecodeOnly()
    x = _images(g)
    # lr is tiny: after one step the best latent seen is still (within 1e-6 of) zero
    res = invert(g, x, steps=1, lr=1e-9, prior_weight=0.0, perceptual="none")
    assert torch.allclose(res.latents, torch.zeros(2, 3), atol=1e-6)
    # G(0) = 0, so the PSNR is that of a black image against x
    expected = 10.0 * torch.log10(4.0 / x.pow(2).flatten(1).mean(1))
    assert torch.allclose(res.psnr, expected, atol=1e-3)


def test_encoder_perceptual_term_keeps_the_same_optimum():
    # the encoder distance is zero at G(z) = x, so it cannot move the optimum away from z*
    g = WithEncoderNet()
    x = _images(g)
    res = invert(g, x, steps=300, lr=0.05, prior_weight=0.0, perceptual="encoder")
    assert res.perceptual == "encoder"
    assert float((res.latents - Z_STAR).abs().max()) < 0.01


class OnePixelWithEncoder(OnePixel):
    """One pixel with an ``encoder`` that doubles it: the encoder distance is
    ``mean((2a - 2b)^2) = 4 (a - b)^2`` (one block, no activation: one tap)."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(_Times(2.0))


def test_the_perceptual_term_moves_the_optimum_to_the_closed_form():
    """Pins that the perceptual term enters the loss (an audit found it unpinned: dropping it
    from the loss failed no test). With a prior the optimum is not G(z) = x, so the term
    moves it. loss(z) = (z - x)^2 + pw * 4 (z - x)^2 + lam z^2 with x = -0.5, lam = 1 and
    pw = 0.75: (1 + 3)(z - x) + z = 0, so z = 4x / 5 = -0.4; without the term z = x / 2 =
    -0.25. The iterates move from 0 towards the optimum, above x, so the best latent seen
    (the lowest pixel error) is the last one."""
    x = torch.full((1, 1, 1, 1), -0.5)
    kw = {"steps": 600, "lr": 0.005, "l1_weight": 0.0, "prior_weight": 1.0}
    res = invert(OnePixelWithEncoder(), x, perceptual="encoder", perceptual_weight=0.75, **kw)
    assert res.perceptual == "encoder"
    assert res.latents.item() == pytest.approx(-0.4, abs=0.01)
    plain = invert(OnePixelWithEncoder(), x, perceptual="none", **kw)
    assert plain.latents.item() == pytest.approx(-0.25, abs=0.01)


def test_the_best_latent_seen_is_kept_even_when_the_optimiser_overshoots():
    # the encoder starts 0.1 from z*; Adam's first step moves every coordinate by exactly lr
    # (m / sqrt(v) = sign(grad)), so lr = 5 lands ~5 from z*: the returned latent is the
    # encoder's (the best seen), not the last iterate
    class NearlyRight(LinearGenerator):
        def encode(self, x: torch.Tensor) -> torch.Tensor:
            return Z_STAR + 0.1

    g = NearlyRight()
    x = _images(g)
    res = invert(g, x, steps=1, lr=5.0, prior_weight=0.0, perceptual="none")
    assert torch.equal(res.latents, Z_STAR + 0.1)
    assert torch.allclose(res.psnr, res.encoder_psnr)


def test_the_best_latent_seen_is_kept_over_two_overshooting_steps():
    # x = 0.5, the encoder's latent 0.6. Adam's first step moves z by lr = 5, to -4.4; the
    # second comes back only part way, to about -0.75: both iterates are farther from x than
    # the encoder's latent, which must come back
    x = torch.full((1, 1, 1, 1), 0.5)
    res = invert(
        Overshoots(), x, steps=2, lr=5.0, prior_weight=0.0, l1_weight=0.0, perceptual="none"
    )
    assert res.latents.item() == pytest.approx(0.6)


def test_the_prior_and_l1_terms_give_the_closed_form_optimum():
    # loss(z) = (z - x)^2 + w |z - x| + lam z^2 with x = 0.5, w = 0.5, lam = 1:
    # for z < x, 2 (z - x) - w + 2 lam z = 0, so z = (2x + w) / (2 + 2 lam) = 0.375
    x = torch.full((1, 1, 1, 1), 0.5)
    res = invert(
        OnePixel(), x, steps=600, lr=0.005, l1_weight=0.5, prior_weight=1.0, perceptual="none"
    )
    assert res.latents.item() == pytest.approx(0.375, abs=0.01)


# --- steps=0 and the encoder ------------------------------------------------------------------


def test_zero_steps_returns_the_encoder_latents():
    g = LinearGenerator()
    x = _images(g)
    res = invert(g, x, steps=0, perceptual="none")
    with torch.no_grad():
        expected = g.encode(x)
    assert torch.equal(res.latents, expected)
    # the pseudo-inverse of a full-column-rank A recovers z* from G(z*)
    assert torch.allclose(res.latents, Z_STAR, atol=1e-4)
    assert res.steps == 0
    assert torch.allclose(res.psnr, res.encoder_psnr)
    assert bool(res.encoder_psnr.isfinite().all())


def test_zero_steps_draw_no_progress_bar(capsys):
    """The encoder alone has no loop: an 'inverting: 0step' bar was drawn for it."""
    g = LinearGenerator()
    invert(g, _images(g), steps=0, perceptual="none", show_progress=True)
    assert "inverting" not in capsys.readouterr().err
    invert(g, _images(g), steps=2, perceptual="none", show_progress=True)
    assert "inverting" in capsys.readouterr().err


def test_zero_steps_report_no_perceptual_loss_as_none_ran():
    g = WithEncoderNet()
    assert invert(g, _images(g), steps=0, perceptual="encoder").perceptual == "none"
    assert invert(g, _images(g), steps=1, perceptual="encoder").perceptual == "encoder"
    with pytest.raises(ValueError, match=r"`perceptual` must be 'auto', .* got 'vgg'"):
        invert(g, _images(g), steps=0, perceptual="vgg")  # a typo is an error at 0 steps too


def test_a_zero_perceptual_weight_runs_and_reports_no_perceptual_loss():
    """perceptual_weight=0 reported 'encoder' for a term multiplied by 0 (and ran the encoder
    every step; with LPIPS cached it would load LPIPS for nothing)."""
    g = WithEncoderNet()
    x = _images(g)
    res = invert(g, x, steps=3, perceptual="encoder", perceptual_weight=0.0)
    assert res.perceptual == "none"
    none = invert(g, x, steps=3, perceptual="none")
    assert torch.equal(res.latents, none.latents)


def test_zero_steps_without_encode_is_an_error():
    g = DecodeOnly()
    with pytest.raises(ValueError, match="`steps=0` \\(an explainer's `inversion_steps=0`\\)"):
        invert(g, _images(g), steps=0)


def test_result_prints_as_one_line():
    g = LinearGenerator()
    res = invert(g, _images(g), steps=0, perceptual="none")
    text = repr(res)
    assert "\n" not in text and "tensor" not in text
    assert text.startswith(f"InversionResult(images={res.latents.shape[0]}, latents=")
    assert f"psnr_db={float(res.psnr.mean()):.1f} (mean)" in text and "steps=0" in text


def test_encoder_with_the_wrong_latent_shape_is_named():
    g = WrongEncode()
    with pytest.raises(ValueError, match=r"`generator\.encode`") as info:
        invert(g, _images(g), steps=2)
    assert "(2, 3)" in str(info.value) and "(2, 5)" in str(info.value)


class WrongLatentShape(DecodeOnly):
    """Says latents of 5 numbers; its decode multiplies by a (16, 3) matrix."""

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return (5,)


def test_a_latent_shape_decode_cannot_take_is_named():
    """PyTorch's "mat1 and mat2 shapes cannot be multiplied (1x5 and 3x16)" named neither
    the generator nor its latent_shape (session-55 audit)."""
    with pytest.raises(
        ValueError, match=r"`decode` failed on a latent of its `latent_shape` \(5,\)"
    ):
        invert(WrongLatentShape(), torch.zeros(1, 1, 4, 4), steps=2)


# --- which perceptual loss ran ----------------------------------------------------------------


@pytest.mark.skipif(lpips_available(), reason="LPIPS weights are cached: 'auto' picks LPIPS")
def test_auto_perceptual_without_encoder_is_none():
    g = DecodeOnly()
    res = invert(g, _images(g), steps=2, perceptual="auto")
    assert res.perceptual == "none"


@pytest.mark.skipif(lpips_available(), reason="LPIPS weights are cached: 'auto' picks LPIPS")
def test_auto_perceptual_with_a_sequential_encoder_is_encoder():
    g = WithEncoderNet()
    res = invert(g, _images(g), steps=2, perceptual="auto")
    assert res.perceptual == "encoder"


@pytest.mark.skipif(lpips_available(), reason="LPIPS weights are cached: 'auto' picks LPIPS")
def test_auto_perceptual_ignores_an_encoder_that_is_not_sequential():
    g = NonSequentialEncoder()
    res = invert(g, _images(g), steps=2, perceptual="auto")
    assert res.perceptual == "none"


def test_explicit_perceptual_choices_are_recorded():
    g = WithEncoderNet()
    x = _images(g)
    assert invert(g, x, steps=2, perceptual="encoder").perceptual == "encoder"
    assert invert(g, x, steps=2, perceptual="none").perceptual == "none"


def test_encoder_perceptual_without_an_encoder_is_an_error():
    g = DecodeOnly()
    with pytest.raises(ValueError, match="`perceptual"):
        invert(g, _images(g), steps=2, perceptual="encoder")


def test_unknown_perceptual_choice_is_an_error():
    g = DecodeOnly()
    with pytest.raises(ValueError, match="`perceptual`") as info:
        invert(g, _images(g), steps=2, perceptual="vgg")  # type: ignore[arg-type]
    assert "'vgg'" in str(info.value)


@pytest.mark.skipif(lpips_available(), reason="LPIPS weights are cached: 'lpips' would run")
def test_lpips_without_cached_weights_is_an_error():
    g = DecodeOnly()
    with pytest.raises(ValueError, match="`perceptual='lpips'`"):
        invert(g, _images(g), steps=2, perceptual="lpips")


def test_building_lpips_leaves_the_global_generator_as_it_was(monkeypatch):
    """lpips.LPIPS initialises its layers from torch's global generator before loading the
    weights, so wherever the AlexNet weights were cached inversion (and every explainer,
    cfx trajectory, augmentation) moved the caller's random stream (session-54 audit). A
    stand-in LPIPS that draws the same way: the stream is as it was, and it is used."""
    import lpips

    import cfx.inversion

    class DrawingLPIPS(nn.Module):
        def __init__(self, net: str, verbose: bool) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 2, 3)  # drawn from the global generator

        def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return (self.conv(a) - self.conv(b)).pow(2).mean((1, 2, 3), keepdim=True)

    monkeypatch.setattr(lpips, "LPIPS", DrawingLPIPS)
    monkeypatch.setattr(cfx.inversion, "lpips_available", lambda: True)
    g = DecodeOnly()
    x = _images(g)
    torch.manual_seed(3)
    before = torch.random.get_rng_state()
    res = invert(g, x, steps=2, perceptual="lpips")
    assert res.perceptual == "lpips"
    assert torch.equal(torch.random.get_rng_state(), before)


# --- the generator is left as it was ----------------------------------------------------------


def test_generator_parameters_mode_and_flags_are_restored():
    g = WithEncoderNet()
    x = _images(g)
    g.train()
    g.encoder[1].weight.requires_grad_(False)  # a mix of flags, restored one by one
    flags = [p.requires_grad for p in g.parameters()]
    assert flags.count(False) == 1
    before = [p.detach().clone() for p in g.parameters()]
    invert(g, x, steps=5, perceptual="encoder")
    assert g.training and all(m.training for m in g.modules())
    assert [p.requires_grad for p in g.parameters()] == flags
    for p0, p1 in zip(before, g.parameters(), strict=True):
        assert torch.equal(p0, p1)
    # the optimisation differentiated through the generator: no gradient may leak into it
    assert all(p.grad is None for p in g.parameters())


def test_submodule_modes_are_restored():
    g = BatchNormGenerator().eval()
    x = _images(g)  # BatchNorm in eval mode with fresh statistics: the identity, here
    g.train()
    g.bn.eval()  # a frozen BatchNorm inside a generator in training mode
    invert(g, x, steps=3, perceptual="none")
    assert g.training and not g.bn.training


def test_batchnorm_running_statistics_are_not_updated():
    g = BatchNormGenerator().eval()
    x = _images(g)  # BatchNorm in eval mode with fresh statistics: the identity, here
    g.train()
    assert int(g.bn.num_batches_tracked) == 0
    mean, var = g.bn.running_mean.clone(), g.bn.running_var.clone()
    tracked = int(g.bn.num_batches_tracked)
    invert(g, x, steps=3, perceptual="none")
    assert torch.equal(g.bn.running_mean, mean)
    assert torch.equal(g.bn.running_var, var)
    assert int(g.bn.num_batches_tracked) == tracked
    assert g.training


# --- the result -------------------------------------------------------------------------------


def test_result_shapes_and_reconstructions():
    g = LinearGenerator()
    x = _images(g) * 0.9 + 0.05  # not exactly on the generator's range: PSNR is finite
    res = invert(g, x, steps=4, perceptual="none")
    assert res.latents.shape == (2, 3)
    assert res.reconstructions.shape == (2, 1, 4, 4)
    assert res.psnr.shape == (2,) and res.encoder_psnr.shape == (2,)
    with torch.no_grad():
        assert torch.equal(res.reconstructions, g.decode(res.latents))
    assert torch.allclose(res.psnr, _psnr(res.reconstructions, x), atol=1e-4)
    assert not res.latents.requires_grad and not res.reconstructions.requires_grad
    assert res.seconds >= 0.0 and math.isfinite(res.seconds)


def test_result_is_frozen():
    import dataclasses

    g = LinearGenerator()
    res = invert(g, _images(g), steps=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.steps = 3  # type: ignore[misc]


# --- bad inputs name the argument -------------------------------------------------------------


def test_x_with_nan_is_named():
    g = LinearGenerator()
    x = _images(g).clone()
    x[1, 0, 2, 2] = float("nan")
    with pytest.raises(ValueError, match="`x` contains NaN"):
        invert(g, x, steps=2)


def test_x_out_of_range_is_named():
    g = LinearGenerator()
    with pytest.raises(ValueError, match=r"`x` must have values in \[-1, 1\]"):
        invert(g, torch.full((2, 1, 4, 4), 3.0), steps=2)


@pytest.mark.parametrize("shape", [(2, 1, 5, 5), (2, 3, 4, 4)])
def test_x_with_the_wrong_image_shape_names_x_and_the_generator_shape(shape):
    g = LinearGenerator()
    with pytest.raises(ValueError, match="`x`") as info:
        invert(g, torch.zeros(shape), steps=2)
    assert "(B, 1, 4, 4)" in str(info.value)
    assert str(shape) in str(info.value)


@pytest.mark.parametrize(
    ("kw", "exc", "match"),
    [
        ({"steps": -1}, ValueError, "`steps`"),
        ({"steps": 1.5}, TypeError, "`steps`"),
        ({"steps": True}, TypeError, "`steps`"),
        ({"lr": 0}, ValueError, "`lr`"),
        ({"lr": -0.1}, ValueError, "`lr`"),
        ({"l1_weight": -1}, ValueError, "`l1_weight`"),
        ({"perceptual_weight": -1}, ValueError, "`perceptual_weight`"),
        ({"prior_weight": float("nan")}, ValueError, "`prior_weight`"),
    ],
)
def test_bad_numbers_are_named(kw, exc, match):
    g = LinearGenerator()
    with pytest.raises(exc, match=match):
        invert(g, _images(g), **kw)


def test_images_in_another_dtype_than_the_generator_are_named():
    """float64 images with a float32 generator gave PyTorch's "expected m1 and m2 to have the
    same dtype", which names neither."""
    g = DecodeOnly()
    x = g.decode(Z_STAR).detach().double()
    with pytest.raises(TypeError, match=r"`x` is torch.float64.*generator's weights are torch.fl"):
        invert(g, x, steps=2)
    with pytest.raises(TypeError, match=r"`generator` must have `latent_shape`.*got Linear"):
        invert(nn.Linear(3, 16), x.float(), steps=2)


def test_a_generator_missing_part_of_the_protocol_is_told_which_part():
    """A decoder with a forward and a latent_shape was told it "must have latent_shape and
    decode", with its latent_shape printed: which part was missing went unsaid."""

    class ForwardOnly(nn.Linear):
        latent_shape = (3,)

    x = DecodeOnly().decode(Z_STAR).detach()
    with pytest.raises(TypeError, match=r"missing `decode` \(a model whose forward maps"):
        invert(ForwardOnly(3, 16), x, steps=2)
    with pytest.raises(TypeError, match=r"got Linear, missing `latent_shape` and `decode`"):
        invert(nn.Linear(3, 16), x, steps=2)

    class EmptyLatent(DecodeOnly):
        latent_shape = (0,)  # type: ignore[assignment]

    with pytest.raises(TypeError, match=r"with latent_shape \(0,\), missing a valid `latent"):
        invert(EmptyLatent(), x, steps=2)


# --- the decision term: a reconstruction that keeps the classifier's class --------------------
#
# x = A z* + r with r orthogonal to A's columns: the generator cannot draw r, so z* is the
# pixel-optimal latent. A logistic classifier s = w . img + b reads class 1 mostly from r, so
# it puts x in class 1 (p = 0.9) and G(z*) in class 0 (p(class 1) = 0.2): the inversion
# loses the evidence the classifier used, the defect the decision term is for. With only the
# squared error (mean over the 16 pixels) and the decision term weighted by c_w, the
# stationary point is z = z* + c v, v = (A^T A)^-1 A^T w, where the scalar c solves
# c = 8 c_w (p_x - sigmoid(s(G(z*)) + c w.Av)), found below with scipy, not with cfx.

P_SOURCE, P_PIXEL_OPTIMUM = 0.9, 0.2


class Logistic(nn.Module):
    """Two logits (0, w . img + b)."""

    def __init__(self, w: torch.Tensor, b: float) -> None:
        super().__init__()
        self.w = nn.Parameter(w)
        self.b = nn.Parameter(torch.tensor(b))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.flatten(1) @ self.w + self.b
        return torch.stack([torch.zeros_like(s), s], 1)


def _decision_toy():
    """The generator, one image x (1, 1, 4, 4), z* (1, 3), the classifier, v (3,) and w.Av."""
    g = DecodeOnly()
    a = g.A.detach().double()
    z_star = Z_STAR[:1].double()
    gen = torch.Generator().manual_seed(3)
    r = torch.randn(16, generator=gen, dtype=torch.float64)
    r = r - a @ torch.linalg.solve(a.T @ a, a.T @ r)  # orthogonal to A's columns
    r = 0.5 * r / r.norm()
    u = a[:, 0] / a[:, 0].norm()  # a unit direction the generator can draw
    s_x, s_star = (math.log(p / (1 - p)) for p in (P_SOURCE, P_PIXEL_OPTIMUM))
    w = (s_x - s_star) * r / r.dot(r) + u  # w . r moves p(class 1) from 0.2 to 0.9
    b = s_star - float(w @ (a @ z_star[0]))
    x = (a @ z_star[0] + r).float().view(1, 1, 4, 4)
    assert float(x.abs().max()) <= 1.0
    v = torch.linalg.solve(a.T @ a, a.T @ w)
    assert float(w @ (a @ v)) == pytest.approx(1.0)  # |u|^2: w's part the generator can draw
    return g, x, z_star.float(), Logistic(w.float(), b), v.float(), float(w @ (a @ v))


def _stationary_latent(z_star: torch.Tensor, v: torch.Tensor, gain: float, weight: float):
    """z* + c v with c = 8 weight (p_x - sigmoid(s(G(z*)) + c gain)), by Brent's method. The
    loss is strictly convex (A has full column rank, the KL is convex in the logit) and the
    gap below strictly increases in c (gain = |projection of w on A's columns|^2 >= 0), so
    this root is the one minimum."""
    from scipy.optimize import brentq

    s_star = math.log(P_PIXEL_OPTIMUM / (1 - P_PIXEL_OPTIMUM))

    def gap(c: float) -> float:
        return c - 8 * weight * (P_SOURCE - 1 / (1 + math.exp(-(s_star + c * gain))))

    c = brentq(gap, 0.0, 8 * weight)  # gap(0) < 0 < gap(8 weight)
    return z_star + c * v


def test_without_the_decision_term_the_reconstruction_changes_class():
    g, x, z_star, clf, _, _ = _decision_toy()
    res = invert(g, x, steps=600, lr=0.05, l1_weight=0.0, prior_weight=0.0, perceptual="none")
    assert float((res.latents - z_star).abs().max()) < 0.01
    with torch.no_grad():
        assert float(torch.softmax(clf(x), 1)[0, 1]) == pytest.approx(P_SOURCE, abs=1e-4)
        p_rec = float(torch.softmax(clf(res.reconstructions), 1)[0, 1])
    assert p_rec == pytest.approx(P_PIXEL_OPTIMUM, abs=0.01)


@pytest.mark.parametrize("weight", [0.1, 1.0])
def test_the_decision_term_finds_the_known_stationary_latent(weight):
    g, x, z_star, clf, v, gain = _decision_toy()
    expected = _stationary_latent(z_star, v, gain, weight)
    kw = {"lr": 0.05, "l1_weight": 0.0, "prior_weight": 0.0, "perceptual": "none"}
    res = invert(g, x, steps=1500, classifier=clf, classifier_weight=weight, **kw)
    assert float((res.latents - expected).abs().max()) < 0.01
    assert float((expected - z_star).abs().max()) > 0.1  # the term moved the optimum
    with torch.no_grad():
        p_rec = float(torch.softmax(clf(res.reconstructions), 1)[0, 1])
    if weight == 1.0:  # strong enough to keep the source's class
        assert p_rec > 0.5


def test_the_best_latent_is_chosen_by_pixel_error_plus_the_decision_term():
    # one Adam step of lr from z*: the pixel error grows, the decision term shrinks by more
    # (weight 1: the gradient is dominated by the term), so the stepped latent is the better
    _, x, z_star, clf, _, _ = _decision_toy()

    class AtOptimum(DecodeOnly):
        def encode(self, images: torch.Tensor) -> torch.Tensor:
            return z_star.expand(images.shape[0], -1)

    g2 = AtOptimum()
    kw = {"lr": 0.3, "l1_weight": 0.0, "prior_weight": 0.0, "perceptual": "none"}
    plain = invert(g2, x, steps=1, **kw)
    kept = invert(g2, x, steps=1, classifier=clf, classifier_weight=1.0, **kw)
    assert torch.equal(plain.latents, z_star)  # the encoder's latent: the pixel optimum
    assert not torch.equal(kept.latents, z_star)
    assert float(kept.psnr[0]) < float(plain.psnr[0])

    def fit(z: torch.Tensor) -> float:  # squared error + KL(p_x || p(G(z))), written out
        with torch.no_grad():
            rec = g2.decode(z)
            p, q = (torch.softmax(clf(i), 1)[0] for i in (x, rec))
        return float((rec - x).pow(2).mean() + (p * (p / q).log()).sum())

    assert fit(kept.latents) < fit(z_star)
    # Adam's first step is lr * sign(gradient); at z* only the decision term has a gradient,
    # w_c (q - p_x) A^T w with q < p_x, so the step is +lr * sign(A^T w)
    step = 0.3 * torch.sign(g2.A.detach().T @ clf.w.detach())
    assert torch.allclose(kept.latents, z_star + step, atol=1e-6)


def test_a_step_that_worsens_pixel_error_plus_decision_term_is_not_kept():
    # weight 0.01: the same step lowers the decision term by less than it raises the pixel
    # error (fit 0.0271 at z*, 0.0303 after; pixel error alone after the step, 0.0200, is
    # below z*'s fit: a comparison of pixel error with the fit would keep the step)
    _, x, z_star, clf, _, _ = _decision_toy()

    class AtOptimum(DecodeOnly):
        def encode(self, images: torch.Tensor) -> torch.Tensor:
            return z_star.expand(images.shape[0], -1)

    kw = {"lr": 0.3, "l1_weight": 0.0, "prior_weight": 0.0, "perceptual": "none"}
    res = invert(AtOptimum(), x, steps=1, classifier=clf, classifier_weight=0.01, **kw)
    assert torch.equal(res.latents, z_star)


def test_the_decision_term_acts_row_by_row():
    # row 2 is drawn by the generator exactly (G(z*_2)), so its pixel optimum is exact and
    # its decision term is zero there; row 1 is the toy's image with its known answer
    g, x, z_star, clf, v, gain = _decision_toy()
    with torch.no_grad():
        x2 = torch.cat([x, g.decode(Z_STAR[1:])])
    kw = {"lr": 0.05, "l1_weight": 0.0, "prior_weight": 0.0, "perceptual": "none"}
    res = invert(g, x2, steps=1500, classifier=clf, classifier_weight=1.0, **kw)
    expected = _stationary_latent(z_star, v, gain, 1.0)
    assert float((res.latents[:1] - expected).abs().max()) < 0.01
    assert float((res.latents[1:] - Z_STAR[1:]).abs().max()) < 0.01


def test_decision_weight_zero_changes_nothing():
    g, x, _, clf, _, _ = _decision_toy()
    kw = {"steps": 20, "perceptual": "none"}
    assert torch.equal(
        invert(g, x, classifier=clf, classifier_weight=0.0, **kw).latents,
        invert(g, x, **kw).latents,
    )


def test_the_classifier_is_left_as_it_was():
    g, x, _, clf, _, _ = _decision_toy()
    clf.train()
    clf.b.requires_grad_(False)
    before = [p.detach().clone() for p in clf.parameters()]
    invert(g, x, steps=5, perceptual="none", classifier=clf)
    assert clf.training
    assert [p.requires_grad for p in clf.parameters()] == [True, False]
    for p0, p1 in zip(before, clf.parameters(), strict=True):
        assert torch.equal(p0, p1)
    assert all(p.grad is None for p in clf.parameters())


def test_the_classifier_runs_in_eval_mode():
    g, x, _, clf, _, _ = _decision_toy()
    modes = []

    class Recording(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = clf

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            modes.append(self.training)
            return self.inner(images)

    model = Recording().train()
    invert(g, x, steps=3, perceptual="none", classifier=model)
    assert modes and not any(modes)  # the source and every step
    assert model.training


def test_with_zero_steps_the_classifier_is_not_called():
    _, x, z_star, _, _, _ = _decision_toy()

    class AtOptimum(DecodeOnly):
        def encode(self, images: torch.Tensor) -> torch.Tensor:
            return z_star.expand(images.shape[0], -1)

    def refuse(images: torch.Tensor) -> torch.Tensor:
        raise AssertionError("called")

    res = invert(AtOptimum(), x, steps=0, classifier=refuse)
    assert torch.equal(res.latents, z_star)


def test_a_classifier_in_another_dtype_is_named():
    g, x, _, clf, _, _ = _decision_toy()
    with pytest.raises(TypeError, match=r"`x` is torch.float32.*classifier's weights"):
        invert(g, x, steps=2, classifier=clf.double())


def test_a_classifier_without_class_logits_is_named():
    g, x, _, _, _, _ = _decision_toy()
    with pytest.raises(ValueError, match="`classifier` returns one logit per image"):
        invert(g, x, steps=2, classifier=lambda images: images.flatten(1).sum(1))


def test_a_negative_decision_weight_is_named():
    g, x, _, clf, _, _ = _decision_toy()
    with pytest.raises(ValueError, match="`classifier_weight`"):
        invert(g, x, steps=2, classifier=clf, classifier_weight=-0.1)


def test_an_encoder_guess_far_outside_the_image_range_is_scored_not_refused():
    """The encoder-only PSNR is a diagnostic of generated images: a generator without tanh
    whose first guess decodes to 10x the input must not meet psnr's [0, 255] guard."""

    class Overshoot(torch.nn.Module):
        latent_shape = (16,)

        def decode(self, z):
            return z.view(-1, 1, 4, 4)

        def encode(self, x):
            return 10 * x.flatten(1)

    x = torch.linspace(-1, 1, 32).view(2, 1, 4, 4)
    res = invert(Overshoot(), x, steps=0)
    mse = (81 * x.pow(2)).flatten(1).mean(1)  # decode(encode(x)) - x = 9x
    assert torch.allclose(res.encoder_psnr, 10 * torch.log10(4 / mse), atol=1e-4)


def test_an_explainer_inverts_keeping_the_decision_when_asked(caplog):
    """``inversion_classifier_weight`` runs ``invert(..., classifier=f)`` for the start; the
    start notice tells a reconstruction that lost the source's class (row 1: source class 1,
    its pixel-optimal reconstruction class 0) from a source already in the target (row 0),
    and says what to do about it."""
    import logging

    from cfx.trajectory import GradientAscent, explain_in_chunks

    g, x, z_star, clf, _, _ = _decision_toy()
    with torch.no_grad():
        x2 = torch.cat([g.decode(z_star), x])  # row 0: a source the classifier calls 0
    expected = invert(g, x2, steps=300, classifier=clf, classifier_weight=1.0).latents
    plain = invert(g, x2, steps=300).latents
    assert float((expected - plain).abs().max()) > 0.05  # the term matters here

    def explainer(weight: float) -> GradientAscent:
        return GradientAscent(
            g, clf, steps=2, inversion_steps=300, inversion_classifier_weight=weight
        )

    with caplog.at_level(logging.WARNING):
        res = explainer(0.0).explain(x2, 0)
    assert torch.equal(res.inversion.latents, plain)
    assert res.already_in_target.tolist() == [True, True]
    assert "does not put the source itself in the target on rows [1]:" in caplog.text
    assert "--inversion-classifier-weight 0.01" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        chunked = explain_in_chunks(explainer(0.0), x2, 0, batch_size=1)
    assert chunked.already_in_target.tolist() == [True, True]
    assert "does not put the source itself in the target on rows [1]:" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):  # latents given: no inversion the option could fix
        explainer(0.0).explain(x2, 0, latents=plain)
    assert "invert with `cfx.invert(generator, x, classifier=classifier)`" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):  # too weak a term to keep row 1's decision
        explainer(1e-6).explain(x2, 0)
    assert "rows [1]:" in caplog.text and "(now 1e-06) keeps more" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        kept = explainer(1.0).explain(x2, 0)
    assert torch.equal(kept.inversion.latents, expected)
    assert kept.already_in_target.tolist() == [True, False]  # row 1 now starts in class 1
    assert "does not put the source itself" not in caplog.text
    with pytest.raises(ValueError, match="`inversion_classifier_weight` must be"):
        explainer(-1.0).explain(x2, 0)
    with pytest.raises(ValueError, match=r"it needs `inversion_steps` > 0, got 0"):
        GradientAscent(g, clf, inversion_steps=0, inversion_classifier_weight=0.01).explain(x2, 0)


def test_the_default_steps_are_the_explainers():
    """invert() ran 200 steps by default and the explainers 100, so the same images inverted
    by hand and by an explainer started their paths in different places."""
    import inspect

    from cfx.trajectory import GradientAscent, LocalisedAscent, MonotonePath

    steps = inspect.signature(invert).parameters["steps"].default
    for explainer in (GradientAscent, LocalisedAscent, MonotonePath):
        assert inspect.signature(explainer).parameters["inversion_steps"].default == steps


class _Times(nn.Module):
    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.factor * x


def test_encoder_distance_known_values():
    """Known answer. With activations, only their outputs are compared: for
    Flatten, ReLU, x2, ReLU the features are relu(x) and 2 relu(x); a = (1, -1, 2, 0) against
    b = 0 gives mean squared differences (1 + 0 + 4 + 0) / 4 = 1.25 and 4 * 1.25 = 5, averaged
    over the two taps: 3.125. Without activations every block is a tap: x2 then x3 give
    features 2a and 6a, (4 + 36) * mean(a^2) / 2 = 20 * 1.5 = 30."""
    from cfx.inversion import _encoder_fn

    a = torch.tensor([[1.0, -1.0, 2.0, 0.0]]).view(1, 1, 2, 2)
    b = torch.zeros_like(a)
    tapped = _encoder_fn(nn.Sequential(nn.Flatten(), nn.ReLU(), _Times(2.0), nn.ReLU()))
    assert tapped(a, b).tolist() == pytest.approx([3.125])
    assert tapped(b, a).tolist() == pytest.approx([3.125])  # symmetric
    blocks = _encoder_fn(nn.Sequential(_Times(2.0), _Times(3.0)))
    assert blocks(a, b).tolist() == pytest.approx([30.0])


class FlatDecode(DecodeOnly):
    """A generator whose ``decode`` returns flat vectors (B, 16), not images."""

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z @ self.A.T


class SigmoidDecode(DecodeOnly):
    """A generator ending in a sigmoid: images in [0, 1], not cfx's [-1, 1]."""

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(super().decode(z))


def test_a_decode_that_does_not_return_images_is_named():
    """A flat (1, 16) output gave "not enough values to unpack" from the shape check."""
    with pytest.raises(ValueError, match=r"`decode` must return images \(B, C, H, W\).*\(1, 16\)"):
        invert(FlatDecode(), torch.zeros(2, 1, 4, 4), steps=2)


def test_a_generator_with_no_pixel_below_zero_gets_a_notice(caplog):
    """G(0) = sigmoid(0) = 0.5 everywhere: no pixel below 0 and some above, the mark of a
    generator in [0, 1]. The linear toy decodes 0 to an image of zeros, which says nothing
    about the range and gets no notice."""
    x = torch.full((2, 1, 4, 4), 0.5)
    with caplog.at_level("WARNING"):
        invert(SigmoidDecode(), x, steps=1)
    assert "no pixel below 0 (values 0.5..0.5)" in caplog.text and "from_unit" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        invert(DecodeOnly(), _images(DecodeOnly()), steps=1)
    assert "no pixel below 0" not in caplog.text


def test_an_explainer_gives_the_generator_notice_once(caplog):
    """An explainer probes the generator before inverting and the inversion probes it again:
    as a Python warning the notice showed twice whenever the warnings registry was reset
    between the two (importing lpips does), and no caller could hold it."""
    from cfx.trajectory import GradientAscent
    from tests.trajectory.toy import LogisticClassifier

    x = torch.full((2, 1, 4, 4), 0.5)
    x[:, :, 0, 0] = -0.5  # the images themselves are [-1, 1] ones
    explainer = GradientAscent(SigmoidDecode(), LogisticClassifier(), steps=2, inversion_steps=2)
    with caplog.at_level("WARNING"):
        explainer.explain(x, 1)
    assert caplog.text.count("the generator's decoded images have no pixel below 0") == 1


def test_invert_under_no_grad_and_with_images_in_a_graph_finds_the_same_latents():
    """Under the caller's torch.no_grad() the optimisation raised "element 0 of tensors does
    not require grad"; images in an autograd graph had their graph run into."""
    g = LinearGenerator()
    x = _images(g)
    expected = invert(g, x, steps=5)
    with torch.no_grad():
        assert torch.equal(invert(g, x, steps=5).latents, expected.latents)
    w = torch.ones((), requires_grad=True)
    assert torch.equal(invert(g, x * w, steps=5).latents, expected.latents)
    assert w.grad is None
    with torch.inference_mode(), pytest.raises(RuntimeError, match=r"torch\.inference_mode\(\)"):
        invert(g, x, steps=5)
    with torch.inference_mode():  # the encoder alone needs no gradients
        assert torch.allclose(invert(g, x, steps=0).latents, Z_STAR, atol=1e-4)


class TwoImagesDecode(DecodeOnly):
    """A generator whose ``decode`` makes two images whatever the number of latents."""

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return super().decode(z[:1].expand(2, -1))


def test_a_decode_that_ignores_the_number_of_latents_is_named():
    """G(0) of one latent must be one image: two images (2, 1, 4, 4) of the right size passed
    the image-shape check, and a batch of two images went on to be 'inverted' by a decode
    that does not follow its latents."""
    from cfx.inversion import zero_image

    with pytest.raises(ValueError, match=r"one per latent, got \(2, 1, 4, 4\) for 1 latent"):
        zero_image(TwoImagesDecode())
    with pytest.raises(ValueError, match=r"one per latent"):
        invert(TwoImagesDecode(), torch.zeros(2, 1, 4, 4), steps=2)


class OffsetDecode(DecodeOnly):
    """G(z) = A z + c with c = -0.5 ... 0.5 over the 16 pixels, then a ReLU if asked: G(0) is
    c (pixels both sides of 0) or relu(c) (no pixel below 0, its darkest exactly 0)."""

    def __init__(self, relu: bool) -> None:
        super().__init__()
        self.relu = relu
        self.register_buffer("c", torch.linspace(-0.5, 0.5, 16).view(1, 1, 4, 4))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        image = super().decode(z) + self.c
        return torch.relu(image) if self.relu else image


def test_the_generator_range_notice_reads_the_darkest_and_the_brightest_pixel(caplog):
    """G(0) = c spans -0.5 .. 0.5, a [-1, 1] generator: no notice (reading the brightest pixel
    for the darkest would give one). A ReLU at the end makes G(0) 0 .. 0.5, no pixel below
    0, its darkest at exactly 0: the [0, 1] mark, named with those values."""
    x = torch.full((2, 1, 4, 4), 0.25)
    x[:, :, 0, 0] = -0.25
    with caplog.at_level("WARNING"):
        invert(OffsetDecode(relu=False), x, steps=1)
    assert "no pixel below 0" not in caplog.text
    with caplog.at_level("WARNING"):
        invert(OffsetDecode(relu=True), x, steps=1)
    assert "no pixel below 0 (values 0..0.5)" in caplog.text


def test_unit_range_images_are_noticed_by_invert_too(caplog):
    """The explainers warned about [0, 1] images; `invert` alone took them silently (PSNR
    11 dB on the auditor's model, no word why)."""
    g = DecodeOnly()
    x = g.decode(Z_STAR).detach()
    unit = (x - x.min()) / (x.max() - x.min())  # every pixel in [0, 1]
    with caplog.at_level("WARNING"):
        invert(g, unit, steps=1)
    assert "no pixel of the 2 input images is below 0" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        invert(g, x, steps=1)
    assert "below 0" not in caplog.text


def test_the_forward_hint_is_for_a_generator_without_decode_only():
    """A module with `decode` but no `latent_shape` was also told to add a decode that calls
    its forward, which it has: only the latent shape is missing."""

    class NoShape(nn.Module):
        def decode(self, z):
            return z

    x = DecodeOnly().decode(Z_STAR).detach()
    with pytest.raises(TypeError, match=r"missing `latent_shape`$"):
        invert(NoShape(), x, steps=2)


def test_a_half_precision_inversion_optimises_and_leaves_no_gradient_on_models():
    """In float16 every Adam step was NaN (its eps is 0 there) and the start came back
    unchanged; backward() left .grad on a classifier's weights the freezing cannot reach
    (models in a plain list)."""
    from tests.trajectory.toy import LinearGenerator, LogisticClassifier

    class Decoder(nn.Module):  # no encoder (pinv has no float16): inversion starts at 0
        """The toy generator with a fourth latent it ignores: a coordinate whose gradient is
        exactly 0, where float16 Adam's step is 0 / (0 + 0)."""

        def __init__(self, g):
            super().__init__()
            self.g, self.latent_shape = g, (4,)

        def decode(self, z):
            return self.g.decode(z[:, :3])

    g = LinearGenerator()
    z_true = torch.tensor([[3.0, -1.5, 0.75], [1.5, 1.5, -3.0]])
    with torch.no_grad():
        x = g.decode(z_true)
    assert float(x.abs().max()) < 1
    full = invert(Decoder(g), x, steps=300, lr=0.1, prior_weight=0.0)
    half = invert(Decoder(LinearGenerator()).half(), x.half(), steps=300, lr=0.1, prior_weight=0.0)
    assert half.latents.dtype == torch.float16 and bool(torch.isfinite(half.latents).all())
    assert float(half.latents.abs().max()) > 1  # it moved from 0
    torch.testing.assert_close(half.latents.float(), full.latents, atol=0.1, rtol=0.02)
    assert bool((half.psnr > 30).all())

    f = LogisticClassifier()

    class Listed(torch.nn.Module):  # its member is in a list: not frozen by cfx
        def __init__(self, members):
            super().__init__()
            self.members = members

        def forward(self, im):
            return sum(m(im) for m in self.members)

    invert(g, x, steps=3, classifier=Listed([f]))
    assert all(p.grad is None for p in f.parameters())


def test_lpips_is_imported_only_when_its_weights_are_cached(tmp_path, monkeypatch):
    """Importing lpips (torchvision's models with it) cost every process about 3 s, also
    those whose inversion then fell back to the encoder's features for want of weights."""
    import builtins
    import sys
    import types

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    imported = []
    real_import = builtins.__import__

    def spy(name, *args, **kwargs):
        imported.append(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", spy)
    assert lpips_available() is False and "lpips" not in imported
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "alexnet-owt-7be5be79.pth").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "lpips", types.ModuleType("lpips"))  # no 3 s import here
    assert lpips_available() is True and "lpips" in imported
    monkeypatch.setitem(sys.modules, "lpips", None)  # not installed: import fails
    assert lpips_available() is False
