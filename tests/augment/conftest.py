import pytest
import torch

from tests.augment.toy import BoundedGenerator
from tests.trajectory.toy import LogisticClassifier


@pytest.fixture
def world():
    g, f = BoundedGenerator(), LogisticClassifier()
    gen = torch.Generator().manual_seed(0)
    pool = g.decode(torch.randn(40, 3, generator=gen) * 3).detach().clamp(-1, 1)
    train = g.decode(torch.randn(30, 3, generator=gen) * 3).detach().clamp(-1, 1)
    labels = (train.flatten(1).sum(1) > 0).long()
    return g, f, pool, train, labels
