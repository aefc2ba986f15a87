"""arch config -> (make_generator, make_discriminator) factories.

Factories rather than modules, because multi-player methods need several
independently initialised copies of the same net.
"""
from __future__ import annotations

import dataclasses
from functools import partial

from .common import make
from .image_mlp import image_mlp
from .mlp import MLP, Discriminator
from .schemas import NETS


def build_nets(arch, data_shape, num_classes: int = 0, g_cond: str = "auto"):
    """With num_classes > 0, G(z, y) and D(x, y) for that many classes: the net's own where its record
    says it takes labels, else the unconditional nets wrapped (nets/conditional.py; `g_cond` picks G's
    conditioning)."""
    if num_classes == 0:
        return _unconditional(arch, data_shape)
    if arch.type == "conv" and NETS[arch.net].conditional:
        return NETS[arch.net].load()(arch, tuple(data_shape), num_classes)
    from .conditional import conditional_factories
    make_g, make_d = _unconditional(arch, data_shape)
    make_g_wide = _unconditional(dataclasses.replace(arch, z_dim=arch.z_dim + num_classes), data_shape)[0]
    sn = arch.d.spectral_norm if arch.type == "mlp" else arch.spectral_norm
    return conditional_factories(make_g, make_g_wide, make_d, num_classes, g_cond, tuple(data_shape), sn)


def _unconditional(arch, data_shape):
    if arch.type == "conv" and NETS[arch.net].conditional:
        return NETS[arch.net].load()(arch, tuple(data_shape), 0)
    if arch.type == "mlp":
        dim = data_shape[0]
        g, d = arch.g, arch.d
        build_g = partial(MLP, arch.z_dim, list(g.hidden), dim, g.act, g.slope, g.batchnorm, g.spectral_norm, g.out,
                          g.in_scale)
        build_d = partial(Discriminator, dim, list(d.hidden), 1, d.act, d.slope, d.batchnorm, d.spectral_norm,
                          "identity", d.in_scale, d_out=arch.d_out)
        return (partial(make, build_g, arch.init, arch.init_std, False, arch.init_gain),
                partial(make, build_d, arch.init, arch.init_std, False, arch.init_gain))
    if arch.type == "image_mlp":
        return image_mlp(arch, tuple(data_shape))
    if arch.type == "conv":
        if arch.net not in NETS:
            raise ValueError(f"unknown conv net {arch.net!r}; known: {', '.join(NETS)}")
        return NETS[arch.net].load()(arch, tuple(data_shape))
    raise ValueError(f"unknown arch type {arch.type!r}")
