import torch

from cfx.trajectory.resample import resample_path


def _sharp(z: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
    """A confident 1-D classifier: p(z) = sigmoid(40 (z - 0.8)), boundary at z = 0.8."""
    return torch.sigmoid(40 * (z[:, 0] - 0.8))


def test_linear_interpolation_is_the_default_known_answer():
    path = torch.arange(4, dtype=torch.float32).view(1, 4, 1)  # z = 0, 1, 2, 3
    probs = torch.tensor([[0.1, 0.3, 0.5, 0.9]])
    levels = torch.tensor([0.05, 0.2, 0.5, 0.7, 0.95])
    z = resample_path(path, probs, levels)[0, :, 0]
    assert torch.allclose(z, torch.tensor([0.0, 0.5, 2.0, 2.5, 3.0]))


def test_bisection_places_levels_where_a_sharp_classifier_reaches_them():
    path = torch.tensor([[[0.0], [1.0]]])  # one recorded step across the boundary
    probs = _sharp(path[0])[None]  # (1, 2): ~0 and ~1
    levels = torch.tensor([0.1, 0.3, 0.5, 0.7, 0.9])
    exact = 0.8 + torch.logit(levels) / 40  # closed-form inverse of the classifier
    linear = resample_path(path, probs, levels)[0, :, 0]
    bisected = resample_path(path, probs, levels, prob_fn=_sharp, bisect_iters=12)[0, :, 0]
    assert (linear - exact).abs().max() > 0.2  # interpolating in probability misplaces them
    assert torch.allclose(bisected, exact, atol=2e-3)
    assert torch.allclose(_sharp(bisected[:, None]), levels, atol=0.02)


def test_per_image_levels_and_unreached_levels():
    path = torch.tensor([[[0.0], [1.0]], [[0.0], [0.5]]])
    probs = torch.stack([_sharp(path[0]), _sharp(path[1])])  # image 2 never reaches 0.5
    levels = torch.tensor([[0.5, 0.9], [0.2, 0.5]])
    z = resample_path(path, probs, levels, prob_fn=_sharp, bisect_iters=12)[..., 0]
    assert abs(float(z[0, 0]) - 0.8) < 2e-3
    assert torch.equal(z[1], torch.tensor([0.5, 0.5]))  # never reached: the last latent


def test_bisection_evaluates_only_levels_inside_a_segment():
    # image 1's levels are all reached inside its step; image 2 never moves (all its levels map
    # to its single latent), so prob_fn must see only image 1's positions 0..2
    path = torch.tensor([[[0.0], [1.0]], [[0.0], [0.0]]])
    probs = torch.stack([_sharp(path[0]), torch.zeros(2)])
    levels = torch.tensor([0.3, 0.5, 0.7])
    seen: list[torch.Tensor] = []

    def spy(z, index):
        seen.append(index)
        return _sharp(z)

    z = resample_path(path, probs, levels, prob_fn=spy, bisect_iters=10)[..., 0]
    assert all(torch.equal(i, torch.tensor([0, 1, 2])) for i in seen) and len(seen) == 10
    assert torch.allclose(z[0], 0.8 + torch.logit(levels) / 40, atol=3e-3)
    assert torch.equal(z[1], torch.zeros(3))
