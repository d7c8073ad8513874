"""Metrics: pure functions returning one value per example (``Tensor[B]``) unless noted."""

from cfx.metrics.frechet import frechet_distance
from cfx.metrics.image import l1_distance, psnr, ssim

__all__ = ["frechet_distance", "l1_distance", "psnr", "ssim"]
