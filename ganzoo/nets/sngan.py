"""SN-GAN's ResNets (Miyato et al. 2018, appendix Tables 4 and 5; code: pfnet-research/sngan_projection),
the nets the aw paper (004) trains on CIFAR-10/100 (32x32) and STL-10 (48x48).

G blocks: BN, ReLU, x2 nearest upsampling, 3x3 conv, BN, ReLU, 3x3 conv; shortcut upsample + 1x1 conv.
D blocks: ReLU, 3x3 conv, ReLU, 3x3 conv, 2x2 average pooling; shortcut 1x1 conv + pooling when the
width or size changes. D's first block skips the leading ReLU and pools its input before the 1x1
shortcut ("optimized block"). D ends with ReLU, a sum over pixels and a bias-free linear layer.
Init as the reference code: Glorot-uniform, gain sqrt(2) on the residual convs, 1 elsewhere.
"""
from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from .common import SQRT2, factories, with_gain

# resolution -> (G's seed map size, G's widths as multiples of g_width, D's widths as multiples of
# d_width with whether each block pools, default g_width, default d_width)
LAYOUTS = {
    # Table 4 (CIFAR-10): G dense 4x4x256, 3 up-blocks of 256; D down 128, down 128, 128, 128
    32: (4, [1, 1, 1, 1], [(1, True), (1, True), (1, False), (1, False)], 256, 128),
    # Table 5 (STL-10): G dense 6x6x512, up 256, 128, 64; D down 64, 128, 256, 512, then 1024
    48: (6, [8, 4, 2, 1], [(1, True), (2, True), (4, True), (8, True), (16, False)], 64, 64),
}


def _conv(cin: int, cout: int, k: int, gain: float) -> nn.Conv2d:
    return with_gain(nn.Conv2d(cin, cout, k, padding=k // 2), gain)


class GBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.b1, self.b2 = nn.BatchNorm2d(cin), nn.BatchNorm2d(cout)
        self.c1, self.c2 = _conv(cin, cout, 3, SQRT2), _conv(cout, cout, 3, SQRT2)
        self.c_sc = _conv(cin, cout, 1, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.b1(x)), scale_factor=2, mode="nearest")
        h = self.c2(F.relu(self.b2(self.c1(h))))
        return h + self.c_sc(F.interpolate(x, scale_factor=2, mode="nearest"))


class DBlock(nn.Module):
    def __init__(self, cin: int, cout: int, down: bool, first: bool = False):
        super().__init__()
        hidden = cout if first else cin  # the reference code's hidden width
        self.c1, self.c2 = _conv(cin, hidden, 3, SQRT2), _conv(hidden, cout, 3, SQRT2)
        self.c_sc = _conv(cin, cout, 1, 1.0) if (cin != cout or down or first) else None
        self.down, self.first = down, first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.c2(F.relu(self.c1(x if self.first else F.relu(x))))
        if self.down:
            h = F.avg_pool2d(h, 2)
        if self.c_sc is None:
            return h + x
        if self.first:  # pool then 1x1 conv (the same map, 4x cheaper)
            return h + self.c_sc(F.avg_pool2d(x, 2))
        s = self.c_sc(x)
        return h + (F.avg_pool2d(s, 2) if self.down else s)


class SNGANGenerator(nn.Module):
    def __init__(self, z_dim: int, channels: int, seed: int, widths: list):
        super().__init__()
        self.l1 = nn.Linear(z_dim, widths[0] * seed * seed)
        self.unflatten = nn.Unflatten(1, (widths[0], seed, seed))
        self.blocks = nn.Sequential(*(GBlock(a, b) for a, b in zip(widths, widths[1:])))
        self.b5 = nn.BatchNorm2d(widths[-1])
        self.c5 = nn.Conv2d(widths[-1], channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.unflatten(self.l1(z)))
        return torch.tanh(self.c5(F.relu(self.b5(h))))


class SNGANDiscriminator(nn.Module):
    def __init__(self, channels: int, blocks: list):
        super().__init__()
        layers, cin = [], channels
        for i, (cout, down) in enumerate(blocks):
            layers.append(DBlock(cin, cout, down, first=i == 0))
            cin = cout
        self.blocks = nn.Sequential(*layers)
        self.l5 = nn.Linear(cin, 1, bias=False)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """What the last layer reads (D's body, after global sum pooling): forward(x) is logit(features(x))."""
        return F.relu(self.blocks(x)).sum(dim=(2, 3))

    def logit(self, h: torch.Tensor) -> torch.Tensor:
        return self.l5(h).squeeze(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logit(self.features(x))


def sngan_resnet(arch, shape):
    c, res, _ = shape
    seed, g_mult, d_blocks, g_default, d_default = LAYOUTS[res]
    g = g_default if arch.g_width is None else arch.g_width
    d = d_default if arch.d_width is None else arch.d_width
    build_g = partial(SNGANGenerator, arch.z_dim, c, seed, [m * g for m in g_mult])
    build_d = partial(SNGANDiscriminator, c, [(m * d, down) for m, down in d_blocks])
    return factories(arch, build_g, build_d)
