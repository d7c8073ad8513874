import warnings

import pytest
import torch

from cfx.images import check_images, from_uint8, from_unit, to_uint8, to_unit


def test_range_conversions_are_inverse():
    x = torch.linspace(-1, 1, 11).view(1, 1, 1, 11)
    assert torch.allclose(from_unit(to_unit(x)), x, atol=1e-6)
    assert to_unit(torch.tensor(-1.0)) == 0 and to_unit(torch.tensor(1.0)) == 1
    u8 = to_uint8(torch.tensor([[[[-1.0, 0.0, 1.0, 3.0]]]]))
    assert u8.tolist() == [[[[0, 128, 255, 255]]]]


def test_from_uint8_undoes_to_uint8_and_takes_numpy():
    """8-bit pixels had no converter (the README promised one both ways): users wrote
    from_unit(x.float() / 255) by hand."""
    import numpy as np

    pixels = np.array([[[[0, 51, 255]]]], dtype=np.uint8)
    x = from_uint8(pixels)
    assert x.dtype == torch.float32
    assert x.flatten().tolist() == pytest.approx([-1.0, -0.6, 1.0])
    assert (to_uint8(x) == pixels).all()
    assert torch.equal(from_uint8(torch.from_numpy(pixels)), x)
    with pytest.raises(TypeError, match=r"got dtype torch.int64; its values fit 0..255: conv"):
        from_uint8(pixels.astype(np.int64))
    with pytest.raises(TypeError, match=r"got dtype torch.uint16$"):  # 4000 would wrap to 160
        from_uint8(np.full((1, 1, 2, 2), 4000, np.uint16))
    read_only = np.zeros((1, 1, 2, 2), np.uint8)
    read_only.flags.writeable = False  # as np.asarray(PIL image) is: torch warned
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert from_uint8(read_only).min() == -1
    with pytest.raises(TypeError, match=r"uint8 pixels .* got list"):
        from_uint8([0, 255])


@pytest.mark.parametrize(
    ("x", "exc", "match"),
    [
        ([1, 2], TypeError, "`x` must be a torch.Tensor, got list"),
        (torch.zeros(1, 1, 4, 4, dtype=torch.int64), TypeError, "floating-point"),
        # pixel values get the conversion the range errors give (they had none)
        (torch.zeros(1, 1, 4, 4, dtype=torch.uint8), TypeError, r"cfx\.images\.from_uint8\(x\)"),
        (torch.full((1, 1, 4, 4), 4000, dtype=torch.int16), TypeError, "65535 for 16-bit"),
        # uint16 scans: torch's min and max do not take uint16 (NotImplementedError)
        (torch.full((1, 1, 4, 4), 4000, dtype=torch.uint16), TypeError, "65535 for 16-bit"),
        (torch.full((1, 1, 4, 4), 200, dtype=torch.uint16), TypeError, r"values 0..200: 8-bit"),
        (  # widened 8-bit pixels: the advice was for 12- and 16-bit scans
            torch.full((1, 1, 4, 4), 200, dtype=torch.int64),
            TypeError,
            r"values 0..200: 8-bit pixels as torch.int64\? "
            r"cfx.images.from_uint8\(x.to\(torch.uint8\)\)",
        ),
        (torch.zeros(1, 4, 4), ValueError, r"shape \(B, C, H, W\), got \(1, 4, 4\)"),
        (torch.full((1, 1, 4, 4), float("nan")), ValueError, "NaN"),
        (torch.full((1, 1, 4, 4), 2.0), ValueError, r"\[-1, 1\]"),
        (torch.zeros(0, 1, 4, 4), ValueError, "at least one image"),
    ],
)
def test_check_images_errors(x, exc, match):
    with pytest.raises(exc, match=match):
        check_images(x)


def test_check_images_channels_and_size():
    x = torch.zeros(2, 1, 64, 64)
    assert check_images(x, channels=1, size=(64, 64)) is x
    with pytest.raises(ValueError, match="3 channel"):
        check_images(x, "images", channels=3)
    with pytest.raises(ValueError, match="32x32"):
        check_images(x, size=(32, 32))


@pytest.mark.parametrize(
    ("low", "top", "hint"),
    [
        (-3.0, 3.0, r"rescale them to \[-1, 1\]"),  # standardised images: no pixel scale fits
        (0.0, 255.0, r"raw pixel values \(up to 255\): divide by the data's full scale"),
        (0.0, 4095.0, r"up to 4095\).*4095 for 12-bit"),
    ],
)
def test_out_of_range_images_get_a_hint_for_their_scale(low, top, hint):
    x = torch.linspace(low, top, 16).view(1, 1, 4, 4)
    with pytest.raises(ValueError, match=hint):
        check_images(x)


def test_errors_name_the_images_at_fault_in_a_batch():
    x = torch.zeros(5, 1, 4, 4)
    x[2, 0, 0, 0], x[4, 0, 1, 1] = float("nan"), float("inf")
    with pytest.raises(
        ValueError, match=r"NaN or infinite values \(2 of 5 images: rows \[2, 4\]\)"
    ):
        check_images(x, "x")
    y = torch.zeros(40, 1, 4, 4)
    y[37] += 2.0
    with pytest.raises(ValueError, match=r"got \[0, 2\] \(row 37 of 40\);"):
        check_images(y, "--input")
    y[:12] -= 3.0  # a long list is cut
    with pytest.raises(ValueError, match=r"\(13 of 40 images: rows \[0, 1, .*, 9, \.\.\.\]\)"):
        check_images(y, "--input")


def test_unit_input_hands_the_model_what_it_was_trained_on():
    """A model trained on [0, 1] images, or on ImageNet-normalised ones, gets exactly those
    from cfx's [-1, 1] images."""
    from torch import nn

    from cfx.images import UnitInput, from_unit

    seen = []

    class Recorder(nn.Module):
        def forward(self, u):
            seen.append(u)
            return u.flatten(1)[:, :2]

    u = torch.rand(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    UnitInput(Recorder())(from_unit(u))
    torch.testing.assert_close(seen[-1], u)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    UnitInput(Recorder(), mean=mean, std=std)(from_unit(u))
    want = (u - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    torch.testing.assert_close(seen[-1], want)
    UnitInput(Recorder(), mean=[0.5], std=[0.25])(from_unit(u))  # one value for all channels
    torch.testing.assert_close(seen[-1], (u - 0.5) / 0.25)
    grey = UnitInput(Recorder(), mean=mean, std=std)
    with pytest.raises(ValueError, match="`mean`/`std` hold 3 channel values, the images have 1"):
        grey(torch.zeros(1, 1, 4, 4))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mean": (0.5,)}, "`mean` and `std` go together"),
        ({"mean": (0.5, 0.5), "std": (0.2,)}, "one value per channel each, got 2 and 1"),
        ({"mean": (0.5,), "std": (0.0,)}, "`std` must be positive"),
    ],
)
def test_unit_input_names_bad_normalisations(kwargs, match):
    from torch import nn

    from cfx.images import UnitInput

    with pytest.raises(ValueError, match=match):
        UnitInput(nn.Identity(), **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mean": (), "std": ()}, "one value per channel each, got 0 and 0"),
        ({"mean": (float("nan"),), "std": (0.2,)}, "`std` must be positive and `mean` finite"),
        ({"mean": (0.5,), "std": (float("inf"),)}, "`std` must be positive and `mean` finite"),
    ],
)
def test_unit_input_names_more_bad_normalisations(kwargs, match):
    from torch import nn

    from cfx.images import UnitInput

    with pytest.raises(ValueError, match=match):
        UnitInput(nn.Identity(), **kwargs)


def test_unit_input_refuses_a_state_dict_for_a_model():
    from torch import nn

    from cfx.images import UnitInput

    weights = nn.Linear(2, 2).state_dict()  # the weights, not the model
    with pytest.raises(TypeError, match="`model` must be a model mapping images to logits, got"):
        UnitInput(weights)


def test_unit_input_keeps_its_normalisation_with_its_weights():
    """mean and std are buffers: in the state dict (saved with the model, and in the digest a
    run key takes of a classifier), so two normalisations are two models."""
    from torch import nn

    from cfx.images import UnitInput
    from cfx.run_key import module_sha256

    net = nn.Identity()
    a = UnitInput(net, mean=(0.5, 0.4), std=(0.25, 0.2))
    state = a.state_dict()
    assert state["mean"].flatten().tolist() == pytest.approx([0.5, 0.4])
    assert state["std"].flatten().tolist() == pytest.approx([0.25, 0.2])
    assert module_sha256(a) != module_sha256(UnitInput(net, mean=(0.5, 0.5), std=(0.25, 0.2)))


def test_unit_input_takes_mean_and_std_shaped_for_broadcasting():
    from torch import nn

    from cfx.images import UnitInput, from_unit

    mean = torch.tensor([0.5, 0.25]).view(1, 2, 1, 1)  # as a user may keep them
    net = UnitInput(nn.Identity(), mean=mean, std=(0.5, 0.25))
    u = torch.tensor([1.0, 0.5]).view(1, 2, 1, 1)
    # (1 - 0.5) / 0.5 and (0.5 - 0.25) / 0.25
    assert net(from_unit(u)).flatten().tolist() == pytest.approx([1.0, 1.0])


def test_unit_input_refuses_a_mean_and_std_given_in_0_255_and_empty_images_are_named():
    """mean=(123.7, 116.3, 103.5) fed the model about -2 everywhere without a word; images
    with no channels or pixels failed inside torch as an IndexError (session-53 audit)."""
    import pytest
    import torch

    from cfx.images import UnitInput, check_images

    net = torch.nn.Identity()
    with pytest.raises(ValueError, match=r"on the \[0, 1\] scale .* divide both by 255"):
        UnitInput(net, mean=(123.7, 116.3, 103.5), std=(58.4, 57.1, 57.4))
    UnitInput(net, mean=(0.5,), std=(0.5,))  # the usual [0, 1] statistics are taken
    for shape in ((1, 0, 4, 4), (1, 1, 0, 4)):
        with pytest.raises(ValueError, match=r"`x` must have channels and pixels, got shape"):
            check_images(torch.zeros(shape))
