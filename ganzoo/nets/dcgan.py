"""DCGAN-style nets: project z to a small map, stride-2 transposed convs up to the image;
stride-2 convs down, one linear logit. Four papers' tables are this one stack with
different kernels, widths and batchnorm placement (see the builders at the bottom).
"""
from __future__ import annotations

from functools import partial
from typing import Optional

import torch
from torch import nn

from .common import factories, norm2d


def _up(cin: int, cout: int, k: int, bias: bool, size: Optional[int] = None,
        out: Optional[int] = None) -> nn.ConvTranspose2d:
    # exactly doubles the size for k = 2..5 (TensorFlow's "SAME" for odd k); from `size` to `out`
    # (TensorFlow's deconv to a given shape: 4 -> 7 as well as 7 -> 14) where both are given
    pad = (k - 1) // 2
    extra = k % 2 if size is None else out - ((size - 1) * 2 - 2 * pad + k)
    return nn.ConvTranspose2d(cin, cout, k, stride=2, padding=pad, output_padding=extra, bias=bias)


class DCGenerator(nn.Module):
    """z -> linear to widths[0] x seed x seed -> one stride-2 transposed conv per width -> tanh.

    widths[i] is the channel count before the i-th transposed conv; the last one outputs
    the image, so the output is seed * 2^len(widths) pixels wide, or `sizes` gives the width
    after each transposed conv (the last: the image's)."""

    def __init__(self, z_dim: int, channels: int, seed: int, widths: list, kernel: int,
                 batchnorm: bool, sizes: Optional[list] = None):
        super().__init__()
        steps = list(zip([seed] + list(sizes[:-1]), sizes)) if sizes else [(None, None)] * len(widths)
        # a layer followed by batchnorm needs no bias (batchnorm's shift replaces it)
        layers = [nn.Linear(z_dim, widths[0] * seed * seed, bias=not batchnorm),
                  nn.Unflatten(1, (widths[0], seed, seed)), norm2d(widths[0], batchnorm), nn.ReLU()]
        for (cin, cout), step in zip(zip(widths, widths[1:]), steps):
            layers += [_up(cin, cout, kernel, not batchnorm, *step), norm2d(cout, batchnorm), nn.ReLU()]
        layers += [_up(widths[-1], channels, kernel, True, *steps[-1]), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class DCDiscriminator(nn.Module):
    """One stride-2 conv per width (LeakyReLU 0.2), then a linear logit of shape (B,)."""

    def __init__(self, channels: int, resolution: int, widths: list, kernel: int, batchnorm: bool,
                 bn_first: bool, slope: float = 0.2):
        super().__init__()
        layers, cin, size, pad = [], channels, resolution, (kernel - 1) // 2
        for i, cout in enumerate(widths):
            bn = batchnorm and (i > 0 or bn_first)
            layers += [nn.Conv2d(cin, cout, kernel, stride=2, padding=pad, bias=not bn),
                       norm2d(cout, bn), nn.LeakyReLU(slope)]
            cin, size = cout, (size + 2 * pad - kernel) // 2 + 1
        layers += [nn.Flatten(), nn.Linear(cin * size * size, 1)]
        self.net = nn.Sequential(*layers)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """What the last layer reads (D's body): forward(x) is logit(features(x))."""
        return self.net[:-1](x)

    def logit(self, h: torch.Tensor) -> torch.Tensor:
        return self.net[-1](h).squeeze(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logit(self.features(x))


def radford_depth(resolution: int) -> int:
    """Stride-2 layers of Radford et al.'s DCGAN at this size: halve while the map stays even
    and >= 4 wide (64 -> 4 layers from 4x4, 32 -> 3, 48 -> 3 from 6x6, 28 -> 2 from 7x7)."""
    n = 0
    while resolution % 2 == 0 and resolution // 2 >= 4:
        resolution //= 2
        n += 1
    return n


def _pick(value, default):
    return default if value is None else value


def _dc(arch, shape, *, g_layers: int, d_layers: int, g_kernel: int, d_kernel: int, g_width: int,
        d_width: int, g_bn: bool, d_bn: bool, d_bn_first: bool):
    c, res, _ = shape
    gw, dw = _pick(arch.g_width, g_width), _pick(arch.d_width, d_width)
    g_widths = [gw * 2 ** (g_layers - 1 - i) for i in range(g_layers)]  # e.g. 512, 256, 128, 64
    d_widths = [dw * 2 ** i for i in range(d_layers)]                   # e.g. 64, 128, 256, 512
    build_g = partial(DCGenerator, arch.z_dim, c, res // 2 ** g_layers, g_widths, g_kernel,
                      _pick(arch.g_batchnorm, g_bn))
    build_d = partial(DCDiscriminator, c, res, d_widths, d_kernel, _pick(arch.d_batchnorm, d_bn), d_bn_first)
    return factories(arch, build_g, build_d)


def dcgan(arch, shape):
    """Radford et al. 2016: 4x4 kernels, batchnorm in G and in D after its first layer."""
    n = radford_depth(shape[1])
    return _dc(arch, shape, g_layers=n, d_layers=n, g_kernel=4, d_kernel=4, g_width=64, d_width=64,
               g_bn=True, d_bn=True, d_bn_first=False)


def microbatch_dcgan(arch, shape):
    """microbatchGAN Tables 5-6: G 5x5 kernels, D 3x3 kernels, batchnorm on every hidden layer."""
    return _dc(arch, shape, g_layers=3, d_layers=3, g_kernel=5, d_kernel=3, g_width=32, d_width=32,
               g_bn=True, d_bn=True, d_bn_first=True)


def fargan_dcgan(arch, shape):
    """FARGAN Tables 5-6, read as WGAN-GP's CIFAR DCGAN: 5x5 kernels, batchnorm in G only."""
    return _dc(arch, shape, g_layers=3, d_layers=3, g_kernel=5, d_kernel=5, g_width=64, d_width=64,
               g_bn=True, d_bn=False, d_bn_first=False)


def stackelberg_dcgan(arch, shape):
    """Stackelberg GAN Tables 5-6: G of 2 transposed convs, D of 3 convs, 5x5 kernels."""
    return _dc(arch, shape, g_layers=2, d_layers=3, g_kernel=5, d_kernel=5, g_width=64, d_width=128,
               g_bn=False, d_bn=True, d_bn_first=True)


def pacgan_dcgan(arch, shape):
    """PacGAN's (and VEEGAN's) Stacked-MNIST DCGAN (fjxmlzn/PacGAN, stacked_MNIST_experiments, on
    carpedm20's DCGAN-tensorflow): 5x5 kernels and four stride-2 layers of TensorFlow's SAME sizes
    (28 -> 14 -> 7 -> 4 -> 2); G 512-256-128-64 with batchnorm, D 64-128-256-512 with batchnorm after its
    first layer, LeakyReLU 0.2."""
    c, res, _ = shape
    sizes = [res]
    for _ in range(4):
        sizes.append(-(-sizes[-1] // 2))
    gw, dw = _pick(arch.g_width, 64), _pick(arch.d_width, 64)
    build_g = partial(DCGenerator, arch.z_dim, c, sizes[-1], [gw * 8, gw * 4, gw * 2, gw], 5,
                      _pick(arch.g_batchnorm, True), sizes[-2::-1])
    build_d = partial(DCDiscriminator, c, res, [dw, dw * 2, dw * 4, dw * 8], 5, _pick(arch.d_batchnorm, True), False)
    return factories(arch, build_g, build_d)
