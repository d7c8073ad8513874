import pytest
import torch

from cfx.calls import frozen
from cfx.trajectory._common import composite_decoder
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
    def never(z, rows):
        raise AssertionError("no point lies between neighbours that do not climb")

    # every step falls: no frame has neighbours that climb, so nothing is even evaluated
    zs = torch.tensor([[0.5, 0.4, 0.3, 0.2]])[..., None]
    probs = _logistic(zs[0])[None]
    fixed, p = repair_steps(zs, probs, never)
    assert torch.equal(fixed, zs) and torch.equal(p, probs)


def test_a_frame_made_repairable_by_its_successor_is_repaired_on_the_next_pass():
    # frame 1 falls below frame 0 while frame 2 is lower still; once frame 2 moves between
    # frames 1 and 3, frame 1 has climbing neighbours and a second pass moves it
    zs = torch.tensor([[0.0, -0.2, -0.5, 0.6, 1.0]])[..., None]
    fixed, p = repair_steps(zs, _logistic(zs[0])[None], _logistic)
    assert bool((p.diff(dim=1) > 0).all())
    assert torch.equal(fixed[0, [0, 3, 4]], zs[0, [0, 3, 4]])


def test_latents_keep_their_dtype_when_the_probabilities_are_double():
    zs = torch.tensor([[0.0, 0.35, 0.2, 0.6, 1.0]])[..., None]  # float32
    seen = []

    def prob(z, rows):
        seen.append(z.dtype)
        return _logistic(z).double()

    fixed, p = repair_steps(zs, _logistic(zs[0])[None].double(), prob)
    assert fixed.dtype == torch.float32 and p.dtype == torch.float64
    assert set(seen) == {torch.float32}
    assert bool((p.diff(dim=1) > 0).all())


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


class ShapedGenerator(LinearGenerator):
    """The linear toy with latents of shape (3, 1), as a generator with image-like latents."""

    @property
    def latent_shape(self):
        return (self.A.shape[1], 1)

    def decode(self, z):
        return super().decode(z.flatten(1))


def test_finish_repairs_only_the_moved_frames_of_a_composite_path():
    g, f, oracle = ShapedGenerator(), LogisticClassifier(), LogisticClassifier(seed=7)
    u = g.A.detach().T @ f.w.detach()
    u = (u / u.norm() ** 2).view(3, 1)
    z0 = torch.stack([-2 * u, -3 * u])  # (2, 3, 1)
    climbs = torch.tensor([[0.0, 1.0, 2.0, 3.0, 4.0], [0.0, 1.0, 3.0, 2.0, 4.0]])
    zs = (z0[:, None] + climbs[..., None, None] * u).detach()  # (2, 5, 3, 1); path 1 steps back
    with torch.no_grad():
        start_img = g.decode(z0)
    mask = torch.stack([torch.full((1, 4, 4), 0.5), torch.ones(1, 4, 4)])  # per image
    decode = composite_decoder(g, mask, start_img)
    explainer = GradientAscent(g, f, steps=4, oracle=oracle, show_progress=False)
    with frozen(g, f, oracle):
        begin = start(explainer, start_img, 1, latents=z0)
        result = finish(
            explainer,
            start_img,
            zs,
            torch.linspace(0, 1, 5),
            begin,
            0.0,
            lambdas=None,
            decode=decode,
        )
        plain = decode(zs.flatten(0, 1), torch.arange(2).repeat_interleave(5)).view(2, 5, 1, 4, 4)
        want_frame = decode(result.latents[1, 2:3], torch.tensor([1]))[0]
        want_oracle = torch.sigmoid(oracle(result.frames[1, 2:3])[0, 1])
    assert bool((result.probs.diff(dim=1) > 0).all())
    assert torch.equal(result.latents[0], zs[0]) and torch.equal(result.frames[0], plain[0])
    assert torch.equal(result.frames[1, [0, 1, 3, 4]], plain[1, [0, 1, 3, 4]])
    assert not torch.equal(result.frames[1, 2], plain[1, 2])
    # the moved frame is path 1's composite (its mask, not path 0's) and is scored again
    assert torch.allclose(result.frames[1, 2], want_frame, atol=1e-6)
    assert torch.allclose(result.oracle_probs[1, 2], want_oracle, atol=1e-6)
    # ... placed where its own composite crosses the mean of its neighbours' probabilities
    goal = (result.probs[1, 1] + result.probs[1, 3]) / 2
    assert abs(float(result.probs[1, 2] - goal)) < 1e-3
