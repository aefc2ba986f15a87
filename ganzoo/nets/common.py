"""Pieces every image net shares: weight init, spectral norm, and the factory wrapper."""
from __future__ import annotations

import math
from functools import partial

from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

LINEAR = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
BATCHNORM = (nn.BatchNorm1d, nn.BatchNorm2d)
SQRT2 = math.sqrt(2)


def batch_dependent(net: nn.Module) -> bool:
    """Whether a training-mode forward mixes the rows of its batch (batchnorm), so that which rows
    are scored together changes each row's output."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())


def init_weights(net: nn.Module, scheme: str, std: float = 0.02, gain: float = 1.0) -> None:
    """normal: weights N(0, std), biases 0, batchnorm scale N(1, std) (Radford et al.'s DCGAN code);
    xavier: Glorot-uniform with the gain a layer asks for in `init_gain` (SN-GAN's code uses
    sqrt(2) inside residual blocks, 1 elsewhere), biases 0; orthogonal: orthogonal weights with that
    gain, biases 0 (BigGAN's code); default: PyTorch's own init. `gain` multiplies every layer's gain
    (Unrolled GAN's toy nets: orthogonal with gain 0.8)."""
    if scheme == "default":
        return
    for m in net.modules():
        if isinstance(m, LINEAR):
            # a layer spectral-normalised at construction (the 2-D nets) holds its raw weight here
            weight = m.parametrizations.weight.original if parametrize.is_parametrized(m, "weight") else m.weight
            if scheme == "normal":
                nn.init.normal_(weight, 0.0, std)
            elif scheme == "orthogonal":
                nn.init.orthogonal_(weight, gain=gain * getattr(m, "init_gain", 1.0))
            else:
                nn.init.xavier_uniform_(weight, gain=gain * getattr(m, "init_gain", 1.0))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, BATCHNORM) and m.affine and scheme == "normal":
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)


def with_gain(layer: nn.Module, gain: float) -> nn.Module:
    layer.init_gain = gain
    return layer


def add_spectral_norm(net: nn.Module) -> nn.Module:
    """Spectral norm on every conv and linear layer (one power iteration per training forward).
    Applied after init, so the normalised weight starts from the initialised one."""
    for m in list(net.modules()):
        if isinstance(m, LINEAR):
            spectral_norm(m)
    return net


def make(build, init: str, std: float, sn: bool, gain: float = 1.0) -> nn.Module:
    net = build()
    init_weights(net, init, std, gain)
    return add_spectral_norm(net) if sn else net


def factories(arch, build_g, build_d):
    """(make_g, make_d): each call returns a fresh, independently initialised net (picklable partials)."""
    return (partial(make, build_g, arch.init, arch.init_std, False),
            partial(make, build_d, arch.init, arch.init_std, arch.spectral_norm))


def norm2d(channels: int, on: bool) -> nn.Module:
    return nn.BatchNorm2d(channels) if on else nn.Identity()
