import math

import pytest
import torch

from cfx.shortcuts import claimed_regions, region_areas, region_enrichment, region_shares


def _mask(h, w, *cells):
    m = torch.zeros(1, 1, h, w, dtype=torch.bool)
    for r, c in cells:
        m[0, 0, r, c] = True
    return m


def test_known_shares_sum_to_one():
    change = torch.zeros(1, 1, 4, 4)
    change[0, 0, 0, 0] = 1.0  # in A
    change[0, 0, 1, 1] = 2.0  # in B
    change[0, 0, 3, 3] = 5.0  # in neither
    shares = region_shares(change, {"A": _mask(4, 4, (0, 0)), "B": _mask(4, 4, (1, 1), (2, 2))})
    assert list(shares) == ["A", "B", "elsewhere"]
    assert shares["A"].item() == pytest.approx(1 / 8)
    assert shares["B"].item() == pytest.approx(2 / 8)
    assert shares["elsewhere"].item() == pytest.approx(5 / 8)


def test_overlap_goes_to_the_first_region():
    change = torch.zeros(1, 1, 3, 3)
    change[0, 0, 1, 1] = 3.0  # in both A and B
    change[0, 0, 0, 0] = 1.0  # only in B
    a, b = _mask(3, 3, (1, 1)), _mask(3, 3, (1, 1), (0, 0))
    first_a = region_shares(change, {"A": a, "B": b})
    assert (first_a["A"].item(), first_a["B"].item()) == pytest.approx((0.75, 0.25))
    first_b = region_shares(change, {"B": b, "A": a})
    assert (first_b["B"].item(), first_b["A"].item()) == pytest.approx((1.0, 0.0))
    for shares in (first_a, first_b):
        assert sum(v.item() for v in shares.values()) == pytest.approx(1.0)


def test_zero_mass_is_nan_per_example_and_regions_broadcast():
    change = torch.zeros(2, 1, 4, 4)
    change[1, 0, 0, 0] = 2.0
    change[1, 0, 2, 2] = 2.0
    shares = region_shares(change, {"A": _mask(4, 4, (0, 0))})  # (1, 1, H, W) for both
    assert all(math.isnan(v[0].item()) for v in shares.values())
    assert shares["A"][1].item() == pytest.approx(0.5)
    assert shares["elsewhere"][1].item() == pytest.approx(0.5)


def test_per_example_regions():
    change = torch.ones(2, 1, 2, 2)
    masks = torch.zeros(2, 1, 2, 2, dtype=torch.bool)
    masks[0, 0, 0, 0] = True
    masks[1, 0, :, 0] = True
    shares = region_shares(change, {"A": masks})
    assert torch.allclose(shares["A"], torch.tensor([0.25, 0.5]))


def test_dilation_grows_a_square_and_can_be_per_region():
    change = torch.ones(1, 1, 7, 7)
    regions = {"A": _mask(7, 7, (3, 3)), "B": _mask(7, 7, (0, 0))}
    grown = region_shares(change, regions, dilation=1)
    assert grown["A"].item() == pytest.approx(9 / 49)
    assert grown["B"].item() == pytest.approx(4 / 49)  # clipped by the border
    only_a = region_shares(change, regions, dilation={"A": 2})
    assert only_a["A"].item() == pytest.approx(25 / 49)
    assert only_a["B"].item() == pytest.approx(1 / 49)
    # a grown region claims its halo before a later region
    halo = region_shares(change, {"A": _mask(7, 7, (3, 3)), "B": _mask(7, 7, (3, 4))}, dilation=1)
    assert halo["B"].item() == pytest.approx(3 / 49)


def test_areas_and_enrichment_known_answer():
    change = torch.zeros(2, 1, 4, 4)
    change[0, 0, 0, 0] = 1.0  # all mass in A (1 of 16 pixels)
    change[1] = 1.0  # uniform
    regions = {"A": _mask(4, 4, (0, 0)), "empty": _mask(4, 4)}
    areas = region_areas(regions, change)
    assert torch.allclose(areas["A"], torch.full((2,), 1 / 16))
    assert torch.allclose(areas["elsewhere"], torch.full((2,), 15 / 16))
    enrich = region_enrichment(change, regions)
    assert enrich["A"].tolist() == pytest.approx([16.0, 1.0])
    assert enrich["elsewhere"].tolist() == pytest.approx([0.0, 1.0])
    assert bool(torch.isnan(enrich["empty"]).all())  # empty region: undefined


def test_claimed_regions_are_disjoint_and_cover_the_image():
    regions = {"A": _mask(5, 5, (1, 1), (2, 2)), "B": _mask(5, 5, (2, 2), (4, 4))}
    claimed = claimed_regions(regions, torch.zeros(3, 1, 5, 5), dilation={"A": 1})
    total = sum(claimed.values())
    assert total.shape == (3, 1, 5, 5)
    assert torch.equal(total, torch.ones_like(total))
    assert claimed["B"][0, 0].sum().item() == 1.0  # (2, 2) went to the dilated A


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (torch.ones(2, 4, 4), "`change` must have shape (B, 1, H, W)"),
        (torch.ones(1, 3, 4, 4), "`change` must have shape (B, 1, H, W)"),
        (-torch.ones(1, 1, 4, 4), "`change` must be non-negative"),
        (torch.full((1, 1, 4, 4), float("nan")), "`change` must be finite"),
    ],
)
def test_bad_maps_name_the_argument(change, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        region_shares(change, {"A": _mask(4, 4, (0, 0))})


def test_bad_map_type():
    with pytest.raises(TypeError, match="`change` must be a floating-point tensor"):
        region_shares(torch.ones(1, 1, 4, 4, dtype=torch.long), {"A": _mask(4, 4)})


def test_bad_regions_name_the_region():
    change = torch.ones(2, 1, 4, 4)
    with pytest.raises(ValueError, match=r"`regions\['lesion'\]` must have shape \(2, 1, 4, 4\)"):
        region_shares(change, {"lesion": torch.zeros(2, 1, 5, 5, dtype=torch.bool)})
    with pytest.raises(ValueError, match=r"`regions\['lesion'\]` must have shape"):
        region_shares(change, {"lesion": torch.zeros(3, 1, 4, 4, dtype=torch.bool)})
    with pytest.raises(TypeError, match=r"`regions\['lesion'\]` must be a bool or 0/1 tensor"):
        region_shares(change, {"lesion": [[0, 1]]})
    with pytest.raises(ValueError, match=r"`regions\['lesion'\]` must be bool or hold only 0 a"):
        region_shares(change, {"lesion": torch.full((2, 1, 4, 4), 255.0)})
    with pytest.raises(ValueError, match="'elsewhere'"):
        region_shares(change, {"elsewhere": _mask(4, 4)})
    with pytest.raises(TypeError, match="`regions` must be a non-empty dict"):
        region_shares(change, {})


def test_bad_dilation():
    change, regions = torch.ones(1, 1, 4, 4), {"A": _mask(4, 4)}
    with pytest.raises(ValueError, match="`dilation` must be an int >= 0"):
        region_shares(change, regions, dilation=-1)
    with pytest.raises(ValueError, match=r"`dilation` names regions that are not in `regions`"):
        region_shares(change, regions, dilation={"B": 1})
    with pytest.raises(ValueError, match="`dilation` values must be ints >= 0"):
        region_shares(change, regions, dilation={"A": 1.5})


def test_a_region_may_be_a_0_1_mask_as_the_audit_takes_it():
    """ShortcutAudit took 0/1 float masks and region_shares refused the same mask as 'must be
    a bool tensor, got dtype torch.float32'."""
    change = torch.rand(2, 1, 4, 4)
    region = _mask(4, 4, (0, 0), (1, 2))
    by_bool = region_shares(change, {"lesion": region})["lesion"]
    by_float = region_shares(change, {"lesion": region.float()})["lesion"]
    assert torch.equal(by_float, by_bool) and bool((by_bool > 0).all())
