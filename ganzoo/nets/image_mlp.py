"""Fully connected G and D on images (Stackelberg GAN's MNIST / Fashion-MNIST nets, Stackelberg GAN
Tables 3-4): G's output is reshaped to the image, D flattens its input. The MLP itself is mlp.py's."""
from __future__ import annotations

import math
from functools import partial

import torch
from torch import nn

from .common import factories
from .mlp import MLP


class ImageMLPGenerator(nn.Module):
    def __init__(self, z_dim: int, shape: tuple, hidden: list, act: str, slope: float, batchnorm: bool):
        super().__init__()
        self.shape = tuple(shape)
        self.mlp = MLP(z_dim, hidden, math.prod(shape), act, slope, batchnorm, False, "tanh")

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.mlp(z).view(z.shape[0], *self.shape)


class ImageMLPDiscriminator(nn.Module):
    def __init__(self, shape: tuple, hidden: list, act: str, slope: float, batchnorm: bool):
        super().__init__()
        # spectral norm, if asked for, is added after init by common.factories
        self.mlp = MLP(math.prod(shape), hidden, 1, act, slope, batchnorm, False, "identity")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """What the last layer reads (D's body): forward(x) is logit(features(x))."""
        return self.mlp.net[:-1](x.flatten(1))

    def logit(self, h: torch.Tensor) -> torch.Tensor:
        return self.mlp.net[-1](h).squeeze(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logit(self.features(x))


def image_mlp(arch, shape):
    g, d = arch.g, arch.d
    build_g = partial(ImageMLPGenerator, arch.z_dim, tuple(shape), list(g.hidden), g.act, g.slope, g.batchnorm)
    build_d = partial(ImageMLPDiscriminator, tuple(shape), list(d.hidden), d.act, d.slope, d.batchnorm)
    return factories(arch, build_g, build_d)
