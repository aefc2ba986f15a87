"""arch config -> (make_generator, make_discriminator) factories.

Factories rather than modules, because multi-player methods need several
independently initialised copies of the same net.
"""
from __future__ import annotations

from functools import partial

from .mlp import MLP, Discriminator


def build_nets(arch, data_shape):
    if arch.type != "mlp":
        raise ValueError(f"unknown arch type {arch.type!r}")
    dim = data_shape[0]
    g, d = arch.g, arch.d
    make_g = partial(MLP, arch.z_dim, list(g.hidden), dim, g.act, g.slope, g.batchnorm, g.spectral_norm, g.out)
    make_d = partial(Discriminator, dim, list(d.hidden), 1, d.act, d.slope, d.batchnorm, d.spectral_norm)
    return make_g, make_d
