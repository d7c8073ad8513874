import pytest
import torch

from cfx.trajectory.losses import identity_loss
from cfx.trajectory.monotone import MonotonePath, adapt_lambda, path_is_valid
from tests.trajectory.toy import LinearGenerator, LogisticClassifier


@pytest.fixture
def toy():
    g, f = LinearGenerator(), LogisticClassifier()
    u = g.A.detach().T @ f.w.detach()
    u = u / u.norm()
    z0 = -3 * u[None].repeat(3, 1) + torch.tensor(
        [[0.2, 0.0, -0.1], [0.0, 0.3, 0.0], [-0.2, 0.1, 0.2]]
    )
    return g, f, z0


# the toy's logistic classifier reads single pixels, so a blurred end frame loses its class:
# tests of the optimised path switch the blur check off (with it, the warm start is returned)
NO_BLUR = {"blur_check": 0.0}


def test_probabilities_increase_and_are_calibrated(toy):
    g, f, z0 = toy
    x = g.decode(z0).detach()
    kw = {"steps": 5, "warm_start_eta": 0.05, "warm_start_iter": 500, **NO_BLUR}
    res = MonotonePath(g, f, iterations=30, **kw).explain(x, 1, latents=z0)
    warm = MonotonePath(g, f, iterations=0, **kw).explain(x, 1, latents=z0)
    assert res.frames.shape == (3, 6, 1, 4, 4) and res.latents.shape == (3, 6, 3)
    assert not torch.equal(res.frames, warm.frames)  # the joint optimisation moved the path
    assert bool((res.probs.diff(dim=1) > 0).all())
    assert float((res.probs[:, 1:] - res.levels[1:]).abs().max()) <= 0.1
    assert bool(res.success.all())
    # every image found a valid path, so each has the identity weight that path was found at
    assert res.lambdas is not None and bool((res.lambdas.isfinite() & (res.lambdas > 0)).all())


def test_identity_weight_reduces_change(toy):
    """More identity weight gives a path that changes the image less (the optimised term)."""
    g, f, z0 = toy
    x = g.decode(z0).detach()
    kw = {"steps": 4, "iterations": 30, "warm_start_eta": 0.05, "warm_start_iter": 500}
    kw |= {"blur_check": 0.0}  # the toy's classifier reads single pixels: blurring defeats it
    weak = MonotonePath(g, f, lambda_init=1e-3, lambda_max=1e-3, **kw).explain(x, 1, latents=z0)
    strong = MonotonePath(g, f, lambda_init=50.0, lambda_max=50.0, **kw).explain(x, 1, latents=z0)

    def change(r):
        return identity_loss(r.frames[:, 1:], r.frames[:, 0]).mean()

    assert float(change(strong)) < float(change(weak))


def test_same_inputs_same_frames(toy):
    g, f, z0 = toy
    x = g.decode(z0).detach()
    a = MonotonePath(g, f, steps=3, iterations=10, **NO_BLUR).explain(x, 1, latents=z0)
    b = MonotonePath(g, f, steps=3, iterations=10, **NO_BLUR).explain(x, 1, latents=z0)
    assert torch.equal(a.frames, b.frames)
    warm = MonotonePath(g, f, steps=3, iterations=0, **NO_BLUR).explain(x, 1, latents=z0)
    assert not torch.equal(a.frames, warm.frames)


def test_bad_hyperparameters(toy):
    g, f, z0 = toy
    x = torch.zeros(3, 1, 4, 4)
    with pytest.raises(ValueError, match="`margin`"):
        MonotonePath(g, f, margin=1.2).explain(x, 1, latents=z0)
    with pytest.raises(ValueError, match="`lambda_max`"):
        MonotonePath(g, f, lambda_max=-1).explain(x, 1, latents=z0)
    with pytest.raises(ValueError, match="`lambda_init`"):
        MonotonePath(g, f, lambda_init=5.0, lambda_max=1.0).explain(x, 1, latents=z0)


def test_last_frame_reaches_the_margin(toy):
    # the end-margin term holds the last frame past `margin` while identity pulls it back
    g, f, z0 = toy
    x = g.decode(z0).detach()
    kw = {"steps": 4, "margin": 0.99, "warm_start_eta": 0.05, "warm_start_iter": 800, **NO_BLUR}
    res = MonotonePath(g, f, iterations=30, **kw).explain(x, 1, latents=z0)
    warm = MonotonePath(g, f, iterations=0, **kw).explain(x, 1, latents=z0)
    assert not torch.equal(res.frames, warm.frames)
    assert bool((res.probs[:, -1] >= 0.99).all())
    assert bool((res.probs.diff(dim=1) > 0).all())


class _CountingGenerator(LinearGenerator):
    def __init__(self) -> None:
        super().__init__()
        self.decoded = 0

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        self.decoded += z.shape[0]
        return super().decode(z)


def test_stalled_images_stop_early_and_a_late_stall_changes_nothing(toy):
    _, f, z0 = toy
    kw = {"steps": 4, "iterations": 30, "warm_start_eta": 0.05, "warm_start_iter": 500}
    kw |= {"blur_check": 0.0}  # the toy's classifier reads single pixels: blurring defeats it
    x = LinearGenerator().decode(z0).detach()
    runs = {}
    for stall in (None, 31, 2):
        g = _CountingGenerator()
        res = MonotonePath(g, f, stall=stall, **kw).explain(x, 1, latents=z0)
        runs[stall] = (res, g.decoded)
    # a stall longer than the run never triggers: the same frames, the same work
    assert torch.equal(runs[None][0].frames, runs[31][0].frames)
    assert runs[None][1] == runs[31][1]
    # stall=2 stops images two iterations after their last gain: less decoding, and the path
    # is still a valid one (climbing, calibrated, past the margin)
    res, decoded = runs[2]
    assert decoded < runs[None][1]
    assert bool((res.probs.diff(dim=1) > 0).all())
    assert float((res.probs[:, 1:] - res.levels[1:]).abs().max()) <= 0.1
    assert bool(res.success.all())


def test_bad_stall(toy):
    g, f, z0 = toy
    with pytest.raises(ValueError, match="`stall`"):
        MonotonePath(g, f, stall=0).explain(torch.zeros(3, 1, 4, 4), 1, latents=z0)
    with pytest.raises(ValueError, match="`blur_check`"):
        MonotonePath(g, f, blur_check=-1).explain(torch.zeros(3, 1, 4, 4), 1, latents=z0)


def test_an_end_frame_that_fails_when_blurred_is_never_valid(toy):
    # the toy's logistic classifier reads single pixels, so a 1-px blur of the last frame
    # falls below the margin: no optimised path is valid and the warm start is returned
    # (without the robust end, which would walk the last frame past the blurred margin)
    from cfx.filters import gaussian_blur

    g, f, z0 = toy
    x = g.decode(z0).detach()
    kw = {"steps": 4, "warm_start_eta": 0.05, "warm_start_iter": 500}
    warm = MonotonePath(g, f, iterations=0, blur_check=0.0, **kw).explain(x, 1, latents=z0)
    with torch.no_grad():
        blurred = torch.softmax(f(gaussian_blur(warm.frames[:, -1], 1.0)), 1)[:, 1]
    assert bool((blurred < 0.99).all()) and bool((warm.probs[:, -1] >= 0.99).all())
    checked = MonotonePath(
        g, f, iterations=30, blur_check=1.0, robust_end=False, hopeless_after=None, **kw
    )
    checked = checked.explain(x, 1, latents=z0)
    unchecked = MonotonePath(g, f, iterations=30, blur_check=0.0, **kw).explain(x, 1, latents=z0)
    assert torch.equal(checked.frames, warm.frames)
    assert not torch.equal(unchecked.frames, warm.frames)
    # no lambda shaped the returned path, and the result says so
    assert checked.lambdas is not None and bool(checked.lambdas.isnan().all())
    assert unchecked.lambdas is not None and bool(unchecked.lambdas.isfinite().all())


def _blurred_prob(f, frames):
    from cfx.filters import gaussian_blur

    with torch.no_grad():
        return torch.softmax(f(gaussian_blur(frames, 1.0)), 1)[:, 1]


def test_the_robust_end_walks_the_last_frame_past_the_blur_check(toy):
    # Option 1 stops where the unblurred frame crosses the margin; the robust end walks the
    # last latent on until the blurred frame does too, and leaves every other frame alone
    g, f, z0 = toy
    x = g.decode(z0).detach()
    kw = {"steps": 4, "iterations": 0, "warm_start_eta": 0.05, "warm_start_iter": 500}
    plain = MonotonePath(g, f, robust_end=False, **kw).explain(x, 1, latents=z0)
    robust = MonotonePath(g, f, robust_end=True, **kw).explain(x, 1, latents=z0)
    assert bool((_blurred_prob(f, plain.frames[:, -1]) < 0.99).all())
    assert bool((_blurred_prob(f, robust.frames[:, -1]) >= 0.99).all())
    assert torch.equal(robust.frames[:, :-1], plain.frames[:, :-1])
    # the robust warm start is a valid path: every step climbs, calibrated, past the margin
    assert bool((robust.probs.diff(dim=1) > 0).all()) and bool(robust.success.all())
    assert float((robust.probs[:, 1:] - robust.levels[1:]).abs().max()) <= 0.1


def test_the_robust_end_is_on_by_default_for_whole_image_paths_only(toy, monkeypatch):
    g, f, z0 = toy
    x = g.decode(z0).detach()
    kw = {"steps": 4, "iterations": 0, "warm_start_eta": 0.05, "warm_start_iter": 500}
    default = MonotonePath(g, f, **kw).explain(x, 1, latents=z0)
    robust = MonotonePath(g, f, robust_end=True, **kw).explain(x, 1, latents=z0)
    assert torch.equal(default.frames, robust.frames)
    calls = []

    def record(self, latents, target, *, decode=None):
        calls.append(self.localise)
        return latents

    monkeypatch.setattr(MonotonePath, "blur_robust_end", record)
    for localise in (True, False):
        MonotonePath(g, f, localise=localise, **kw).explain(x, 1, latents=z0)
    MonotonePath(g, f, localise=True, robust_end=True, **kw).explain(x, 1, latents=z0)
    MonotonePath(g, f, robust_end=False, **kw).explain(x, 1, latents=z0)
    assert calls == [False, True]  # plain by default, localised only when asked
    with pytest.raises(TypeError, match="`robust_end` must be a bool or None, got 'yes'"):
        MonotonePath(g, f, robust_end="yes").explain(x, 1, latents=z0)  # type: ignore[arg-type]


def test_the_robust_end_leaves_ends_that_pass_or_cannot_reach(toy):
    g, f, z0 = toy
    u = f.w.detach() @ g.A.detach()  # the latent direction that raises the logit fastest
    far = 30 * u / u.norm()  # its blurred frame is past the margin already
    latents = torch.stack([z0[0].repeat(4, 1), far.repeat(4, 1)])  # (2, T=4, 3)
    target = torch.ones(2, dtype=torch.long)
    assert float(_blurred_prob(f, g.decode(far[None]))[0]) >= 0.99
    mp = MonotonePath(g, f, warm_start_eta=0.05, warm_start_iter=500)
    out = mp.blur_robust_end(latents, target)
    assert torch.equal(out[1], latents[1])  # passes already: untouched (no exaggeration)
    assert torch.equal(out[0, :-1], latents[0, :-1]) and not torch.equal(out[0], latents[0])
    # a budget too short to reach the margin keeps the last latent as it was
    short = MonotonePath(g, f, warm_start_eta=0.05, warm_start_iter=1, give_up=None)
    assert torch.equal(short.blur_robust_end(latents, target), latents)
    # no blur check, nothing to make robust
    off = MonotonePath(g, f, blur_check=0.0)
    assert torch.equal(off.blur_robust_end(latents, target), latents)


def test_a_warm_start_no_iterate_improves_is_returned_with_nan_lambda(toy):
    # a learning rate far below float32 resolution leaves every iterate equal to the valid warm
    # start, so nothing beats it: the warm start comes back and no lambda claims to shape it
    g, f, z0 = toy
    x = g.decode(z0).detach()
    kw = {"steps": 4, "warm_start_eta": 0.05, "warm_start_iter": 500, **NO_BLUR}
    warm = MonotonePath(g, f, iterations=0, **kw).explain(x, 1, latents=z0)
    # the warm start itself is valid: past the margin, calibrated, climbing at every step
    assert bool((warm.probs[:, -1] >= 0.99).all())
    assert float((warm.probs[:, 1:] - warm.levels[1:]).abs().max()) <= 0.08
    assert bool((warm.probs.diff(dim=1) > 0).all())
    still = MonotonePath(g, f, iterations=8, lr=1e-12, **kw).explain(x, 1, latents=z0)
    assert torch.equal(still.frames, warm.frames)
    assert still.lambdas is not None and bool(still.lambdas.isnan().all())


@pytest.mark.parametrize(
    ("kw", "exc", "match"),
    [
        ({"gap": 1.0}, ValueError, r"`gap` must be a number in \[0, 1\)"),
        ({"warm_start_eta": -1.0}, ValueError, "`warm_start_eta`"),
        ({"warm_start_iter": 2.5}, TypeError, "`warm_start_iter`"),
        ({"lr": float("inf")}, ValueError, "`lr`"),
        ({"smooth_weight": "a"}, TypeError, "`smooth_weight`"),
        ({"lambda_growth": None}, TypeError, "`lambda_growth`"),
        ({"lambda_growth": 0.5}, ValueError, "`lambda_growth`"),
        ({"blur_check": "1"}, TypeError, "`blur_check`"),
        ({"margin": None}, TypeError, "`margin`"),
    ],
)
def test_settings_of_the_wrong_kind_are_named(toy, kw, exc, match):
    g, f, z0 = toy
    with pytest.raises(exc, match=match):
        MonotonePath(g, f, **kw).explain(torch.zeros(3, 1, 4, 4), 1, latents=z0)


def test_the_default_gap_allows_long_paths(toy):
    # a soft hinge: with 50 frames each step cannot climb 0.02, yet the default must not refuse
    g, f, z0 = toy
    res = MonotonePath(g, f, steps=50, iterations=0).explain(torch.zeros(3, 1, 4, 4), 1, latents=z0)
    assert res.frames.shape[1] == 51


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"background": "input"}, "`background`"), ({"mask_fractions": (0.5, 2.0)}, "mask_fr")],
)
def test_region_options_are_checked_with_localise_off(kwargs, match):
    g, f = LinearGenerator(), LogisticClassifier()
    x = g.decode(torch.zeros(1, 3)).detach()
    with pytest.raises(ValueError, match=match):
        MonotonePath(g, f, **kwargs).explain(x, 1, latents=torch.zeros(1, 3))


def _recorded_optimise(mp, g, z0, z_init, p_start, target, levels):
    """``mp.optimise`` recording the image rows each decode computed: ``(final, lambdas,
    rows)``, the first call (frame 0 of every image) left out."""
    calls = []

    def decode(z, rows):
        calls.append(rows.clone())
        return g.decode(z)

    final, lambdas = mp.optimise(z0, z_init, p_start, target, levels, decode=decode)
    return final, lambdas, torch.cat(calls[1:]).tolist()


def test_paths_that_cannot_be_valid_are_not_optimised(toy):
    # a valid path's frame 1 climbs above the start and stays within calibration_tol of 1/T,
    # so an image starting at or above 1/T + calibration_tol is skipped and keeps its warm start
    g, f, z0 = toy
    kw = {"stall": None, "hopeless_after": None, "warm_start_eta": 0.05, **NO_BLUR}
    mp = MonotonePath(g, f, steps=4, iterations=5, **kw)
    levels = torch.arange(5) / 4
    target = torch.ones(3, dtype=torch.long)
    z_init, p_start = mp.warm_start(z0, target, levels)
    p_start = p_start.clone()
    p_start[1] = levels[1] + mp.calibration_tol  # the first start that cannot be valid
    final, lambdas, optimised = _recorded_optimise(mp, g, z0, z_init, p_start, target, levels)
    assert 1 not in optimised
    # the others ran every iteration (no stop): 5 steps and the final check, T rows each
    assert optimised.count(0) == optimised.count(2) == 6 * 4
    assert torch.equal(final[1], z_init[1]) and bool(lambdas[1].isnan())


def test_images_never_valid_stop_after_hopeless_after_and_valid_ones_run_on(toy):
    g, f, z0 = toy
    levels = torch.arange(5) / 4
    target = torch.ones(3, dtype=torch.long)
    kw = {
        "steps": 4,
        "iterations": 12,
        "stall": None,
        "warm_start_eta": 0.05,
        "warm_start_iter": 500,
    }

    def run(blur_check, hopeless_after):
        mp = MonotonePath(g, f, blur_check=blur_check, hopeless_after=hopeless_after, **kw)
        z_init, p_start = mp.warm_start(z0, target, levels)
        final, _, rows = _recorded_optimise(mp, g, z0, z_init, p_start, target, levels)
        return final, z_init, rows

    # the blur check defeats the toy's single-pixel classifier: no iterate is ever valid, so
    # hopeless_after=3 stops every image after iterations 0-3 (T rows each), not 0-12
    final, z_init, rows = run(1.0, 3)
    assert [rows.count(i) for i in range(3)] == [4 * 4] * 3
    assert torch.equal(final, z_init)
    _, _, rows = run(1.0, None)
    assert [rows.count(i) for i in range(3)] == [13 * 4] * 3
    # without it the warm start is valid from iteration 0, and hopeless_after=0 stops nothing
    stopped, _, rows0 = run(0.0, 0)
    free, _, rows_free = run(0.0, None)
    assert rows0 == rows_free and torch.equal(stopped, free)


def test_bad_hopeless_after(toy):
    g, f, z0 = toy
    with pytest.raises(ValueError, match="`hopeless_after`"):
        MonotonePath(g, f, hopeless_after=-1).explain(torch.zeros(3, 1, 4, 4), 1, latents=z0)


def test_path_validity_known_answers():
    """Written inline in the loop before, where the toy's warm starts are valid either way: a
    flat step or a mean (not largest) calibration error passed mutants unnoticed."""
    levels = torch.tensor([0.0, 1 / 3, 2 / 3, 1.0])
    start = torch.tensor([0.1])

    def valid(probs, margin=0.99, tol=0.08):
        return path_is_valid(torch.tensor([probs]), start, levels, margin, tol).item()

    assert valid([0.33, 0.66, 0.995])
    # a flat step does not climb, nor does a first step below frame 0 (a loose tolerance, so
    # that only the steps decide)
    assert valid([0.33, 0.34, 0.995], tol=0.5)
    assert not valid([0.33, 0.33, 0.995], tol=0.5)
    assert not valid([0.05, 0.66, 0.995], tol=0.5)
    # deviations 0.003, 0.167, 0.005: their mean (0.058) is within 0.08, the largest is not
    assert not valid([0.33, 0.5, 0.995])
    assert not valid([0.33, 0.66, 0.98])  # short of the margin
    assert valid([0.33, 0.66, 0.99])  # the margin itself passes
    assert not valid([0.33, 0.66, 0.995], tol=0.003)  # 0.005 off its level


def test_lambda_grows_on_valid_paths_halves_on_others_and_is_capped():
    lam = adapt_lambda(
        torch.tensor([10.0, 10.0, 8000.0]), torch.tensor([True, False, True]), 2.0, 1e4
    )
    assert lam.tolist() == [20.0, 5.0, 1e4]


def _logit_of_pixel_sum(x):
    s = x.flatten(1).sum(1)
    return torch.stack([torch.zeros_like(s), s], 1)  # log-odds of class 1 = the pixel sum


def _hand_path(g, **kwargs):
    """MonotonePath in the setting the hand-worked gradients assume: T = 2 steps, one
    iteration, lambda 1, the classifier's log-odds the pixel sum."""
    return MonotonePath(
        g,
        _logit_of_pixel_sum,
        steps=2,
        iterations=1,
        lambda_init=1.0,
        gap=0.02,
        margin=0.99,
        **kwargs,
    )


@pytest.mark.parametrize("blur_check", [0.0, 1.0])
def test_the_loop_descends_the_documented_loss(blur_check):
    """The gradient of the first iteration is that of the module's formula, by hand.

    One-pixel frames x_t = z_t with log-odds s_t = z_t (so p_t = sigmoid(z_t), p'_t = p_t (1 -
    p_t)), T = 2, lambda = 1, gap = 0.02, margin = 0.99 (logit 4.6, above every s_t); the
    gradient is read at the frames' latents, so the smoothness term (on the latents directly)
    is not in it. Image 0 starts at z_0 = -2 with z = (0.1, 0.15): frame 1 is above its level
    1/2 and frame 2 climbs by 0.0125 < gap, so the step 1 -> 2 is charged. Image 1 starts at 0 with
    z = (-0.1, 1): frame 1 is below 1/2 and below the start, so the step 0 -> 1 is charged.
    Per frame: calibration sign(p_t - t/T) p'_t, the end margin -1 on frame T (twice with a
    blur check: blurring a one-pixel frame with replicated edges leaves it as it is), the
    monotonicity hinge -/+ p'_t and identity lambda sign(z_t - z_0) / T.
    """
    g = LinearGenerator()
    z0 = torch.tensor([[-2.0], [0.0]], dtype=torch.float64)
    z = torch.tensor([[[0.1], [0.15]], [[-0.1], [1.0]]], dtype=torch.float64)
    p0, p = torch.sigmoid(z0[:, 0]), torch.sigmoid(z[..., 0])
    dp = p * (1 - p)
    end = -1.0 if blur_check == 0 else -2.0
    expected = torch.tensor(
        [
            [
                dp[0, 0] + dp[0, 0] + 0.5,
                -dp[0, 1] + end - dp[0, 1] + 0.5,
            ],
            [
                -dp[1, 0] - dp[1, 0] - 0.5,
                -dp[1, 1] + end + 0.5,
            ],
        ],
        dtype=torch.float64,
    )
    grads = []

    def decode(latents, rows):
        if latents.requires_grad:
            latents.register_hook(lambda grad: grads.append(grad.clone()))
        return latents.view(-1, 1, 1, 1)

    mp = _hand_path(g, blur_check=blur_check)
    levels = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    mp.optimise(z0, z, p0, torch.ones(2, dtype=torch.long), levels, decode=decode)
    assert len(grads) == 1
    assert torch.allclose(grads[0].view(2, 2), expected, atol=1e-12)


@pytest.mark.parametrize(("kwargs", "mu"), [({}, 0.05), ({"smooth_weight": 0.3}, 0.3)])
def test_the_first_step_descends_the_smoothness_term_too(monkeypatch, kwargs, mu):
    """The gradient the optimiser steps on is the whole documented loss, smoothness term
    included: the test above reads the gradient at the frames' latents, which the smoothness
    term never reaches, so the audit could delete it from the loop with nothing failing.

    The setting of that test, with two latent coordinates (d = 2) of which the frame shows only
    the first (x_t = z_t[0]): coordinate 0 gets the frame terms worked out there, coordinate 1
    nothing but the smoothness term. For mu * sum_t ||z_t - z_{t-1}||^2 / d the gradient at
    z_t is mu * 2 (D_t - D_{t+1}) / d = mu (D_t - D_{t+1}) (D_t = z_t - z_{t-1}, D_{T+1} = 0).
    Coordinate 0 -- image 0: D = (2.1, 0.05), so mu 2.05 and mu 0.05; image 1: D = (-0.1,
    1.1), so -mu 1.2 and mu 1.1. Coordinate 1 -- image 0 (0.3, 0.5, -0.2): D = (0.2, -0.7),
    so mu 0.9 and -mu 0.7; image 1 (-1, 0, 1): D = (1, 1), so 0 and mu. The gradient is read
    where Adam takes it (its first step moves every coordinate by ~lr, whatever the weight).
    """
    g = LinearGenerator(d=2)
    z0 = torch.tensor([[-2.0, 0.3], [0.0, -1.0]], dtype=torch.float64)
    z = torch.tensor(
        [[[0.1, 0.5], [0.15, -0.2]], [[-0.1, 0.0], [1.0, 1.0]]], dtype=torch.float64
    )  # (B=2, T=2, d=2)
    p0, p = torch.sigmoid(z0[:, 0]), torch.sigmoid(z[..., 0])
    dp = p * (1 - p)
    frame_terms = torch.tensor(  # as in test_the_loop_descends_the_documented_loss, no blur
        [
            [dp[0, 0] + dp[0, 0] + 0.5, -dp[0, 1] - 1.0 - dp[0, 1] + 0.5],
            [-dp[1, 0] - dp[1, 0] - 0.5, -dp[1, 1] - 1.0 + 0.5],
        ],
        dtype=torch.float64,
    )
    smooth = mu * torch.tensor(
        [[[2.05, 0.9], [0.05, -0.7]], [[-1.2, 0.0], [1.1, 1.0]]], dtype=torch.float64
    )
    expected = smooth.clone()
    expected[..., 0] += frame_terms

    stepped = []

    class RecordingAdam(torch.optim.Adam):
        def step(self, closure=None):
            stepped.append(self.param_groups[0]["params"][0].grad.clone())
            return super().step(closure)

    monkeypatch.setattr(torch.optim, "Adam", RecordingAdam)

    def decode(latents, rows):
        return latents[:, :1].reshape(-1, 1, 1, 1)  # the frame shows coordinate 0 only

    mp = _hand_path(g, blur_check=0.0, **kwargs)
    assert mp.smooth_weight == mu
    levels = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    mp.optimise(z0, z, p0, torch.ones(2, dtype=torch.long), levels, decode=decode)
    assert len(stepped) == 1
    torch.testing.assert_close(stepped[0], expected, atol=1e-12, rtol=0)


_CHECKER = (torch.arange(4)[:, None] + torch.arange(4)[None]) % 2 * 2.0 - 1  # +-1, (4, 4)


def _mean_minus_checker(x):
    s = x.mean((1, 2, 3)) - (x * _CHECKER).mean((1, 2, 3))
    return torch.stack([torch.zeros_like(s), s], 1)  # log-odds of class 1 = s


def test_the_robust_end_keeps_the_last_latent_unless_the_unblurred_frame_still_climbs():
    """Known answers from linear log-odds. Image r shows c_r + z (1 + gamma_r * checker) and the
    classifier reads mean(x) - mean(x * checker): log-odds c_r + (1 - gamma_r) z unblurred,
    ~c_r + z blurred (a 1-px blur leaves the checkerboard 0.045 of its self-correlation). The
    blurred ascent raises z, so the unblurred frame moves by (1 - gamma_r) per unit z:

    0. gamma 3, end 0.9975: the unblurred frame falls below the margin on the way;
    1. gamma 1.2, end 0.9955: it falls, though not below the margin (0.994);
    2. gamma 0.9, end 0.982 < margin: it climbs, but not to the margin (0.984);
    3. gamma 0.5, end 0.992: it climbs past its end and the margin, the only one kept.
    """
    c = torch.tensor([4.0, 5.2, 4.0, 5.3])
    gamma = torch.tensor([3.0, 1.2, 0.9, 0.5])
    z_end = torch.tensor([-1.0, -1.0, 0.0, -1.0])

    def decode(z, rows):
        return c[rows].view(-1, 1, 1, 1) + z.view(-1, 1, 1, 1) * (
            1 + gamma[rows].view(-1, 1, 1, 1) * _CHECKER
        )

    def probs(z, blurred):
        from cfx.filters import gaussian_blur

        x = decode(z.view(-1, 1), torch.arange(4))
        x = gaussian_blur(x, 1.0) if blurred else x
        return torch.sigmoid(_mean_minus_checker(x)[:, 1])

    latents = torch.stack([torch.zeros(4, 1), z_end[:, None]], 1)  # (4, T=2, 1)
    p_end = probs(z_end, False)
    assert bool((probs(z_end, True) < 0.99).all())  # every blurred end falls short
    assert bool((p_end[[0, 1, 3]] >= 0.99).all()) and float(p_end[2]) < 0.99
    mp = MonotonePath(LinearGenerator(d=1), _mean_minus_checker, warm_start_eta=0.05)
    out = mp.blur_robust_end(latents, torch.ones(4, dtype=torch.long), decode=decode)
    assert torch.equal(out[:3], latents[:3])
    assert torch.equal(out[3, 0], latents[3, 0]) and float(out[3, 1]) > float(z_end[3])
    assert float(probs(out[:, 1], True)[3]) >= 0.99
    assert float(probs(out[:, 1], False)[3]) > float(p_end[3])
    # one step of 0.05 raises image 3's unblurred frame but leaves its blurred one short
    # (log-odds ~4.35 < 4.6): every last latent stays
    short = MonotonePath(
        LinearGenerator(d=1), _mean_minus_checker, warm_start_eta=0.05, warm_start_iter=1
    )
    out = short.blur_robust_end(latents, torch.ones(4, dtype=torch.long), decode=decode)
    assert torch.equal(out, latents)


@pytest.mark.parametrize("stall", [1, 3])
def test_a_path_that_never_improves_stops_after_stall_iterations(toy, stall):
    """Known answer: with a learning rate far below float32 resolution every iterate is the
    (valid) warm start, so the best path is found at iteration 0 and never improves. After
    ``stall`` iterations without a gain the image stops: iterations 0..stall are decoded, T
    frames each, then nothing more (the run had 10)."""
    g, f, z0 = toy
    kw = {"hopeless_after": None, "warm_start_eta": 0.05, "warm_start_iter": 500, **NO_BLUR}
    mp = MonotonePath(g, f, steps=4, iterations=10, lr=1e-12, stall=stall, **kw)
    levels = torch.arange(5) / 4
    target = torch.ones(3, dtype=torch.long)
    z_init, p_start = mp.warm_start(z0, target, levels)
    final, lambdas, rows = _recorded_optimise(mp, g, z0, z_init, p_start, target, levels)
    assert [rows.count(i) for i in range(3)] == [(stall + 1) * 4] * 3
    assert torch.equal(final, z_init) and bool(lambdas.isnan().all())


def test_no_gradient_is_left_on_weights_the_freezing_cannot_reach():
    """backward() left .grad on a classifier's weights held in a plain list (which cfx does
    not freeze): a later optimizer.step() of the user's applied it."""
    from tests.trajectory.toy import LinearGenerator, LogisticClassifier

    g, f = LinearGenerator(), LogisticClassifier()

    class Listed(torch.nn.Module):
        def __init__(self, members):
            super().__init__()
            self.members = members

        def forward(self, im):
            return sum(m(im) for m in self.members)

    u = g.A.detach().T @ f.w.detach()
    z0 = -3 * (u / u.norm())[None].repeat(2, 1)
    with torch.no_grad():
        x = g.decode(z0)
    MonotonePath(g, Listed([f]), steps=3, iterations=5, inversion_steps=0).explain(x, 1, latents=z0)
    assert all(p.grad is None for p in f.parameters())
