import pytest
import torch
from scipy.stats import spearmanr

from cfx.metrics import (
    calibration_error,
    cout,
    flip_rate,
    increasing_steps,
    localisation,
    monotonicity_spearman,
    spearman,
)


def test_spearman_matches_scipy_with_ties():
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 5, (6, 11), generator=g).float()
    b = torch.randn(6, 11, generator=g)
    ours = spearman(a, b)
    ref = torch.tensor([spearmanr(a[i], b[i]).statistic for i in range(6)], dtype=torch.float32)
    assert torch.allclose(ours, ref, atol=1e-5)


def test_monotonicity_and_calibration_known_answers():
    levels = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0])
    perfect = torch.tensor([[0.05, 0.25, 0.5, 0.75, 0.97]])
    wobbly = torch.tensor([[0.05, 0.4, 0.3, 0.8, 0.9]])
    assert torch.allclose(monotonicity_spearman(perfect), torch.ones(1))
    assert torch.allclose(increasing_steps(perfect), torch.ones(1))
    assert torch.allclose(increasing_steps(wobbly), torch.tensor([0.75]))
    assert torch.allclose(calibration_error(perfect, levels), torch.tensor([0.03]), atol=1e-6)
    assert torch.allclose(calibration_error(wobbly, levels), torch.tensor([0.2]), atol=1e-6)
    assert flip_rate(torch.tensor([0.9, 0.4])).tolist() == [1.0, 0.0]


def test_localisation_shares():
    start = torch.zeros(2, 1, 8, 8)
    mask = torch.zeros(2, 1, 8, 8, dtype=torch.bool)
    mask[:, :, 2:4, 2:4] = True
    final = start.clone()
    final[0, :, 2:4, 2:4] = 1.0  # all change inside
    final[1, :, 2:4, 2:4] = 1.0
    final[1, :, 6:8, 6:8] = 1.0  # half outside (beyond the 1-pixel dilation)
    share = localisation(start, final, mask, dilation=1)
    assert torch.allclose(share, torch.tensor([1.0, 0.5]))
    assert torch.isnan(localisation(start, start, mask))[0]


def test_cout_known_answer_on_a_pixel_count_classifier():
    """A classifier whose target log-odds grow with the number of bright pixels."""

    def f(x):
        s = (x > 0).flatten(1).float().sum(1) - 8.0
        return torch.stack([-s, s], 1) * 10  # saturated: class 1 iff > 8 bright pixels

    src = -torch.ones(1, 1, 4, 4)
    cf = torch.ones(1, 1, 4, 4)
    value = cout(f, src, cf, torch.tensor([1]), steps=16)
    # after k of 16 stages, k pixels are bright: class 1 wins for k >= 9 (8 of 16 stages),
    # loses for k <= 7, ties at k = 8 (score 0): mean = (8 * 1 + 7 * -1 + 0) / 16
    assert value.item() == pytest.approx(1 / 16, abs=1e-4)


def test_summarise_flip_rate_follows_success_for_three_classes():
    """With three classes a last frame can be the argmax at a target probability below 0.5
    (0.45 against 0.30 and 0.25): the flip counts when ``success`` is given."""
    from cfx.metrics.trajectory import summarise

    probs = torch.tensor([[0.1, 0.3, 0.45], [0.1, 0.3, 0.9], [0.1, 0.2, 0.3]])
    levels = torch.tensor([0.0, 0.5, 1.0])
    frames = torch.zeros(3, 3, 1, 4, 4)
    source = torch.zeros(3, 1, 4, 4)
    success = torch.tensor([True, True, False])
    assert summarise(probs, levels, frames, source)["flip_rate"] == pytest.approx(1 / 3)
    with_success = summarise(probs, levels, frames, source, success=success)
    assert with_success["flip_rate"] == pytest.approx(2 / 3)
