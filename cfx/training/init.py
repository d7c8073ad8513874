"""Seeded parameter initialisation without touching torch's global RNG."""

from __future__ import annotations

import math
from typing import TypeVar

import torch
from torch import nn

M = TypeVar("M", bound=nn.Module)


@torch.no_grad()
def reset_parameters(module: M, generator: torch.Generator) -> M:
    """Re-draw every conv/linear weight and bias (PyTorch's default scheme) from ``generator``.

    Norm layers keep their ones/zeros. Spectral-norm parametrised weights are handled through
    their ``original`` tensor. Returns ``module`` for chaining.
    """
    for name, p in module.named_parameters():
        if p.ndim > 1:  # conv / linear weight: kaiming-uniform(a=sqrt(5)) as in nn.Linear
            nn.init.kaiming_uniform_(p, a=math.sqrt(5), generator=generator)
        elif name.endswith("bias") and p.ndim == 1:
            owner = module.get_submodule(name.rsplit(".", 1)[0]) if "." in name else module
            weight = getattr(owner, "weight", None)
            if isinstance(owner, (nn.Conv2d, nn.Linear, nn.ConvTranspose2d)) and weight is not None:
                fan_in = weight[0].numel()
                bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
                nn.init.uniform_(p, -bound, bound, generator=generator)
    return module
