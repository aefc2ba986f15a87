"""Fully connected G and D for 2-D data."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn.utils import parametrizations


def activation(name: str, slope: float = 0.2) -> nn.Module:
    return {
        "relu": lambda: nn.ReLU(),
        "leaky_relu": lambda: nn.LeakyReLU(slope),
        "tanh": lambda: nn.Tanh(),
        "elu": lambda: nn.ELU(),
        "sigmoid": lambda: nn.Sigmoid(),
        "identity": lambda: nn.Identity(),
    }[name]()


class MLP(nn.Module):
    def __init__(self, in_dim: int, hidden: Sequence[int], out_dim: int, act: str = "relu",
                 slope: float = 0.2, batchnorm: bool = False, spectral_norm: bool = False,
                 out: str = "identity"):
        super().__init__()
        layers: list[nn.Module] = []
        width = in_dim
        for h in hidden:
            linear = nn.Linear(width, h)
            layers.append(parametrizations.spectral_norm(linear) if spectral_norm else linear)
            if batchnorm:
                layers.append(nn.BatchNorm1d(h))
            layers.append(activation(act, slope))
            width = h
        last = nn.Linear(width, out_dim)
        layers.append(parametrizations.spectral_norm(last) if spectral_norm else last)
        if out != "identity":
            layers.append(activation(out, slope))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Discriminator(MLP):
    """An MLP whose output is one logit per sample, shape (B,)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)
