"""Config schemas of the image architectures, and shape checks that need no torch."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError


@dataclass
class ConvArch:
    name: str = "dcgan"
    type: str = "conv"
    net: str = "dcgan"          # the builder in ganzoo/nets/build.py
    z_dim: int = 100
    z_dist: str = "normal"
    g_width: int = 64           # base channel count (scaled where the paper's table allows)
    d_width: int = 64
    spectral_norm: bool = False  # on D


ARCH_SCHEMAS = {"conv": ConvArch}


def validate_conv_arch(arch: ConvArch, shape: tuple) -> None:
    if arch.z_dim < 1:
        raise ConfigError(f"arch.z_dim must be >= 1, got {arch.z_dim}")
