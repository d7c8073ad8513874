"""The pixel space as a "generator": the no-generator baseline for trajectory benchmarks.

``GradientAscent(PixelSpace((1, 64, 64)), classifier, inversion_steps=0)`` is a Wachter-style
gradient counterfactual (Wachter et al., "Counterfactual Explanations without Opening the
Black Box", 2017) computed directly on pixels: normalised gradient steps on the target
log-odds, clipped to [-1, 1], stopped at the margin and resampled at ``t / T``. With no
generator to keep the images on the data manifold, such paths tend to be adversarial: the
classifier flips while an independent oracle does not, which is exactly what the oracle
agreement metric exposes.
"""

from __future__ import annotations

from numbers import Integral

from torch import Tensor, nn


class PixelSpace(nn.Module):
    """Identity "generator": latents are images ``(B, C, H, W)``, clipped to [-1, 1].

    The no-generator baseline: ``GradientAscent(PixelSpace(shape), classifier,
    inversion_steps=0)`` takes gradient steps on the pixels themselves.

    Reference: Wachter et al., "Counterfactual Explanations without Opening the Black Box",
    2017 (a gradient counterfactual computed directly on the input).

    Args:
        image_shape: ``(C, H, W)`` of the images, positive ints.
    """

    def __init__(self, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        try:
            dims = tuple(image_shape)
        except TypeError:
            dims = ()
        if len(dims) != 3 or any(
            not isinstance(s, Integral) or isinstance(s, bool) or s <= 0 for s in dims
        ):
            raise ValueError(f"`image_shape` must be (C, H, W) positive ints, got {image_shape!r}")
        self.image_shape = tuple(int(s) for s in dims)

    @property
    def latent_shape(self) -> tuple[int, ...]:
        """``(C, H, W)``: a latent is an image."""
        return self.image_shape

    def decode(self, z: Tensor) -> Tensor:
        """Latents ``(B, C, H, W)`` clipped to the image range [-1, 1]."""
        return z.clamp(-1.0, 1.0)

    def encode(self, x: Tensor) -> Tensor:
        """Images ``(B, C, H, W)`` in [-1, 1] returned unchanged (they are their own latents)."""
        return x
