import torch

from cfx.saliency import superpixels


def test_segments_follow_a_sharp_edge():
    x = torch.full((1, 1, 16, 16), -0.9)
    x[..., 5:] = 0.9  # vertical edge between columns 4 and 5
    seg = superpixels(x, n_segments=16, compactness=0.05)
    assert seg.shape == (1, 16, 16) and seg.dtype == torch.int64
    for label in seg.unique():
        cols = torch.nonzero(seg[0] == label)[:, 1]
        assert bool((cols < 5).all()) or bool((cols >= 5).all())


def test_labels_are_deterministic_and_within_range():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 1, 32, 32, generator=g) * 2 - 1
    a = superpixels(x, n_segments=20)
    assert torch.equal(a, superpixels(x, n_segments=20))
    assert int(a.min()) >= 0 and int(a.max()) < 25
    assert torch.equal(superpixels(x, n_segments=20, batch_size=1), a)
