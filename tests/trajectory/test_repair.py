import pytest
import torch

from cfx.calls import frozen
from cfx.trajectory.gradient_ascent import GradientAscent, finish
from cfx.trajectory.repair import repair_steps
from cfx.trajectory.start import start
from tests.trajectory.toy import LinearGenerator, LogisticClassifier


def _logistic(z: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
    """p(z) = sigmoid(4 (z - 0.5)) on the first coordinate."""
    return torch.sigmoid(4 * (z[:, 0] - 0.5))


def test_a_frame_above_its_successor_moves_to_the_closed_form_point():
    zs = torch.tensor([[0.0, 0.35, 0.2, 0.6, 1.0]])[..., None]  # frame 1 overshoots frame 2
    probs = _logistic(zs[0])[None]
    fixed, p = repair_steps(zs, probs, _logistic, iters=16)
    # between its neighbours (z = 0 and 0.2) at the mean of their probabilities
    goal = (probs[0, 0] + probs[0, 2]) / 2
    exact = 0.5 + torch.logit(goal) / 4
    assert abs(float(fixed[0, 1, 0] - exact)) < 1e-4
    assert torch.equal(fixed[0, [0, 2, 3, 4]], zs[0, [0, 2, 3, 4]])  # only frame 1 moved
    assert bool((p.diff(dim=1) > 0).all())
    assert torch.allclose(p, _logistic(fixed[0])[None])


def test_a_tie_is_broken_and_the_last_frame_never_moves():
    zs = torch.tensor([[0.0, 0.3, 0.6, 0.6]])[..., None]  # the last step ties
    probs = _logistic(zs[0])[None]
    fixed, p = repair_steps(zs, probs, _logistic)
    assert torch.equal(fixed[0, -1], zs[0, -1])  # the end (and its margin) stays
    assert 0.3 < float(fixed[0, 2, 0]) < 0.6  # frame 2 moved back between its neighbours
    assert bool((p.diff(dim=1) > 0).all())


def test_climbing_paths_are_not_evaluated():
    def never(z, rows):
        raise AssertionError("a climbing path was re-evaluated")

    zs = torch.linspace(0, 1, 6).view(1, 6, 1)
    fixed, _ = repair_steps(zs, _logistic(zs[0])[None], never)
    assert torch.equal(fixed, zs)


def test_a_step_that_cannot_be_repaired_is_left_alone():
    # frames 1 and 3 both step back below frame 0 / 2: no point between neighbours exists
    zs = torch.tensor([[0.5, 0.4, 0.3, 0.2]])[..., None]
    probs = _logistic(zs[0])[None]
    fixed, p = repair_steps(zs, probs, _logistic)
    assert torch.equal(fixed, zs) and torch.equal(p, probs)


def test_only_the_rows_that_need_it_are_evaluated():
    seen = []

    def counting(z, rows):
        seen.append(rows.clone())
        return _logistic(z)

    zs = torch.tensor([[0.0, 0.2, 0.4, 0.6], [0.0, 0.4, 0.2, 0.6]])[..., None]
    fixed, p = repair_steps(zs, _logistic(zs.flatten(0, 1)).view(2, 4), counting)
    assert all(r.tolist() == [1] for r in seen)
    assert torch.equal(fixed[0], zs[0])
    assert bool((p.diff(dim=1) > 0).all())


def test_bad_shapes():
    with pytest.raises(ValueError, match="`zs` must be"):
        repair_steps(torch.zeros(1, 4), torch.zeros(1, 4), _logistic)
    with pytest.raises(ValueError, match="`probs`"):
        repair_steps(torch.zeros(1, 4, 2), torch.zeros(1, 3), _logistic)


def test_finish_repairs_a_path_that_steps_back_on_the_toy():
    g, f = LinearGenerator(), LogisticClassifier()
    u = g.A.detach().T @ f.w.detach()  # the latent direction of the target log-odds
    u = u / u.norm() ** 2  # one unit along it raises the log-odds by one
    z0 = -2 * u[None]
    climbs = torch.tensor([0.0, 1.0, 3.0, 2.0, 4.0])  # frame 2 overshoots frame 3
    zs = (z0[:, None] + climbs[None, :, None] * u).detach()  # (1, 5, 3)
    explainer = GradientAscent(g, f, steps=4, show_progress=False)
    x = g.decode(z0).detach()
    with frozen(g, f):
        begin = start(explainer, x, 1, latents=z0)
        result = finish(explainer, x, zs, torch.linspace(0, 1, 5), begin, 0.0, lambdas=None)
    assert bool((result.probs.diff(dim=1) > 0).all())
    # frame 2 now sits between frames 1 and 3, where the log-odds is linear in the segment
    s = torch.logit(result.probs[0])
    with torch.no_grad():
        s0 = float(f(g.decode(z0))[0, 1])
    goal = (torch.sigmoid(torch.tensor(s0 + 1.0)) + torch.sigmoid(torch.tensor(s0 + 2.0))) / 2
    assert abs(float(s[2] - torch.logit(goal))) < 1e-3
    assert torch.allclose(result.frames[0, 2], g.decode(result.latents[0, 2:3])[0], atol=1e-6)
    assert torch.equal(result.latents[0, [0, 1, 3, 4]], zs[0, [0, 1, 3, 4]])
