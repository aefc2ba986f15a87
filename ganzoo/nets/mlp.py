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
                 out: str = "identity", in_scale: float = 1.0):
        super().__init__()
        self.in_scale = in_scale
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
        return self.net(x if self.in_scale == 1 else x * self.in_scale)


class Discriminator(MLP):
    """An MLP whose output is one logit per sample, shape (B,); with `d_out="softplus"`, softplus of
    its last layer (D2GAN's toy D), which the loss then takes as its logit."""

    def __init__(self, *args, d_out: str = "identity", **kwargs):
        super().__init__(*args, **kwargs)
        self.softplus = d_out == "softplus"

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """What the last layer reads (D's body): forward(x) is logit(features(x))."""
        return self.net[:-1](x if self.in_scale == 1 else x * self.in_scale)

    def logit(self, h: torch.Tensor) -> torch.Tensor:
        out = self.net[-1](h).squeeze(1)
        return nn.functional.softplus(out) if self.softplus else out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logit(self.features(x))
