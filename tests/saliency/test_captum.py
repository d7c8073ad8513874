"""Cross-checks against Captum (a test-only dependency) where the definitions coincide.

Conventions (documented in each module): cfx returns one map per image ``(B, 1, H, W)``;
Captum returns one per channel. For single-channel images the two coincide; Grad-CAM needs
Captum's ``relu_attributions=True`` (the paper's ReLU) and ``LayerAttribution.interpolate``
with ``"bilinear"``; Occlusion's window spans the channel axis.
"""

import pytest
import torch

captum_attr = pytest.importorskip("captum.attr")
pytestmark = pytest.mark.filterwarnings("ignore:Input Tensor 0 did not already require")

from cfx.saliency import (  # noqa: E402
    GradCAM,
    Gradient,
    GradientXInput,
    IntegratedGradients,
    Occlusion,
)
from tests.saliency.toy import images, small_cnn  # noqa: E402


@pytest.fixture(scope="module")
def setup():
    model = small_cnn(width=8, blocks=3)
    x = images(b=4, h=24, w=24, seed=3)
    target = torch.tensor([1, 0, 1, 1])
    return model, x, target


def test_saliency(setup):
    model, x, t = setup
    ours = Gradient(model).attribute(x, t)
    theirs = captum_attr.Saliency(model).attribute(x, target=t, abs=True)
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-7)
    signed = Gradient(model, absolute=False).attribute(x, t)
    torch.testing.assert_close(
        signed, captum_attr.Saliency(model).attribute(x, target=t, abs=False)
    )


def test_input_x_gradient(setup):
    model, x, t = setup
    ours = GradientXInput(model, baseline=0.0).attribute(x, t)
    theirs = captum_attr.InputXGradient(model).attribute(x, target=t)
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    ("method", "rtol"),
    [
        ("gausslegendre", 1e-6),
        ("riemann_left", 1e-5),
        ("riemann_right", 1e-5),
        ("riemann_middle", 1e-5),
    ],
)
def test_integrated_gradients(setup, method, rtol):
    model, x, t = setup
    ours = IntegratedGradients(model, n_steps=12, method=method, baseline=-1.0).attribute(x, t)
    theirs = captum_attr.IntegratedGradients(model).attribute(
        x, baselines=-1.0, target=t, n_steps=12, method=method
    )
    # Captum builds its Riemann nodes with torch.linspace in float32 and gathers the sum in
    # another order: agreement to ~1e-6 of the map's scale.
    scale = theirs.abs().max()
    torch.testing.assert_close(ours / scale, theirs / scale, rtol=rtol, atol=rtol)


def test_layer_grad_cam_with_bilinear_upsampling(setup):
    model, x, t = setup
    layer = model.features[-1]
    ours = GradCAM(model, layer=layer).attribute(x, t)
    cam = captum_attr.LayerGradCam(model, layer).attribute(x, target=t, relu_attributions=True)
    theirs = captum_attr.LayerAttribution.interpolate(cam, (24, 24), "bilinear")
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-7)
    raw = GradCAM(model, layer=layer, relu=False).attribute(x, t)
    cam = captum_attr.LayerGradCam(model, layer).attribute(x, target=t)  # captum: no ReLU
    torch.testing.assert_close(
        raw, captum_attr.LayerAttribution.interpolate(cam, (24, 24), "bilinear")
    )


@pytest.mark.parametrize(("window", "stride"), [(6, 3), (5, 4), (4, 4), (7, 2)])
def test_occlusion(setup, window, stride):
    model, x, t = setup
    ours = Occlusion(model, window=window, stride=stride, baseline=-1.0).attribute(x, t)
    theirs = captum_attr.Occlusion(model).attribute(
        x,
        sliding_window_shapes=(1, window, window),
        strides=(1, stride, stride),
        baselines=-1.0,
        target=t,
        perturbations_per_eval=16,
    )
    scale = theirs.abs().max()
    # cfx evaluates a channels-last copy of the model: float rounding, ~1e-6 of the scale
    torch.testing.assert_close(ours / scale, theirs / scale, rtol=1e-5, atol=1e-5)
