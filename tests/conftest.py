"""Every test starts from the same global random state, and no test reaches the hub.

cfx itself never reads the global generators (randomness is passed in), but a test that builds
a module without seeding it (``nn.Linear(3, 2)``) draws its weights from torch's global
generator, which holds whatever the tests before it left there. Such a test then passes or
fails with the order and the selection of tests run (b485759 fixed one that failed only in the
full suite). Seeding before each test makes every test's draws the same however it is run.

The hub tests fake ``huggingface_hub.hf_hub_download``; the reachability probe before it
(:func:`cfx.zoo.pretrained.hub_unreachable`) is faked here to say "reachable", so no test sends
a request. ``tests/zoo/test_hub_probe.py`` tests the probe itself.
"""

import random

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _same_global_random_state():
    random.seed(0)
    np.random.seed(0)  # noqa: NPY002  (the legacy global generator, for code under test that uses it)
    torch.manual_seed(0)
    yield


@pytest.fixture(autouse=True)
def _hub_reachable(monkeypatch):
    monkeypatch.setattr("cfx.zoo.pretrained.hub_unreachable", lambda repo_id, filename: None)
