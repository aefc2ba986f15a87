"""arch config -> (make_generator, make_discriminator) factories.

Factories rather than modules, because multi-player methods need several
independently initialised copies of the same net.
"""
from __future__ import annotations

from functools import partial

from .common import make
from .conventional import fargan_conventional
from .dcgan import dcgan, fargan_dcgan, microbatch_dcgan, stackelberg_dcgan
from .image_mlp import image_mlp
from .mlp import MLP, Discriminator
from .resnet import fargan_resnet32, fargan_resnet64
from .sngan import sngan_resnet

# the `net` key of a conv arch -> builder(arch, (C, H, W)) -> (make_g, make_d);
# schemas.RESOLUTIONS lists the same names with the sizes each supports
CONV_NETS = {
    "dcgan": dcgan,
    "microbatch_dcgan": microbatch_dcgan,
    "fargan_dcgan": fargan_dcgan,
    "stackelberg_dcgan": stackelberg_dcgan,
    "fargan_resnet32": fargan_resnet32,
    "fargan_resnet64": fargan_resnet64,
    "fargan_conventional": fargan_conventional,
    "sngan_resnet": sngan_resnet,
}


def build_nets(arch, data_shape):
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
        if arch.net not in CONV_NETS:
            raise ValueError(f"unknown conv net {arch.net!r}; known: {', '.join(CONV_NETS)}")
        return CONV_NETS[arch.net](arch, tuple(data_shape))
    raise ValueError(f"unknown arch type {arch.type!r}")
