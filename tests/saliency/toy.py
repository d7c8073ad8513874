"""Small models with known answers for the saliency tests.

* :class:`LinearModel`: ``logit_1 = sum(w * x) + b``, ``logit_0 = 0`` (and ``logit_2 = -logit_1``
  when ``classes=3``). Its input gradient is ``w`` everywhere, so gradient maps, Gradient x
  Input, Integrated Gradients, occlusion drops and Shapley values of segments are exact sums of
  ``w * (x - baseline)``.
* :func:`small_cnn`: a tiny :class:`~cfx.models.classifiers.BrainCNN` with seeded weights.
* :class:`PatchModel`: predicts class 1 when a bright patch sits in the top-left quadrant.
"""

import torch
from torch import nn

from cfx.models.classifiers import BrainCNN, BrainCNNConfig
from cfx.training.init import reset_parameters


class LinearModel(nn.Module):
    def __init__(self, shape=(1, 8, 8), seed=0, classes=2):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w = nn.Parameter(torch.randn(shape, generator=g))
        self.b = nn.Parameter(torch.tensor(0.3))
        self.classes = classes

    def score(self, x):
        return (x * self.w).flatten(1).sum(1) + self.b

    def forward(self, x):
        s = self.score(x)
        cols = [torch.zeros_like(s), s] + ([-s] if self.classes == 3 else [])
        return torch.stack(cols, 1)


def small_cnn(seed=0, width=4, blocks=3):
    model = BrainCNN(BrainCNNConfig(width=width, blocks=blocks))
    reset_parameters(model, torch.Generator().manual_seed(seed))
    return model.eval()


class PatchModel(nn.Module):
    """logit_1 = 8 * (mean of the top-left 4x4 block - 0.5); logit_0 = 0 (images in [-1, 1])."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(8.0))

    def forward(self, x):
        s = self.scale * (x[:, :, :4, :4].mean((1, 2, 3)) - 0.5)
        return torch.stack([torch.zeros_like(s), s], 1)


def images(b=3, c=1, h=8, w=8, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, c, h, w, generator=g) * 2 - 1


def patch_images(b=2, h=16, w=16):
    """Dark images with a bright 4x4 patch in the top-left corner (PatchModel says class 1)."""
    x = torch.full((b, 1, h, w), -0.8)
    x[:, :, :4, :4] = 0.9
    return x


class ImageItself:
    """A model-independent "explanation", the image itself: the control of Adebayo et al.'s
    randomisation checks, which must not decorrelate."""

    def __init__(self, model):
        self.model = model

    def attribute(self, x, target):
        return x.mean(1, keepdim=True)
