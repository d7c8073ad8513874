"""Seeded parameter initialisation without touching torch's global RNG."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

M = TypeVar("M", bound=nn.Module)

_WEIGHTED = (  # layers whose bias is drawn from the fan-in of their weight
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)


@torch.no_grad()
def reset_parameters(module: M, generator: torch.Generator) -> M:
    """Re-draw every conv/linear weight and bias (PyTorch's default scheme) from ``generator``:
    every parameter of two or more dimensions, and the bias of any convolution (1-, 2- or
    3-d, transposed too) or linear layer.

    Other parameters keep the values the module holds: norm layers their ones/zeros, and a
    one-dimensional parameter of your own whatever your module drew for it (seed its
    construction too when it drew from torch's global RNG).

    Spectral-norm parametrised weights are handled through their ``original`` tensor, and the
    power-iteration vectors ``u``, ``v`` of
    ``torch.nn.utils.parametrizations.spectral_norm`` (drawn from the global RNG when the
    layer is built) are re-drawn from ``generator`` too and iterated on the new weight.
    Returns ``module`` for chaining.
    """
    for name, p in module.named_parameters():
        if p.ndim > 1:  # conv / linear weight: kaiming-uniform(a=sqrt(5)) as in nn.Linear
            drawn(p, nn.init.kaiming_uniform_, generator, a=math.sqrt(5))
        elif name.endswith("bias") and p.ndim == 1:
            owner = module.get_submodule(name.rsplit(".", 1)[0]) if "." in name else module
            weight = getattr(owner, "weight", None)
            if isinstance(owner, _WEIGHTED) and weight is not None:
                fan_in = weight[0].numel()
                bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
                drawn(p, nn.init.uniform_, generator, a=-bound, b=bound)
    for owner in module.modules():
        for plist in getattr(owner, "parametrizations", {}).values():
            for param in plist:
                if hasattr(param, "_u") and hasattr(param, "_v"):
                    _reset_power_vectors(param, plist.original, generator)
    return module


def drawn(
    p: torch.Tensor, init: Callable[..., object], generator: torch.Generator, **kwargs: float
) -> None:
    """``init(p, **kwargs, generator=generator)``, an in-place random init such as
    ``nn.init.uniform_``, with the values drawn on ``generator``'s device: a CUDA parameter
    cannot be filled from a CPU generator, so a copy is drawn there and copied in (the same
    values as drawing in place on the CPU)."""
    if p.device == generator.device:
        init(p, **kwargs, generator=generator)
        return
    tmp = torch.empty(p.shape, dtype=p.dtype, device=generator.device)
    init(tmp, **kwargs, generator=generator)
    p.copy_(tmp)


def _reset_power_vectors(sn: Any, weight: torch.Tensor, generator: torch.Generator) -> None:
    """Fresh ``u``, ``v`` from ``generator``, then 15 power iterations on ``weight``.

    ``sn`` is torch's spectral-norm parametrization (a private class, hence ``Any``)."""
    mat = weight.movedim(int(sn.dim), 0).flatten(1)  # (h, w)
    eps = float(sn.eps)
    u = F.normalize(torch.randn(mat.shape[0], generator=generator).to(mat), dim=0, eps=eps)
    v = F.normalize(torch.randn(mat.shape[1], generator=generator).to(mat), dim=0, eps=eps)
    for _ in range(15):
        v = F.normalize(mat.T @ u, dim=0, eps=eps)
        u = F.normalize(mat @ v, dim=0, eps=eps)
    sn._u.copy_(u)
    sn._v.copy_(v)
