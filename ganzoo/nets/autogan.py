"""AutoGAN's discovered CIFAR-10 nets, "AutoGAN-top1" (Gong et al., ICCV 2019; code: VITA-Group/AutoGAN,
models/autogan_cifar10_a.py with models/building_blocks.py), the nets of the aw paper's aw-AutoGAN rows.

G: a dense layer z -> width x b x b (b = 4 at 32x32; b = 6 at 48x48, the repo's STL-10 run
exps/autogan_cifar10_a2stl10.sh, which keeps every other setting), three cells of `width` channels,
then BN, ReLU, 3x3 conv, tanh. Every cell is the found pre-activation cell without normalisation:
ReLU, x2 upsampling, 3x3 conv, the skip-ins added, ReLU, 3x3 conv, then the shortcut (upsampling, 1x1
conv) added where the cell has one. The found choices:
  cell 1: nearest, shortcut;
  cell 2: bilinear, shortcut, a skip-in from cell 1;
  cell 3: nearest, no shortcut, skip-ins from cells 1 and 2.
A skip-in is an earlier cell's first-conv output, resized to the cell's size in the cell's mode and
passed through its own 1x1 conv. The source adds the skip-ins in place to the tensor it also hands on as
the cell's skip output, so cell 2 hands cell 3 its first conv's output with cell 1's skip-in in it; we
keep that.
D: SN-GAN's CIFAR-10 ResNet D, which the source repeats (nets/sngan.py's SNGANDiscriminator: down-blocks
width, width, blocks width, width, ReLU, sum pooling, bias-free linear), at 48x48 as well.

Init, the source's train.py `weights_init` for its runs' `--init_type xavier_uniform`: Glorot-uniform
(gain 1) on every conv weight; the dense and linear layers and all biases keep PyTorch's init; BN scale
N(1, 0.02), shift 0. nets/common.init_weights has no such scheme, so the nets start that way themselves and
`arch.init=default` (conf/arch/autogan.yaml) adds nothing; another `arch.init` replaces it as on any net.

Ours: channels follow the data (the source hard-codes 3); class conditioning is the generic wrapper's.
"""
from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from .common import factories
from .sngan import SNGANDiscriminator

G_WIDTH, D_WIDTH = 256, 128  # exps/autogan_cifar10_a.sh: --gf_dim 256 --df_dim 128 (also at 48x48)


def source_init(net: nn.Module) -> nn.Module:
    """The source's train.py `weights_init` at `--init_type xavier_uniform` (module docstring)."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.xavier_uniform_(m.weight)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    return net


class Cell(nn.Module):
    def __init__(self, width: int, mode: str, skips_in: int, shortcut: bool):
        super().__init__()
        self.mode = mode
        self.c1 = nn.Conv2d(width, width, 3, padding=1)
        self.c2 = nn.Conv2d(width, width, 3, padding=1)
        self.skips = nn.ModuleList(nn.Conv2d(width, width, 1) for _ in range(skips_in))
        self.c_sc = nn.Conv2d(width, width, 1) if shortcut else None

    def up(self, x: torch.Tensor, size) -> torch.Tensor:
        return F.interpolate(x, size=size, mode=self.mode)

    def forward(self, x: torch.Tensor, skips=()):
        """-> (skip output for later cells, the cell's output)."""
        size = (2 * x.shape[2], 2 * x.shape[3])
        h = self.c1(self.up(F.relu(x), size))
        for s, conv in zip(skips, self.skips, strict=True):
            h = h + conv(self.up(s, size))
        out = self.c2(F.relu(h))
        if self.c_sc is not None:
            out = out + self.c_sc(self.up(x, size))
        return h, out


class AutoGANGenerator(nn.Module):
    def __init__(self, z_dim: int, channels: int, bottom: int, width: int):
        super().__init__()
        self.l1 = nn.Linear(z_dim, width * bottom * bottom)
        self.unflatten = nn.Unflatten(1, (width, bottom, bottom))
        self.cell1 = Cell(width, "nearest", 0, shortcut=True)
        self.cell2 = Cell(width, "bilinear", 1, shortcut=True)
        self.cell3 = Cell(width, "nearest", 2, shortcut=False)
        self.bn = nn.BatchNorm2d(width)
        self.to_rgb = nn.Conv2d(width, channels, 3, padding=1)
        source_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        s1, h = self.cell1(self.unflatten(self.l1(z)))
        s2, h = self.cell2(h, (s1,))
        _, h = self.cell3(h, (s1, s2))
        return torch.tanh(self.to_rgb(F.relu(self.bn(h))))


def _discriminator(channels: int, width: int) -> SNGANDiscriminator:
    return source_init(SNGANDiscriminator(channels, [(width, True), (width, True), (width, False), (width, False)]))


def autogan(arch, shape):
    c, res, _ = shape
    g = G_WIDTH if arch.g_width is None else arch.g_width
    d = D_WIDTH if arch.d_width is None else arch.d_width
    build_g = partial(AutoGANGenerator, arch.z_dim, c, res // 8, g)
    build_d = partial(_discriminator, c, d)
    return factories(arch, build_g, build_d)
