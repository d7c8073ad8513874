import numpy as np
import pytest
import torch

from cfx.data.io import load_images


def test_a_tensor_file_round_trips_and_uint8_maps_to_minus_one_one(tmp_path):
    x = torch.tensor([[[[0, 255], [51, 204]]]], dtype=torch.uint8)  # (1, 1, 2, 2)
    torch.save(x, tmp_path / "x.pt")
    got = load_images(tmp_path / "x.pt", name="--input")
    assert torch.allclose(got, torch.tensor([[[[-1.0, 1.0], [-0.6, 0.6]]]]), atol=1e-6)


@pytest.mark.parametrize(
    "write",
    [
        lambda p: p.write_bytes(b"not a tensor file"),  # damaged
        lambda p: torch.save(np.zeros((1, 1, 2, 2)), p),  # a pickled numpy array
        lambda p: torch.save({"x": torch.zeros(1, 1, 2, 2)}, p),  # not a single tensor
    ],
    ids=["damaged", "numpy-pickle", "dict"],
)
def test_a_pt_file_that_is_not_one_plain_tensor_is_named_in_the_error(tmp_path, write):
    path = tmp_path / "bad.pt"
    write(path)
    with pytest.raises((ValueError, TypeError), match=r"`--input` \(.*bad\.pt\)") as err:
        load_images(path, name="--input")
    # never the advice to unpickle a user's file
    assert "weights_only" not in str(err.value) and "allow_pickle" not in str(err.value)


@pytest.mark.parametrize(
    ("write", "match"),
    [
        (lambda p: p.write_bytes(b"garbage"), "not a .npy file of numbers"),
        (lambda p: np.save(p, np.array([{}], dtype=object)), "not a .npy file of numbers"),
        (lambda p: np.save(p, np.array(["a", "b"])), "must hold numbers, got dtype <U1"),
    ],
    ids=["damaged", "objects", "strings"],
)
def test_a_npy_file_that_is_not_numbers_is_named_in_the_error(tmp_path, write, match):
    path = tmp_path / "bad.npy"
    write(path)
    with pytest.raises((ValueError, TypeError), match=match) as err:
        load_images(path, name="--input")
    assert "`--input`" in str(err.value) and "allow_pickle" not in str(err.value)
