import pytest
import torch
from torch import nn

from cfx.training.init import reset_parameters


def _built_under(global_seed: int) -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(global_seed)
        return nn.Sequential(
            nn.Conv1d(2, 3, 3),
            nn.Conv3d(1, 2, 2),
            nn.ConvTranspose1d(3, 2, 3),
            nn.ConvTranspose3d(2, 1, 2),
            nn.Conv2d(1, 2, 3),
            nn.Linear(4, 2),
        )


def test_every_convolution_and_linear_layer_is_drawn_from_the_generator():
    """Conv1d/Conv3d and the transposed ones kept the biases the global RNG gave them."""
    a, b = _built_under(1), _built_under(2)
    reset_parameters(a, torch.Generator().manual_seed(0))
    reset_parameters(b, torch.Generator().manual_seed(0))
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key


@pytest.mark.parametrize("layer", [nn.Conv1d(2, 3, 3), nn.Conv3d(2, 3, 2), nn.Linear(5, 3)])
def test_biases_are_uniform_within_one_over_the_root_of_the_fan_in(layer):
    """PyTorch's own bias scheme: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    with torch.no_grad():
        layer.bias.fill_(10.0)
    reset_parameters(layer, torch.Generator().manual_seed(0))
    bound = 1 / layer.weight[0].numel() ** 0.5
    assert bool((layer.bias.abs() <= bound).all())


def test_a_parameter_of_ones_own_keeps_its_value():
    """No scheme is known for it: it is left as the module holds it (as documented)."""

    class Scaled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.arange(4.0))

    m = reset_parameters(Scaled(), torch.Generator().manual_seed(0))
    assert torch.equal(m.scale.detach(), torch.arange(4.0))
