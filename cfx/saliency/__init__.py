"""Saliency maps for image classifiers: one verb, ``attribute(x, target) -> (B, 1, H, W)``.

Methods (one file each): :class:`Gradient`, :class:`GradientXInput`, :class:`SmoothGrad`,
:class:`IntegratedGradients`, :class:`GradCAM` (gradient-based; ``create_graph=True`` keeps
the map differentiable for attacks), :class:`Occlusion`, :class:`RISE`, :class:`LIME`,
:class:`KernelSHAP` and :class:`CausalResponsibility` (ReX-style; perturbation-based, batched
over images and samples). Scores against ground-truth masks live in
:mod:`cfx.saliency.metrics`, the sanity checks of Adebayo et al. in
:mod:`cfx.saliency.randomisation` (model parameters) and :mod:`cfx.saliency.data_randomisation`
(labels), attacks in :mod:`cfx.saliency.attacks`.

Images are ``(B, C, H, W)`` float tensors in [-1, 1]; maps have higher values where the
evidence for the target class is stronger. Every method evaluates the model in chunks of
``batch_size`` images (default 32: on a CPU the cost per image grows with larger batches, as
activations fall out of cache; raise it on a GPU).
"""

from cfx.saliency._common import SaliencyMethod
from cfx.saliency.gradcam import GradCAM
from cfx.saliency.gradient import Gradient
from cfx.saliency.gradient_x_input import GradientXInput
from cfx.saliency.integrated_gradients import IntegratedGradients
from cfx.saliency.kernel_shap import KernelSHAP
from cfx.saliency.lime import LIME
from cfx.saliency.occlusion import Occlusion
from cfx.saliency.rex import CausalResponsibility
from cfx.saliency.rise import RISE
from cfx.saliency.smoothgrad import SmoothGrad
from cfx.saliency.superpixels import superpixels

__all__ = [
    "LIME",
    "RISE",
    "CausalResponsibility",
    "GradCAM",
    "Gradient",
    "GradientXInput",
    "IntegratedGradients",
    "KernelSHAP",
    "Occlusion",
    "SaliencyMethod",
    "SmoothGrad",
    "superpixels",
]
