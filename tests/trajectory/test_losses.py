import math

import pytest
import torch

from cfx.trajectory.losses import (
    calibration_loss,
    end_margin_loss,
    identity_loss,
    monotonicity_loss,
    smoothness_loss,
)


def test_end_margin_loss_is_a_hinge_on_log_odds():
    # logit(0.99) = log(99) = 4.595: a last frame at log-odds 2 is 2.595 short, one at 6 is past
    s = torch.tensor([2.0, math.log(99.0), 6.0])
    loss = end_margin_loss(s, 0.99)
    assert loss.tolist() == pytest.approx([math.log(99.0) - 2.0, 0.0, 0.0], abs=1e-5)
    # the gradient does not vanish near p = 1, unlike the probability's p (1 - p)
    s = torch.tensor([4.0], requires_grad=True)
    end_margin_loss(s, 0.999).sum().backward()
    assert float(s.grad) == pytest.approx(-1.0)


def test_calibration_monotonicity_and_smoothness_known_values():
    probs = torch.tensor([[0.2, 0.1, 0.9]])
    levels = torch.tensor([1 / 3, 2 / 3, 1.0])
    assert float(calibration_loss(probs, levels)) == pytest.approx(
        abs(0.2 - 1 / 3) + abs(0.1 - 2 / 3) + 0.1, abs=1e-6
    )
    # steps from the start 0.0: +0.2, -0.1, +0.8; with gap 0.05 only the middle one is charged
    assert float(monotonicity_loss(probs, torch.tensor([0.0]), gap=0.05)) == pytest.approx(0.15)
    z = torch.tensor([[[1.0, 0.0], [1.0, 2.0]]])  # (1, T=2, d=2), start at the origin
    assert float(smoothness_loss(z, torch.zeros(1, 2))) == pytest.approx(0.5 + 2.0)


def test_monotonicity_loss_charges_the_first_step_from_the_start():
    # start 0.5, frames 0.3 and 0.6: the first step falls by 0.2, the second climbs
    loss = monotonicity_loss(torch.tensor([[0.3, 0.6]]), torch.tensor([0.5]))
    assert float(loss) == pytest.approx(0.2)


def test_identity_loss_is_the_mean_absolute_change_over_frames():
    start = torch.zeros(1, 1, 2, 2)
    frames = torch.zeros(1, 2, 1, 2, 2)
    frames[0, 0] = 1.0  # frame 1 changes every pixel by 1, frame 2 changes none: (1 + 0) / 2
    assert float(identity_loss(frames, start)) == pytest.approx(0.5)
    frames[0, 0] = 2.0  # (2 + 0) / 2 = 1: L1, where L2 would give (4 + 0) / 2
    assert float(identity_loss(frames, start)) == pytest.approx(1.0)


def test_smoothness_loss_charges_the_first_step_from_the_start_per_latent_dimension():
    # one frame at (2, 0) from the start (1, 0): squared step 1, over d = 2 dimensions
    z = torch.tensor([[[2.0, 0.0]]])
    assert float(smoothness_loss(z, torch.tensor([[1.0, 0.0]]))) == pytest.approx(0.5)
