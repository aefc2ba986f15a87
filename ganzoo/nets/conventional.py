"""FARGAN's "conventional" CIFAR net (FARGAN Tables 9-10): "similar to a progressively
growing GAN [Karras et al.] with no batch normalization" — pairs of 3x3 convs per resolution,
nearest-neighbour upsampling in G, 2x2 average pooling in D, LeakyReLU(0.2) after every
layer but the last (G's fc included). The tables give the widths and sizes only; kernels, activations and the
pooling are PGGAN's (our reading), and G's stride-1 "transposed convs" are plain 3x3 convs
(a stride-1 transposed conv is a conv with a flipped kernel).
"""
from __future__ import annotations

from functools import partial

import torch
from torch import nn

from .common import factories

UP, POOL = "up", "pool"


def _lrelu() -> nn.Module:
    return nn.LeakyReLU(0.2)


def _stack(cin: int, plan: list) -> tuple[list, int]:
    layers = []
    for step in plan:
        if step == UP:
            layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
        elif step == POOL:
            layers.append(nn.AvgPool2d(2))
        else:
            layers += [nn.Conv2d(cin, step, 3, padding=1), _lrelu()]
            cin = step
    return layers, cin


class ConventionalGenerator(nn.Module):
    def __init__(self, z_dim: int, channels: int, seed: int, first: int, plan: list):
        super().__init__()
        # fc to a 1x1 map, then a transposed conv with a seed x seed kernel makes the 4x4 map
        layers = [nn.Linear(z_dim, first), _lrelu(), nn.Unflatten(1, (first, 1, 1)),
                  nn.ConvTranspose2d(first, first, seed), _lrelu()]
        stack, width = _stack(first, plan)
        layers += stack + [nn.Conv2d(width, channels, 3, padding=1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class ConventionalDiscriminator(nn.Module):
    def __init__(self, channels: int, resolution: int, plan: list):
        super().__init__()
        stack, width = _stack(channels, plan)
        size = resolution // 2 ** plan.count(POOL)
        self.net = nn.Sequential(*stack, nn.Flatten(), nn.Linear(width * size * size, 1))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """What the last layer reads (D's body): forward(x) is logit(features(x))."""
        return self.net[:-1](x)

    def logit(self, h: torch.Tensor) -> torch.Tensor:
        return self.net[-1](h).squeeze(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logit(self.features(x))


def fargan_conventional(arch, shape):
    """G: 512 (1x1) -> 512, 512 at 4x4 -> 256, 256 at 8x8 -> 128, 128 at 16 -> 64, 64 at 32 -> image.
    D: 64, 64, 128 at 32 -> 128, 256 at 16 -> 256, 512 at 8 -> 512, 512 at 4x4 -> linear."""
    c, res, _ = shape
    g = 64 if arch.g_width is None else arch.g_width
    d = 64 if arch.d_width is None else arch.d_width
    g_plan = [8 * g, UP, 4 * g, 4 * g, UP, 2 * g, 2 * g, UP, g, g]
    d_plan = [d, d, 2 * d, POOL, 2 * d, 4 * d, POOL, 4 * d, 8 * d, POOL, 8 * d, 8 * d]
    build_g = partial(ConventionalGenerator, arch.z_dim, c, res // 8, 8 * g, g_plan)
    build_d = partial(ConventionalDiscriminator, c, res, d_plan)
    return factories(arch, build_g, build_d)
