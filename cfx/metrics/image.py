"""Closeness between image batches in the cfx range [-1, 1] (data range 2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from cfx.errors import check_int, check_real, shape_or_type
from cfx.images import check_images

_DATA_RANGE = 2.0


def check_pair(a: object, b: object, names: str = "images", layout: str = "(B, C, H, W)") -> None:
    """An error naming ``names`` unless ``a`` and ``b`` are tensors of one shape with as many
    dimensions as ``layout`` has letters."""
    ndim = layout.count(",") + 1
    if (
        not (isinstance(a, Tensor) and isinstance(b, Tensor))
        or a.ndim != ndim
        or (a.shape != b.shape)
    ):
        raise ValueError(
            f"{names} must be two {layout} tensors of one shape, got {shape_or_type(a)} "
            f"and {shape_or_type(b)}"
        )


SCALE_LIMIT = 4.0
"""How far outside [-1, 1] a value may lie before :func:`check_image_pair` refuses the batch:
a generator without a final ``tanh`` overshoots [-1, 1] (the linear toy of the tests reaches
+-1.8) and its frames are still scored; raw [0, 255] pixels lie far beyond."""


def check_image_pair(
    a: object, b: object, names: tuple[str, str] = ("a", "b"), *, values: bool = True
) -> None:
    """:func:`check_pair` for two floating-point ``(B, C, H, W)`` batches. With ``values``
    each must also be finite and within +-:data:`SCALE_LIMIT`: the metrics assume the cfx
    range [-1, 1] (data range 2), so [0, 255] images would give numbers on another scale
    without a word. (cfx's own calls on generated frames skip the values: a user's generator
    may overshoot, and its frames are scored as they are.)"""
    check_pair(a, b, f"`{names[0]}` and `{names[1]}`")
    for name, x in zip(names, (a, b), strict=True):
        assert isinstance(x, Tensor)  # check_pair
        if values:  # the user-image check, with room for an overshooting generator
            check_images(x, name, tol=SCALE_LIMIT - 1.0)
        elif not x.is_floating_point():
            raise TypeError(f"`{name}` must be a floating-point tensor in [-1, 1], got {x.dtype}")
    assert isinstance(a, Tensor) and isinstance(b, Tensor)
    if values and float(a.detach().min()) >= 0.0 and float(b.detach().min()) >= 0.0:
        import warnings

        from cfx.errors import Notice

        warnings.warn(
            f"no pixel of `{names[0]}` or `{names[1]}` is below 0: cfx's image metrics take "
            "[-1, 1] images (data range 2, dark = -1); [0, 1] images read as a quarter of "
            "the squared error (PSNR 6 dB too high) and shift SSIM: map them with 2x - 1 "
            "(cfx.images.from_unit)",
            Notice,
            stacklevel=3,
        )


FRAME_LIMIT = 16.0
"""How far outside [-1, 1] a generated or drawn frame may lie before :func:`check_scale`
refuses it: a generator without a final ``tanh`` may overshoot far (frames at 5 are scored),
but values past 16 are pixels of another scale, [0, 255], not an overshoot."""


def check_scale(x: Tensor, name: str) -> None:
    """Generated or drawn images ``x`` checked for the cfx range, with room for a generator
    that overshoots it (:data:`FRAME_LIMIT`): [0, 255] pixels are named, not scored or drawn
    as nonsense. No [0, 1] notice: such frames may be a generator's own."""
    finite = x.detach()
    finite = finite[torch.isfinite(finite)]  # NaN is said where it is drawn or scored
    if finite.numel() and float(finite.abs().max()) > FRAME_LIMIT:
        raise ValueError(
            f"`{name}` must be images in [-1, 1] (a generator may overshoot, up to "
            f"+-{FRAME_LIMIT:g}), got values in [{float(finite.min()):g}, "
            f"{float(finite.max()):g}]: for [0, 255] pixels pass "
            f"cfx.images.from_unit({name} / 255)"
        )


def _common(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """``a`` and ``b`` in one floating dtype (float64 beside float32 crashed SSIM's window)."""
    dtype = torch.promote_types(a.dtype, b.dtype)
    return a.to(dtype), b.to(dtype)


def l1_distance(a: Tensor, b: Tensor) -> Tensor:
    """Mean absolute difference per image, ``(B,)``, of two ``(B, C, H, W)`` batches in [-1, 1]
    (so in [0, 2])."""
    check_image_pair(a, b)
    return _l1(*_common(a, b))


def _l1(a: Tensor, b: Tensor) -> Tensor:
    return (a - b).abs().flatten(1).mean(1)


def psnr(a: Tensor, b: Tensor) -> Tensor:
    """Peak signal-to-noise ratio in dB per image, ``(B,)``, for images in [-1, 1] (data range
    2); higher = closer.

    The squared error is floored at 1e-12, so identical images give about 126 dB rather than
    infinity (means over a batch stay finite)."""
    check_image_pair(a, b)
    return _psnr(*_common(a, b))


def _psnr(a: Tensor, b: Tensor) -> Tensor:
    # in float32 at least: the 1e-12 floor is 0 in float16 (identical images gave inf)
    wide = torch.promote_types(a.dtype, torch.float32)
    mse = (a.to(wide) - b.to(wide)).pow(2).flatten(1).mean(1).clamp_min(1e-12)
    return (10.0 * torch.log10(_DATA_RANGE**2 / mse)).to(a.dtype)


def _gaussian_window(size: int, sigma: float, like: Tensor) -> Tensor:
    ax = torch.arange(size, dtype=like.dtype, device=like.device) - (size - 1) / 2
    g = torch.exp(-(ax**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]  # (1, 1, k, k)


def ssim(a: Tensor, b: Tensor, *, window: int | None = None, sigma: float = 1.5) -> Tensor:
    """Structural similarity per image, ``(B,)`` in [-1, 1], 1 = identical (Wang et al., 2004;
    Gaussian window, valid region, constants K1 = 0.01, K2 = 0.03, data range 2 for [-1, 1]
    images).

    ``window``: side of the Gaussian window; by default 11, or for images smaller than that
    the largest odd side that fits (so tiny images still get a score; at 1-2 px a side the
    window is one pixel, variances vanish and only the luminance term is left); a given
    ``window`` larger than the images is an error."""
    check_image_pair(a, b)
    assert isinstance(a, Tensor)  # check_image_pair
    c, h, w = a.shape[1:]
    if c > 4 and w in (1, 3, 4) and h > w:  # (B, H, W, C): a 1-pixel-wide "image" of C rows
        raise ValueError(  # scored by luminance alone: a plausible, wrong number
            f"`a` and `b` must be (B, C, H, W), got {tuple(a.shape)}, which looks channels "
            "last (B, H, W, C): pass a.permute(0, 3, 1, 2) and b.permute(0, 3, 1, 2)"
        )
    return _ssim(*_common(a, b), window=window, sigma=sigma)


def _ssim(a: Tensor, b: Tensor, *, window: int | None = None, sigma: float = 1.5) -> Tensor:
    check_real("sigma", sigma, low=0.0, open_low=True)
    # in float32 at least: E[x^2] - mu^2 cancels, and bfloat16 gave SSIM 1.18 for images whose
    # float64 SSIM is 0.42 (float16 was off by 6e-3)
    out_dtype = a.dtype
    wide = torch.promote_types(a.dtype, torch.float32)
    a, b = a.to(wide), b.to(wide)
    side = min(a.shape[-2:])
    if window is None:
        window = min(11, side if side % 2 else side - 1)
    window = check_int("window", window)
    if window > side:
        raise ValueError(
            f"ssim's `window` must be between 1 and the images' side {side}, got {window}"
        )
    c = a.shape[1]
    w = _gaussian_window(window, sigma, a).expand(c, 1, window, window)
    c1, c2 = (0.01 * _DATA_RANGE) ** 2, (0.03 * _DATA_RANGE) ** 2

    def blur(x: Tensor) -> Tensor:
        return F.conv2d(x, w, groups=c)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return (num / den).flatten(1).mean(1).to(out_dtype)
