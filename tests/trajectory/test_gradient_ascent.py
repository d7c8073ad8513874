import math

import pytest
import torch

from cfx.trajectory.gradient_ascent import GradientAscent
from tests.trajectory.toy import LinearGenerator, LogisticClassifier


@pytest.fixture
def toy():
    g, f = LinearGenerator(), LogisticClassifier()
    z0 = torch.tensor([[-3.0, 1.0, 0.5], [2.0, -4.0, 1.0]])
    return g, f, z0


def _direction(g, f):
    u = g.A.detach().T @ f.w.detach()
    return u / u.norm()


def _unit_log_odds(g, f):
    """The direction A^T w scaled so that one unit along it raises the log-odds by one."""
    u = g.A.detach().T @ f.w.detach()
    return u / u.norm() ** 2


def test_path_follows_the_closed_form_direction(toy):
    g, f, _ = toy
    u = _direction(g, f)
    z0 = -4 * u[None].repeat(2, 1) + torch.tensor([[0.3, -0.2, 0.1], [0.0, 0.5, -0.4]])
    explainer = GradientAscent(g, f, steps=5, eta=0.1, max_iter=400, margin=0.95)
    path, probs = explainer.ascend(z0, torch.ones(2, dtype=torch.long))
    steps = path.diff(dim=1)  # (B, K-1, d)
    moving = steps.norm(dim=2) > 0
    # every step is eta along A^T w (normalised), until the margin is reached
    expected = 0.1 * u
    assert torch.allclose(steps[moving], expected.expand_as(steps[moving]), atol=1e-5)
    assert bool((probs[:, -1] >= 0.95).all())
    assert bool((probs.diff(dim=1) >= -1e-6).all())


def test_explain_frames_are_calibrated_on_the_toy(toy):
    g, f, _ = toy
    u = _direction(g, f)
    z0 = -4 * u[None].repeat(2, 1)
    x = g.decode(z0).detach()
    explainer = GradientAscent(g, f, steps=4, eta=0.02, max_iter=2000, margin=0.99)
    res = explainer.explain(x, 1, latents=z0)
    assert res.frames.shape == (2, 5, 1, 4, 4)
    assert res.probs.shape == (2, 5)
    # a straight line in z is a straight line in log-odds, so interpolation is near exact
    assert torch.allclose(res.probs[:, 1:-1], res.levels[1:-1].expand(2, -1), atol=0.01)
    assert bool(res.success.all())


class _CubicLogOdds(torch.nn.Module):
    """The toy's logistic classifier with its class-1 log-odds l bent to l + 0.1 l^3: cubic in
    z along the ascent, so a straight line in log-odds through a recorded step misplaces a
    level inside it (monotone, so every level is crossed once)."""

    def __init__(self, f: LogisticClassifier) -> None:
        super().__init__()
        self.f = f

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.f(x)[:, 1]
        s = s + 0.1 * s**3
        return torch.stack([torch.zeros_like(s), s], 1)


def test_frames_sit_on_their_levels_when_the_log_odds_bend(toy):
    """The explainer narrows each level's bracketing step with model evaluations
    (``refine_iters``, false position in log-odds) before placing the frame: on the linear
    toy plain interpolation is already exact, so the audit could drop the refinement from
    ``resample`` with nothing failing. With log-odds cubic in z and long steps (eta 2, a
    log-odds climb of ~1.5 and more per step) the interpolated frames miss their levels by
    ~0.03 in probability; 3 refinements put them within 1e-4 (asserted: 1e-3)."""
    g, f, _ = toy
    bent = _CubicLogOdds(f)
    # starts on the line along A^T w at toy log-odds l = -2.5 and -3 (bent: -4.06 and -5.7)
    z0 = (torch.tensor([[-2.0], [-2.5]]) * _unit_log_odds(g, f)[None]).detach()
    x = g.decode(z0).detach()
    kw = {"steps": 5, "eta": 2.0, "max_iter": 100, "margin": 0.99}
    with torch.no_grad():
        assert torch.allclose(f(x)[:, 1], torch.tensor([-2.5, -3.0]), atol=1e-5)  # premise

    def worst(res):  # largest |p - t/T| over the interior frames 1..T-1
        return float((res.probs[:, 1:-1] - res.levels[1:-1]).abs().max())

    refined = GradientAscent(g, bent, **kw).explain(x, 1, latents=z0)
    assert GradientAscent(g, bent).refine_iters == 3  # the default placement refines
    assert worst(refined) <= 1e-3
    assert bool(refined.success.all()) and bool((refined.probs.diff(dim=1) > 0).all())
    # the teeth: without refinement the same path's frames miss their levels
    linear = GradientAscent(g, bent, refine_iters=0, **kw).explain(x, 1, latents=z0)
    assert worst(linear) >= 0.02


def test_a_start_above_the_first_levels_still_climbs_every_step(toy):
    g, f, _ = toy
    u = _direction(g, f)
    # start at p = 0.3 (log-odds (A^T w) . z + b): levels 0.1 and 0.2 lie below it and are
    # raised so that the frames still climb at every step
    slope = float((g.A.detach().T @ f.w.detach()).norm())
    z0 = ((float(torch.logit(torch.tensor(0.3))) - float(f.b.detach())) / slope * u)[None]
    x = g.decode(z0).detach()
    res = GradientAscent(g, f, steps=10, eta=0.05, max_iter=500).explain(x, 1, latents=z0)
    assert abs(float(res.probs[0, 0]) - 0.3) < 1e-4
    assert bool((res.probs.diff(dim=1) > 0).all())


def test_user_models_unchanged(toy):
    g, f, z0 = toy
    g.train()
    f.train()
    f.w.requires_grad_(True)
    before = [p.detach().clone() for p in [*g.parameters(), *f.parameters()]]
    GradientAscent(g, f, steps=3).explain(g.decode(z0).detach().clamp(-1, 1), 1, latents=z0)
    assert g.training and f.training
    assert all(p.requires_grad for p in [*g.parameters(), *f.parameters()])
    for a, b in zip(before, [*g.parameters(), *f.parameters()], strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize(
    ("target", "exc", "match"),
    [
        (2, ValueError, r"class index in \[0, 1\]"),
        (1.5, TypeError, "`target`"),
        (True, TypeError, "`target`"),
    ],
)
def test_bad_target(toy, target, exc, match):
    g, f, z0 = toy
    with pytest.raises(exc, match=match):
        GradientAscent(g, f).explain(torch.zeros(2, 1, 4, 4), target, latents=z0)


def test_bad_inputs(toy):
    g, f, z0 = toy
    ga = GradientAscent(g, f)
    with pytest.raises(ValueError, match="NaN"):
        ga.explain(torch.full((2, 1, 4, 4), float("nan")), 1)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        ga.explain(torch.full((2, 1, 4, 4), 5.0), 1)
    with pytest.raises(ValueError, match=r"shape \(B, C, H, W\)"):
        ga.explain(torch.zeros(1, 4, 4), 1)
    with pytest.raises(ValueError, match="`latents` must have shape"):
        ga.explain(torch.zeros(2, 1, 4, 4), 1, latents=torch.zeros(2, 5))
    with pytest.raises(ValueError, match="`steps`"):
        GradientAscent(g, f, steps=0).explain(torch.zeros(2, 1, 4, 4), 1, latents=z0)
    with pytest.raises(ValueError, match="`stall_window`"):
        GradientAscent(g, f, stall_window=0).explain(torch.zeros(2, 1, 4, 4), 1, latents=z0)


def test_frames_climb_even_when_the_start_is_already_near_the_margin():
    # a source whose start already sits at p = 0.97 (margin 0.99): its frames are spread over
    # [0.97, p_max] and still climb at every step instead of piling up at the margin
    g, f = LinearGenerator(), LogisticClassifier()
    u = g.A.detach().T @ f.w.detach()
    u = u / u.norm()
    with torch.no_grad():
        logit = float(f(g.decode(torch.zeros(1, 3)))[0, 1])  # log-odds of class 1 at z = 0
        gain = float(f(g.decode(u[None]))[0, 1]) - logit  # log-odds per unit along u
    z0 = ((math.log(0.97 / 0.03) - logit) / gain * u)[None]  # start at p = 0.97
    x = torch.zeros(1, 1, 4, 4)  # only the source shown beside the path: latents are given
    res = GradientAscent(g, f, steps=5, eta=0.01, max_iter=500, margin=0.99).explain(
        x, 1, latents=z0
    )
    assert float(res.probs[0, 0]) == pytest.approx(0.97, abs=1e-3)
    assert bool((res.probs.diff(dim=1) > 0).all())
    assert float(res.probs[0, -1]) >= 0.99


def test_a_start_already_past_the_margin_exaggerates_instead_of_standing_still():
    # p = 0.995 at the start, margin 0.99: nothing to cross, so the path climbs EXAGGERATION
    # log-odds past the start (it stopped at once before, giving T identical frames)
    from cfx.trajectory.gradient_ascent import EXAGGERATION

    g, f = LinearGenerator(), LogisticClassifier()
    u = g.A.detach().T @ f.w.detach()
    u = u / u.norm()
    with torch.no_grad():
        logit = float(f(g.decode(torch.zeros(1, 3)))[0, 1])
        gain = float(f(g.decode(u[None]))[0, 1]) - logit  # log-odds per unit along u
    start = math.log(0.995 / 0.005)
    z0 = ((start - logit) / gain * u)[None]
    eta = 0.01
    res = GradientAscent(g, f, steps=5, eta=eta, max_iter=2000, margin=0.99).explain(
        torch.zeros(1, 1, 4, 4), 1, latents=z0
    )
    assert bool((res.probs.diff(dim=1) > 0).all())
    end = float(torch.logit(res.probs[0, -1].double()))
    # stops at the first step past start + EXAGGERATION: within one step (eta * gain) of it
    assert start + EXAGGERATION <= end + 1e-4
    assert end <= start + EXAGGERATION + eta * gain + 1e-4


@pytest.mark.parametrize(("give_up", "moves"), [(None, [21, 30]), (1.0, [21, 10]), (2.0, [21, 20])])
def test_give_up_stops_an_image_whose_gain_rate_cannot_reach_the_margin_in_its_budget(
    toy, give_up, moves
):
    g, f, _ = toy
    u = _direction(g, f)
    k = float(g.A.detach().T @ f.w.detach() @ u)  # log-odds per unit of z along u
    eta, goal = 0.1, math.log(0.99 / 0.01)
    rate = eta * k  # log-odds gained per iteration, constant on the toy
    # image 0 needs 20.5 iterations, image 1 needs 40.5; both have a budget of 30. With
    # give_up=c an image stops at the first t >= 10 with s_t + c * rate * (30 - t) < goal:
    # image 1 at t = 10 for c = 1 and at t = 20 for c = 2 (60 - t < 40.5); image 0 never.
    need = torch.tensor([20.5, 40.5])
    z0 = ((goal - float(f.b.detach()) - need * rate) / k)[:, None] * u[None]
    explainer = GradientAscent(g, f, eta=eta, max_iter=100, margin=0.99)
    path, probs = explainer.ascend(
        z0, torch.ones(2, dtype=torch.long), budget=torch.tensor([30, 30]), give_up=give_up
    )
    steps = (path.diff(dim=1).norm(dim=2) > 0).sum(1)
    assert steps.tolist() == moves
    assert float(probs[0, -1]) >= 0.99 and float(probs[1, -1]) < 0.99


@pytest.mark.parametrize(
    ("give_up", "need", "moves"), [(None, None, 30), (1.0, None, 21), (1.0, 1.0, 10)]
)
def test_give_up_spares_an_image_on_its_way_to_what_it_needs(toy, give_up, need, moves):
    """A start 0.5 log-odds below the margin has the goal start + 1 (EXAGGERATION); at
    0.5 / 20.5 log-odds per iteration it passes the margin at iteration 21 and would reach
    the goal at 41, beyond its budget of 30. give_up judged it by the goal alone and stopped
    it at iteration 10 (30 * rate = 0.73 < 1), short of the margin it needed; it now runs on
    to the margin and stops there, the goal out of reach. A ``need`` of the goal itself
    (start + 1) gives the old stop back; no give_up runs to the budget."""
    g, f, _ = toy
    u = _direction(g, f)
    k = float(g.A.detach().T @ f.w.detach() @ u)  # log-odds per unit of z along u
    margin = math.log(0.99 / 0.01)
    rate = 0.5 / 20.5
    s0 = margin - 0.5
    z0 = ((s0 - float(f.b.detach())) / k) * u[None]
    # no stall stop (it too ends a path past the margin that levels off short of its goal)
    explainer = GradientAscent(g, f, eta=rate / k, max_iter=100, margin=0.99, stall_window=None)
    path, probs = explainer.ascend(
        z0,
        torch.ones(1, dtype=torch.long),
        budget=torch.tensor([30]),
        give_up=give_up,
        need=None if need is None else torch.tensor([s0 + need]),
    )
    assert int((path.diff(dim=1).norm(dim=2) > 0).sum()) == moves
    assert (float(probs[0, -1]) >= 0.99) == (moves > 20)


class _Saturating(torch.nn.Module):
    """The toy's logistic classifier with its class-1 log-odds capped at ``cap``: past the cap
    the gradient is zero, so an ascent makes no more progress (a saturated classifier)."""

    def __init__(self, f: LogisticClassifier, cap: float) -> None:
        super().__init__()
        self.f, self.cap = f, cap

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.f(x).clamp(max=self.cap)


@pytest.mark.parametrize(
    ("above_start", "past_margin", "window"),
    [(0.99, True, 10), (0.99, True, 25), (0.99, True, None), (0.3, False, 10)],
)
def test_an_image_past_the_margin_stops_once_its_confidence_saturates(
    toy, above_start, past_margin, window
):
    # start at log-odds 4.0 (p = 0.982; margin 0.99 = log-odds 4.595): the goal is start +
    # EXAGGERATION = log-odds 5.0. The classifier's log-odds are capped about `above_start`
    # over the start, half-way between two iterates: the path reaches the cap after n_hit
    # iterations and stays. Capped at ~4.99 (past the margin, short of the goal), the recent
    # gain is 0 `stall_window` iterations later and the image stops there (without the stall
    # stop it runs all max_iter iterations); capped at ~4.3 (never past the margin) it is never
    # stopped this way and runs all max_iter iterations.
    from cfx.trajectory.gradient_ascent import EXAGGERATION

    g, f, _ = toy
    u = _direction(g, f)
    k = float(g.A.detach().T @ f.w.detach() @ u)  # log-odds per unit of z along u
    eta, start = 0.01, 4.0
    rate = eta * k  # log-odds per iteration below the cap
    n_hit = round(above_start / rate) + 1
    cap = start + (n_hit - 0.5) * rate
    assert (cap > math.log(0.99 / 0.01)) == past_margin and cap < start + EXAGGERATION
    z0 = ((start - float(f.b.detach())) / k * u)[None]
    explainer = GradientAscent(
        g, _Saturating(f, cap), eta=eta, max_iter=300, margin=0.99, stall_window=window
    )
    path, probs = explainer.ascend(z0, torch.ones(1, dtype=torch.long))
    scores = torch.logit(probs[0].double())
    assert int(torch.nonzero(scores >= cap - 1e-4).flatten()[0]) == n_hit
    stops = past_margin and window is not None
    assert path.shape[1] - 1 == (n_hit + window if stops else 300)


def test_spread_levels_known_answers():
    lv = torch.tensor([0.25, 0.5, 0.75, 1.0])
    # p0 on a level: that level counts as passed, frame 1 halfway from p0 to the next (0.5)
    out = GradientAscent.spread_levels(torch.tensor([[0.25, 0.9]]), lv)
    assert out.tolist()[0] == pytest.approx([0.375, 0.5, 0.75, 1.0])
    # two levels passed and a path peaking at 0.65, below the next level 0.75: those two
    # are spread from 0.6 to 0.65 in thirds
    out = GradientAscent.spread_levels(torch.tensor([[0.6, 0.65]]), lv)
    assert out.tolist()[0] == pytest.approx([0.6 + 0.05 / 3, 0.6 + 0.1 / 3, 0.75, 1.0])


def test_finish_repairs_a_flat_step(toy):
    from cfx.calls import frozen
    from cfx.trajectory.gradient_ascent import finish
    from cfx.trajectory.start import start

    g, f, _ = toy
    u = _unit_log_odds(g, f)
    z0 = -2 * u[None]
    climbs = torch.tensor([0.0, 1.0, 1.0, 2.0, 4.0])  # frames 1 and 2 identical: a flat step
    zs = (z0[:, None] + climbs[None, :, None] * u).detach()
    explainer = GradientAscent(g, f, steps=4)
    x = g.decode(z0).detach()
    with frozen(g, f):
        begin = start(explainer, x, 1, latents=z0)
        res = finish(explainer, x, zs, torch.linspace(0, 1, 5), begin, 0.0, lambdas=None)
    assert bool((res.probs.diff(dim=1) > 0).all())


def test_a_saturated_start_stops_at_once(toy):
    # start log-odds -0.5 + 30.5 = 30, past the margin: the goal, start + EXAGGERATION,
    # is sigmoid(31), which rounds to 1.0 in float32, and p = sigmoid(30) = 1.0 has reached it
    g, f, _ = toy
    z0 = 30.5 * _unit_log_odds(g, f)[None]
    with torch.no_grad():
        assert float(f(g.decode(z0))[0, 1]) == pytest.approx(30.0, abs=1e-3)
    path, _ = GradientAscent(g, f, max_iter=30, stall_window=None).ascend(z0, torch.tensor([1]))
    assert path.shape[1] == 1


@pytest.mark.parametrize("window", [1, 4])
def test_a_saturated_start_past_the_margin_stops_as_soon_as_a_full_window_is_recorded(toy, window):
    """Known answer: the log-odds are capped at 5 (p = 0.9933, past the margin 0.99) below the
    start's 6, so the gain is 0 from the first iteration and the goal (5 + EXAGGERATION) is out
    of reach. The stall stop measures the gain over ``window`` iterations, first possible at
    iteration ``window``: the image stops there, with ``window + 1`` recorded latents (none
    moved: the capped log-odds have no gradient)."""
    g, f, _ = toy
    u = _unit_log_odds(g, f)
    z0 = ((6.0 - float(f.b.detach())) * u)[None]
    explainer = GradientAscent(
        g, _Saturating(f, 5.0), eta=0.01, max_iter=50, margin=0.99, stall_window=window
    )
    path, probs = explainer.ascend(z0, torch.ones(1, dtype=torch.long))
    assert path.shape[1] == window + 1
    assert torch.equal(path[0, -1], z0[0])
    assert float(probs[0, -1]) == pytest.approx(1 / (1 + math.exp(-5.0)))
