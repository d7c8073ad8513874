"""A toy world with known answers: a linear generator and a logistic classifier.

G(z) = tanh-free linear map A z reshaped to (1, 4, 4); f(x) = softmax([0, w . x + b]).
The target log-odds gradient in latent space is A^T w, a constant direction.
"""

import torch
from torch import nn


class LinearGenerator(nn.Module):
    def __init__(self, d: int = 3, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.A = nn.Parameter(torch.randn(16, d, generator=g) * 0.1)

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return (self.A.shape[1],)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return (z @ self.A.T).view(-1, 1, 4, 4)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ torch.linalg.pinv(self.A).T


class LogisticClassifier(nn.Module):
    def __init__(self, seed: int = 1) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w = nn.Parameter(torch.randn(16, generator=g))
        self.b = nn.Parameter(torch.tensor(-0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.flatten(1) @ self.w + self.b
        return torch.stack([torch.zeros_like(s), s], 1)  # (B, 2): log-odds of class 1 = s
