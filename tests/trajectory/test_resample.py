import pytest
import torch

from cfx.trajectory.resample import resample_path


def _sharp(z: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
    """A confident 1-D classifier: p(z) = sigmoid(40 (z - 0.8)), boundary at z = 0.8."""
    return torch.sigmoid(40 * (z[:, 0] - 0.8))


def test_without_a_model_levels_are_interpolated_in_log_odds_known_answer():
    path = torch.arange(4, dtype=torch.float32).view(1, 4, 1)  # z = 0, 1, 2, 3
    s = torch.tensor([-2.0, -1.0, 1.0, 3.0])  # log-odds at the recorded latents
    probs = torch.sigmoid(s)[None]
    # levels at log-odds -3 (below the start), -1.5, 0, 2 and 4 (never reached)
    levels = torch.sigmoid(torch.tensor([-3.0, -1.5, 0.0, 2.0, 4.0]))
    z = resample_path(path, probs, levels)[0, :, 0]
    assert torch.allclose(z, torch.tensor([0.0, 0.5, 1.5, 2.5, 3.0]), atol=1e-5)


def test_a_sharp_classifier_is_placed_exactly_with_one_evaluation():
    path = torch.tensor([[[0.0], [1.0]]])  # one recorded step across the boundary
    probs = _sharp(path[0])[None]  # (1, 2): ~0 and ~1
    levels = torch.tensor([0.1, 0.3, 0.5, 0.7, 0.9])
    exact = 0.8 + torch.logit(levels) / 40  # closed-form inverse of the classifier
    # interpolating the probability would put every level near 0.8 +- 0.02 at the jump's
    # middle only by luck; in log-odds the line through the ends is the classifier itself
    placed = resample_path(path, probs, levels, prob_fn=_sharp, refine_iters=1)[0, :, 0]
    assert torch.allclose(placed, exact, atol=1e-4)
    assert torch.allclose(_sharp(placed[:, None]), levels, atol=1e-3)


def test_refinement_recovers_a_bent_log_odds_curve():
    # log-odds s(z) = 12 z^3 - 6 on [0, 1]: a straight line through the ends misplaces the
    # levels; a few evaluations of the model narrow the bracket onto the true crossing
    def bent(z, index=None):
        return torch.sigmoid(12 * z[:, 0] ** 3 - 6)

    path = torch.tensor([[[0.0], [1.0]]])
    probs = bent(path[0])[None]
    levels = torch.tensor([0.2, 0.5, 0.8])
    exact = ((torch.logit(levels) + 6) / 12) ** (1 / 3)
    linear = resample_path(path, probs, levels)[0, :, 0]
    refined = resample_path(path, probs, levels, prob_fn=bent, refine_iters=6)[0, :, 0]
    assert (linear - exact).abs().max() > 0.1
    assert torch.allclose(refined, exact, atol=2e-3)


def test_bad_safeguard():
    path, probs = torch.zeros(1, 2, 1), torch.tensor([[0.1, 0.9]])
    with pytest.raises(ValueError, match="`safeguard`"):
        resample_path(path, probs, torch.tensor([0.5]), safeguard=0.7)


def test_per_image_levels_and_unreached_levels():
    path = torch.tensor([[[0.0], [1.0]], [[0.0], [0.5]]])
    probs = torch.stack([_sharp(path[0]), _sharp(path[1])])  # image 2 never reaches 0.5
    levels = torch.tensor([[0.5, 0.9], [0.2, 0.5]])
    z = resample_path(path, probs, levels, prob_fn=_sharp, refine_iters=12)[..., 0]
    assert abs(float(z[0, 0]) - 0.8) < 2e-3
    assert torch.equal(z[1], torch.tensor([0.5, 0.5]))  # never reached: the last latent


def test_refinement_evaluates_only_levels_inside_a_segment():
    # image 1's levels are all reached inside its step; image 2 never moves (all its levels map
    # to its single latent), so prob_fn must see only image 1's positions 0..2
    path = torch.tensor([[[0.0], [1.0]], [[0.0], [0.0]]])
    probs = torch.stack([_sharp(path[0]), torch.zeros(2)])
    levels = torch.tensor([0.3, 0.5, 0.7])
    seen: list[torch.Tensor] = []

    def spy(z, index):
        seen.append(index)
        return _sharp(z)

    z = resample_path(path, probs, levels, prob_fn=spy, refine_iters=10)[..., 0]
    assert all(torch.equal(i, torch.tensor([0, 1, 2])) for i in seen) and len(seen) == 10
    assert torch.allclose(z[0], 0.8 + torch.logit(levels) / 40, atol=3e-3)
    assert torch.equal(z[1], torch.zeros(3))
