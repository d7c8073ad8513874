"""A world small enough to augment in seconds: a bounded linear generator, the true rule
as an oracle that counts its labels, and quick fine-tuning settings."""

import torch

from cfx.augment import OracleLabeller
from cfx.training.classifier import ClassifierTrainingConfig
from tests.trajectory.toy import LinearGenerator

CFG = ClassifierTrainingConfig(epochs=1, batch_size=16, lr=1e-3, augment=False)


class BoundedGenerator(LinearGenerator):
    """The toy linear generator squashed into the image range [-1, 1], like a real G."""

    def decode(self, z):
        return torch.tanh(super().decode(z))

    def encode(self, x):
        return super().encode(torch.atanh(x.clamp(-0.999, 0.999)))


class CountingOracle(OracleLabeller):
    """The true rule ``x.sum() > 0`` as a classifier, counting every label it gives."""

    def __init__(self) -> None:
        super().__init__(torch.nn.Identity())
        self.given = 0

    def label(self, images, **kw):
        self.given += images.shape[0]
        return (images.flatten(1).sum(1) > 0).long()
