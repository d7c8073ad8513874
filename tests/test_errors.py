import math

import numpy as np
import pytest

from cfx.errors import check_int, check_real


def test_check_real_accepts_numbers_in_range_and_returns_floats():
    assert check_real("eta", 3) == 3.0 and isinstance(check_real("eta", 3), float)
    assert check_real("margin", np.float32(0.75), low=0.5, high=1.0) == 0.75
    assert check_real("w", 0.0, low=0.0) == 0.0  # a closed end includes its bound


@pytest.mark.parametrize(
    ("value", "kw", "exc", "message"),
    [
        (0.5, {"low": 0.5, "open_low": True}, ValueError, r"`m` must be a number in \(0.5, inf\)"),
        (1.0, {"high": 1.0, "open_high": True}, ValueError, r"in \(-inf, 1\), got 1.0"),
        (-1, {"low": 0.0}, ValueError, r"in \[0, inf\), got -1"),
        (math.nan, {}, ValueError, "got nan"),
        (math.inf, {"low": 0.0}, ValueError, "got inf"),
        (None, {}, TypeError, "got None"),
        ("0.9", {}, TypeError, "got '0.9'"),
        (True, {}, TypeError, "got True"),
    ],
)
def test_check_real_names_the_argument_and_the_range(value, kw, exc, message):
    with pytest.raises(exc, match=message):
        check_real("m", value, **kw)


def test_check_int():
    assert check_int("steps", 3) == 3 and check_int("steps", np.int64(0), minimum=0) == 0
    with pytest.raises(ValueError, match=r"`steps` must be an int >= 1, got 0"):
        check_int("steps", 0)
    for bad in (1.5, True, "2", None):
        with pytest.raises(TypeError, match="`steps` must be an int >= 1"):
            check_int("steps", bad)


def test_check_seed():
    from cfx.errors import check_seed

    assert (
        check_seed("seed", None) is None and check_seed("seed", np.uint32(2**32 - 1)) == 2**32 - 1
    )
    for bad in (1.5, True, "2"):
        with pytest.raises(TypeError, match=r"`seed` must be None or an int in \[0, 2\*\*32\)"):
            check_seed("seed", bad)
    for bad in (-1, 2**32):
        with pytest.raises(ValueError, match=rf"`seed` must be None .* got {bad}$"):
            check_seed("seed", bad)


def test_check_seed_where_none_means_nothing():
    from cfx.errors import check_seed

    assert check_seed("--seed", 7, optional=False) == 7
    with pytest.raises(TypeError, match=r"^`--seed` must be an int in \[0, 2\*\*32\), got None$"):
        check_seed("--seed", None, optional=False)
    with pytest.raises(ValueError, match=r"^`--seed` must be an int in \[0, 2\*\*32\), got -1$"):
        check_seed("--seed", -1, optional=False)


def test_check_real_reads_zero_d_tensors_and_numpy_scalars():
    import torch

    assert check_real("margin", torch.tensor(0.99), low=0.5, high=1.0) == pytest.approx(0.99)
    assert check_real("margin", np.float64(0.9)) == 0.9
    with pytest.raises(TypeError, match="`margin`"):
        check_real("margin", torch.tensor([0.9, 0.95]))
