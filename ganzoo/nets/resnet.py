"""FARGAN's ResNets (FARGAN Tables 7-8 and 11-12), which are those of Mescheder et al. 2018
("Which training methods for GANs do actually converge?", code: LMescheder/GAN_stability):
pre-activation blocks with LeakyReLU(0.2), a residual branch scaled by 0.1, a 1x1 shortcut
when the width changes, nearest-neighbour upsampling in G, average pooling in D, no
normalisation layers. The tables list the layers; the block internals, the pooling kernel
and the activations before G's last conv and D's linear layer are the reference code's.
"""
from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from .common import factories

UP, POOL = "up", "pool"


def actvn(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


class ResnetBlock(nn.Module):
    def __init__(self, fin: int, fout: int):
        super().__init__()
        hidden = min(fin, fout)  # the tables' "a -> b -> c" widths
        self.conv_0 = nn.Conv2d(fin, hidden, 3, padding=1)
        self.conv_1 = nn.Conv2d(hidden, fout, 3, padding=1)
        self.conv_s = nn.Conv2d(fin, fout, 1, bias=False) if fin != fout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.conv_s is None else self.conv_s(x)
        return shortcut + 0.1 * self.conv_1(actvn(self.conv_0(actvn(x))))


def _stack(cin: int, plan: list) -> tuple[nn.Sequential, int]:
    """plan: block output widths, with UP (x2 nearest) and POOL (avg 3x3 stride 2) between them."""
    layers = []
    for step in plan:
        if step == UP:
            layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
        elif step == POOL:
            layers.append(nn.AvgPool2d(3, stride=2, padding=1))
        else:
            layers.append(ResnetBlock(cin, step))
            cin = step
    return nn.Sequential(*layers), cin


class ResnetGenerator(nn.Module):
    def __init__(self, z_dim: int, channels: int, seed: int, first: int, plan: list):
        super().__init__()
        self.fc = nn.Linear(z_dim, first * seed * seed)
        self.unflatten = nn.Unflatten(1, (first, seed, seed))
        self.blocks, width = _stack(first, plan)
        self.conv_img = nn.Conv2d(width, channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = self.blocks(self.unflatten(self.fc(z)))
        return torch.tanh(self.conv_img(actvn(out)))


class ResnetDiscriminator(nn.Module):
    def __init__(self, channels: int, resolution: int, first: int, plan: list):
        super().__init__()
        self.conv_img = nn.Conv2d(channels, first, 3, padding=1)
        self.blocks, width = _stack(first, plan)
        size = resolution // 2 ** plan.count(POOL)
        self.fc = nn.Linear(width * size * size, 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """What the last layer reads (D's body): forward(x) is logit(features(x))."""
        return actvn(self.blocks(self.conv_img(x)).flatten(1))

    def logit(self, h: torch.Tensor) -> torch.Tensor:
        return self.fc(h).squeeze(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logit(self.features(x))


def _widths(arch, default: int = 64) -> tuple[int, int]:
    return (default if arch.g_width is None else arch.g_width,
            default if arch.d_width is None else arch.d_width)


def fargan_resnet32(arch, shape):
    """Tables 7-8 (CIFAR, 32x32): G fc -> 512x4x4, blocks 256 | 128 | 64 | 64 with an upsampling
    between each; D conv 64, blocks 128 | 256 | 512 each followed by a pooling, linear from 512x4x4."""
    c, res, _ = shape
    g, d = _widths(arch)
    build_g = partial(ResnetGenerator, arch.z_dim, c, res // 8, 8 * g, [4 * g, UP, 2 * g, UP, g, UP, g])
    build_d = partial(ResnetDiscriminator, c, res, d, [2 * d, POOL, 4 * d, POOL, 8 * d, POOL])
    return factories(arch, build_g, build_d)


def fargan_resnet64(arch, shape):
    """Tables 11-12 (ImageNet, 64x64): two blocks per resolution, widths 1024 at 4x4 down to 64 at 64x64
    in G; D 64 -> 1024 through four poolings, two blocks at each size, linear from 1024x4x4."""
    c, res, _ = shape
    g, d = _widths(arch)
    g_plan = [16 * g, 16 * g, UP, 8 * g, 8 * g, UP, 4 * g, 4 * g, UP, 2 * g, 2 * g, UP, g, g]
    d_plan = [d, 2 * d, POOL, 2 * d, 4 * d, POOL, 4 * d, 8 * d, POOL, 8 * d, 16 * d, POOL, 16 * d, 16 * d]
    build_g = partial(ResnetGenerator, arch.z_dim, c, res // 16, 16 * g, g_plan)
    build_d = partial(ResnetDiscriminator, c, res, d, d_plan)
    return factories(arch, build_g, build_d)
