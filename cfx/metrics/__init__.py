"""Metrics: pure functions returning one value per example (``Tensor[B]``) unless noted."""

from cfx.metrics.frechet import frechet_distance
from cfx.metrics.groups import group_accuracies
from cfx.metrics.image import l1_distance, psnr, ssim
from cfx.metrics.trajectory import (
    calibration_error,
    cout,
    flip_rate,
    increasing_steps,
    largest_step_share,
    lesion_area,
    localisation,
    monotonicity_spearman,
    oracle_agreement,
    oracle_agreement_along_path,
    spearman,
    summarise,
)

__all__ = [
    "calibration_error",
    "cout",
    "flip_rate",
    "frechet_distance",
    "group_accuracies",
    "increasing_steps",
    "l1_distance",
    "largest_step_share",
    "lesion_area",
    "localisation",
    "monotonicity_spearman",
    "oracle_agreement",
    "oracle_agreement_along_path",
    "psnr",
    "spearman",
    "ssim",
    "summarise",
]
