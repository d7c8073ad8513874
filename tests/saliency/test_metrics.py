import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import spearmanr

from cfx.saliency import metrics as M


def _mask(h=6, w=6, rows=slice(1, 3), cols=slice(1, 4)):
    m = torch.zeros(1, 1, h, w, dtype=torch.bool)
    m[..., rows, cols] = True
    return m  # 2 x 3 = 6 pixels


def test_pointing_game_hit_miss_tolerance_and_empty_mask():
    mask = _mask()
    hit = torch.zeros(1, 1, 6, 6)
    hit[..., 2, 2] = 1.0
    miss = torch.zeros(1, 1, 6, 6)
    miss[..., 5, 5] = 1.0
    assert M.pointing_game(hit, mask).item() == 1.0
    assert M.pointing_game(miss, mask).item() == 0.0
    # (5, 5) is sqrt(3^2 + 2^2) ~ 3.6 px from the nearest mask pixel (2, 3)
    assert M.pointing_game(miss, mask, tolerance=3).item() == 0.0
    assert M.pointing_game(miss, mask, tolerance=4).item() == 1.0
    assert math.isnan(M.pointing_game(hit, torch.zeros_like(mask)).item())


def test_pointing_game_shares_ties_so_a_blank_map_scores_chance():
    mask = _mask()  # 6 of 36 pixels
    assert M.pointing_game(torch.zeros(1, 1, 6, 6), mask).item() == pytest.approx(6 / 36)
    assert M.pointing_game(torch.full((1, 1, 6, 6), 0.5), mask).item() == pytest.approx(6 / 36)
    two = torch.zeros(1, 1, 6, 6)
    two[..., 2, 2] = two[..., 5, 5] = 1.0  # one maximum inside, one outside
    assert M.pointing_game(two, mask).item() == pytest.approx(0.5)


def test_mass_and_energy_known_answers():
    mask = _mask()
    maps = torch.zeros(1, 1, 6, 6)
    maps[..., 1, 1] = 3.0  # inside the mask
    maps[..., 5, 5] = 1.0  # outside the mask and its box
    maps[..., 0, 0] = -2.0  # negative evidence
    assert M.relevance_mass_accuracy(maps.clamp(min=0), mask).item() == pytest.approx(3 / 4)
    assert M.energy_pointing_game(maps, mask).item() == pytest.approx(3 / 4)


def test_energy_uses_the_bounding_box():
    mask = torch.zeros(1, 1, 5, 5, dtype=torch.bool)
    mask[..., 0, 0] = mask[..., 2, 2] = True  # box rows 0-2, cols 0-2
    maps = torch.zeros(1, 1, 5, 5)
    maps[..., 1, 1] = 1.0  # inside the box, outside the mask
    maps[..., 4, 4] = 1.0
    assert M.energy_pointing_game(maps, mask).item() == pytest.approx(0.5)
    assert M.relevance_mass_accuracy(maps, mask).item() == 0.0
    box = M.bounding_box(mask)
    assert int(box.sum()) == 9


def test_rank_dice_iou_known_answers():
    mask = _mask()  # 6 pixels
    maps = torch.zeros(1, 1, 6, 6)
    maps[..., 1, 1:4] = torch.tensor([9.0, 8.0, 7.0])  # 3 of the mask
    maps[..., 5, :3] = torch.tensor([6.0, 5.0, 4.0])  # 3 outside
    assert M.relevance_rank_accuracy(maps, mask).item() == pytest.approx(0.5)
    assert M.top_k_dice(maps, mask).item() == pytest.approx(0.5)
    assert M.top_k_iou(maps, mask).item() == pytest.approx(3 / 9)
    perfect = mask.float()
    assert M.top_k_iou(perfect, mask).item() == 1.0


def test_ties_at_the_top_k_edge_count_in_expectation():
    """Known answer, P = 6, K = |mask| = 3: map (3, 1, 1, 1, 0, 0), mask (0, 1, 0, 1, 1, 0).
    Pixel 0 is above the third value (1); two places go to the tied pixels 1, 2, 3, of which
    1 and 3 are in the mask: the pairs {1,2}, {1,3}, {2,3} hit 1, 2, 1 mask pixels, mean 4/3.
    Pixel order would have taken 1 and 2 (1 hit)."""
    maps = torch.tensor([3.0, 1.0, 1.0, 1.0, 0.0, 0.0]).view(1, 1, 2, 3)
    mask = torch.tensor([0, 1, 0, 1, 1, 0], dtype=torch.bool).view(1, 1, 2, 3)
    assert M.expected_top_k_hits(maps, mask, torch.tensor([3])).item() == pytest.approx(4 / 3)
    assert M.relevance_rank_accuracy(maps, mask).item() == pytest.approx(4 / 9)
    assert M.top_k_dice(maps, mask).item() == pytest.approx(4 / 9)
    assert M.top_k_iou(maps, mask).item() == pytest.approx((4 / 3) / (6 - 4 / 3))


def test_a_blank_map_scores_the_masks_share_wherever_the_mask_lies():
    """Ties broken by pixel order gave a blank map Dice 1 for a mask in the top rows and 0 for
    one in the bottom rows."""
    blank = torch.zeros(2, 1, 32, 32)
    masks = torch.zeros(2, 1, 32, 32, dtype=torch.bool)
    masks[0, 0, :2] = True
    masks[1, 0, -2:] = True
    share = 64 / 1024
    for score in (M.top_k_dice, M.relevance_rank_accuracy):
        assert score(blank, masks).tolist() == pytest.approx([share, share])
    # a map whose only positive pixels miss the top mask: its K - 1 zeros share the rest
    spot = blank.clone()
    spot[:, 0, 16, 16] = 1.0
    assert M.top_k_dice(spot, masks).tolist() == pytest.approx([63 * 64 / 1023 / 64] * 2)


def test_batched_values_are_per_example():
    masks = torch.cat([_mask(), _mask(rows=slice(4, 6), cols=slice(0, 3))])
    maps = torch.cat([_mask().float(), _mask().float()])
    assert M.top_k_dice(maps, masks).tolist() == [1.0, 0.0]


def test_similarity_known_answers():
    a = torch.arange(16.0).view(1, 1, 4, 4)
    assert M.top_k_intersection(a, a, 4).item() == 1.0
    assert M.top_k_intersection(a, -a, 4).item() == 0.0
    # a blank map against a top-left and a bottom-right one: the expected share under a
    # random tie-break, k / P = 3 / 16, both ways (pixel order gave 1.0 and 0.0)
    blank, corner = torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4)
    corner[..., 0, :3] = 1.0
    for other in (corner, corner.flip(2, 3)):
        assert M.top_k_intersection(blank, other, 3).item() == pytest.approx(3 / 16)
    # a tie at the k-th value only: the top 2 of (3, 2, 2, 0) share the 2s' one place
    x, y = torch.tensor([3.0, 2, 2, 0]).view(1, 1, 2, 2), torch.tensor([3.0, 2, 0, 0])
    assert M.top_k_intersection(x, y.view(1, 1, 2, 2), 2).item() == pytest.approx((1 + 0.5) / 2)
    # a pixel counts by the smaller of its two tied shares: (1, 1, 1, 0) and (0, 1, 1, 1) at
    # k = 2 give each tied pixel 2/3; the middle two count 2/3 each: (4/3) / 2
    u, v = torch.tensor([1.0, 1, 1, 0]), torch.tensor([0.0, 1, 1, 1])
    assert M.top_k_intersection(u.view(1, 1, 2, 2), v.view(1, 1, 2, 2), 2).item() == (
        pytest.approx(2 / 3)
    )


def test_a_tied_map_keeps_its_whole_top_k_against_itself():
    """Tie-breaks drawn for each map apart scored a map with plateaus below 1 against itself
    (a blank one k / P): an attack that changed nothing read as one that moved the map
    (session-55 audit: 0.78-0.92 for KernelSHAP, LIME and Occlusion maps)."""
    plateaus = torch.tensor([[3.0, 3, 2, 2], [2, 2, 1, 1], [1, 1, 0, 0], [0, 0, 0, 0]])
    for m in (plateaus.view(1, 1, 4, 4), torch.zeros(1, 1, 4, 4)):
        for k in (1, 3, 5, 16):
            assert M.top_k_intersection(m, m, k).item() == pytest.approx(1.0)


def test_similarity_rank_correlation_known_answers():
    a = torch.arange(16.0).view(1, 1, 4, 4)
    assert M.spearman(a, a**3).item() == pytest.approx(1.0)
    assert M.spearman(a, -a).item() == pytest.approx(-1.0)
    assert M.spearman(a, torch.zeros_like(a)).item() == 0.0
    point = torch.zeros(1, 1, 5, 5)
    point[..., 1, 1] = 1.0
    moved = torch.zeros(1, 1, 5, 5)
    moved[..., 4, 5 - 1] = -2.0  # |map| is used
    assert M.mass_center(point).tolist() == [[1.0, 1.0]]
    assert M.mass_center_shift(point, moved).item() == pytest.approx(math.hypot(3, 3))
    # another size, or another batch, was scored (or broadcast) without a word
    with pytest.raises(ValueError, match="maps differ in shape"):
        M.mass_center_shift(point, torch.zeros(1, 1, 6, 6))
    with pytest.raises(ValueError, match="maps differ in shape"):
        M.mass_center_shift(point.expand(3, 1, 5, 5), moved)


@pytest.mark.filterwarnings("ignore::scipy.stats.ConstantInputWarning")
@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.integers(-3, 3), min_size=9, max_size=9),
    st.lists(st.integers(-3, 3), min_size=9, max_size=9),
)
def test_spearman_matches_scipy_with_ties(xs, ys):
    a = torch.tensor(xs, dtype=torch.float32).view(1, 1, 3, 3)
    b = torch.tensor(ys, dtype=torch.float32).view(1, 1, 3, 3)
    expected = spearmanr(xs, ys).statistic
    got = M.spearman(a, b).item()
    if math.isnan(expected):
        assert got == 0.0
    else:
        assert got == pytest.approx(expected, abs=1e-5)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_dice_of_top_k_equals_rank_accuracy(seed):
    g = torch.Generator().manual_seed(seed)
    maps = torch.randn(2, 1, 6, 6, generator=g)
    masks = torch.rand(2, 1, 6, 6, generator=g) < 0.3
    masks[:, :, 0, 0] = True
    assert torch.allclose(M.top_k_dice(maps, masks), M.relevance_rank_accuracy(maps, masks))


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        M.pointing_game(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="`masks` must have"):
        M.top_k_dice(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="only 0 and 1"):
        M.top_k_dice(torch.zeros(1, 1, 2, 2), torch.full((1, 1, 2, 2), 0.5))
    with pytest.raises(ValueError, match="`k`"):
        M.top_k_intersection(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2), 5)
    with pytest.raises(ValueError, match="NaN"):
        M.spearman(torch.full((1, 1, 2, 2), float("nan")), torch.zeros(1, 1, 2, 2))
    # masks passed for maps (arguments swapped): named by dtype and shape, not the contents
    masks = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
    with pytest.raises(TypeError, match=r"got a torch.bool tensor \(1, 1, 4, 4\)$"):
        M.pointing_game(masks, torch.zeros(1, 1, 4, 4))


def test_mass_center_off_diagonal_and_of_a_blank_map():
    m = torch.zeros(1, 1, 5, 5)
    m[0, 0, 1, 3] = 1.0  # row 1, column 3: the centre is (row, column), not transposed
    assert M.mass_center(m).tolist() == [[1.0, 3.0]]
    # a blank map has no mass: its centre is the image's, ((4 - 1) / 2, (6 - 1) / 2)
    assert M.mass_center(torch.zeros(1, 1, 4, 6)).tolist() == [[1.5, 2.5]]


def test_relevance_mass_of_an_all_zero_map_is_zero_not_nan():
    mask = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
    mask[..., 0, 0] = True
    assert M.relevance_mass_accuracy(torch.zeros(1, 1, 4, 4), mask).item() == 0.0


def test_relevance_mass_refuses_signed_maps():
    """A map and its negation both scored -2.0: the sum over the image cancelled."""
    mask = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
    mask[..., :2, :] = True
    signed = torch.zeros(1, 1, 4, 4)
    signed[..., 0, 0], signed[..., 3, 3] = 2.0, -1.5
    with pytest.raises(
        ValueError, match=r"non-negative for relevance mass, got values down to -1\.5"
    ):
        M.relevance_mass_accuracy(signed, mask)
    assert M.relevance_mass_accuracy(signed.clamp(min=0), mask).item() == 1.0
    assert M.relevance_mass_accuracy(signed.abs(), mask).item() == pytest.approx(2.0 / 3.5)


def test_top_k_scores_of_an_empty_mask_are_nan_next_to_a_real_one():
    """K = |mask| = 0 selects nothing: nothing to localise, NaN (as the pointing game), and the
    other example of the batch keeps its score."""
    masks = torch.cat([torch.zeros(1, 1, 6, 6, dtype=torch.bool), _mask()])
    maps = torch.cat([_mask().float(), _mask().float()])
    for score in (M.relevance_rank_accuracy, M.top_k_dice, M.top_k_iou):
        got = score(maps, masks).tolist()
        assert math.isnan(got[0]) and got[1] == 1.0, score.__name__


def test_pointing_game_counts_only_the_exact_maximum():
    # 1.0 inside the mask, 0.9995 outside: one maximum, a hit (no near-tie sharing)
    maps = torch.zeros(1, 1, 6, 6)
    maps[..., 2, 2] = 1.0
    maps[..., 5, 5] = 0.9995
    assert M.pointing_game(maps, _mask()).item() == 1.0


def test_pointing_game_tolerance_includes_its_own_distance():
    # the maximum at (5, 3) is exactly 3 px below the mask pixel (2, 3)
    maps = torch.zeros(1, 1, 6, 6)
    maps[..., 5, 3] = 1.0
    assert M.pointing_game(maps, _mask(), tolerance=3).item() == 1.0
    assert M.pointing_game(maps, _mask(), tolerance=2).item() == 0.0


@pytest.mark.parametrize("tolerance", [-1, True, 1.5])
def test_pointing_game_tolerance_must_be_a_non_negative_int(tolerance):
    with pytest.raises(ValueError, match="`tolerance` must be a non-negative int"):
        M.pointing_game(torch.zeros(1, 1, 6, 6), _mask(), tolerance=tolerance)
