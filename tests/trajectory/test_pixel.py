"""The pixel space as a "generator" (cfx/trajectory/pixel.py): the identity, clipped to the
image range. Its use as a baseline explainer is in ``test_contract.py``."""

import pytest
import torch

from cfx.trajectory import PixelSpace


def test_decode_clips_to_the_image_range():
    z = torch.tensor([-3.0, -1.0, 0.5, 2.0]).view(1, 1, 2, 2)
    assert PixelSpace((1, 2, 2)).decode(z).flatten().tolist() == [-1.0, -1.0, 0.5, 1.0]


def test_encode_is_the_identity():
    x = torch.tensor([-0.9, -0.2, 0.3, 0.9]).view(1, 1, 2, 2)
    assert torch.equal(PixelSpace((1, 2, 2)).encode(x), x)


@pytest.mark.parametrize("shape", [(1, 0, 4), (0, 4, 4), (1, 4, -2)])
def test_empty_or_negative_sides_are_refused(shape):
    with pytest.raises(ValueError, match="image_shape"):
        PixelSpace(shape)
