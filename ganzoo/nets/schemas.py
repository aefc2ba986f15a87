"""Config schemas of the image architectures, and shape checks that need no torch.

config.py validates every job with these before torch is imported, so a wrong
arch/dataset pair fails in well under a second. build.py holds the matching
builders; tests/test_arch.py checks that both name the same nets.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from ..errors import ConfigError

NOISE = ("normal", "uniform")
INITS = ("normal", "xavier", "default")  # see nets/common.py:init_weights
MLP_ACTIVATIONS = ("relu", "leaky_relu", "tanh", "elu", "sigmoid", "identity")

# net -> the square image sizes its layer stack supports (any of 1 or 3 channels).
# DCGAN-style stacks keep the table's layers and change only the size of the first
# feature map (resolution / 2^upsamplings, a whole number >= 3); dcgan also adapts its
# depth (Radford et al.: stride-2 layers until the map is 4..7 pixels wide). The ResNets
# and the conventional net stay at their tables' sizes.
RESOLUTIONS = {
    "dcgan": (28, 32, 48, 64),
    "microbatch_dcgan": (32, 48, 64),     # 3 upsamplings from a 4x4 (at 32) map
    "fargan_dcgan": (32, 48, 64),         # 3 upsamplings
    "stackelberg_dcgan": (28, 32, 48, 64),  # 2 upsamplings from an 8x8 (at 32) map
    "fargan_resnet32": (32,),
    "fargan_resnet64": (64,),
    "fargan_conventional": (32,),
    "sngan_resnet": (32, 48),             # Miyato et al.'s CIFAR-10 and STL-10 tables
}
# nets whose batchnorm layers are a switch (the others' tables fix their normalisation)
BATCHNORM_SWITCH = ("dcgan", "microbatch_dcgan", "fargan_dcgan", "stackelberg_dcgan")


@dataclass
class ConvArch:
    name: str = "dcgan"
    type: str = "conv"
    net: str = "dcgan"                  # the builder (RESOLUTIONS above, nets/build.py)
    z_dim: int = 100
    z_dist: str = "normal"
    # base channel counts: G's last hidden layer and D's first; the other layers scale with
    # them as in the paper's table. null = the table's (sngan_resnet: it depends on resolution)
    g_width: Optional[int] = None
    d_width: Optional[int] = None
    spectral_norm: bool = False         # on every conv/linear layer of D (Miyato et al. 2018)
    g_batchnorm: Optional[bool] = None  # null = the table's; a switch only for BATCHNORM_SWITCH nets
    d_batchnorm: Optional[bool] = None
    init: str = "normal"                # normal: N(0, init_std) weights, zero biases; xavier; default (PyTorch's)
    init_std: float = 0.02


@dataclass
class ImageMLPNet:
    hidden: List[int] = field(default_factory=lambda: [512])
    act: str = "leaky_relu"
    slope: float = 0.2
    batchnorm: bool = False


@dataclass
class ImageMLPArch:
    """Fully connected G and D on flattened images (Stackelberg GAN's MNIST / Fashion-MNIST nets)."""
    name: str = "image_mlp"
    type: str = "image_mlp"
    z_dim: int = 100
    z_dist: str = "normal"
    g: ImageMLPNet = field(default_factory=ImageMLPNet)
    d: ImageMLPNet = field(default_factory=ImageMLPNet)
    spectral_norm: bool = False
    init: str = "default"
    init_std: float = 0.02


ARCH_SCHEMAS = {"conv": ConvArch, "image_mlp": ImageMLPArch}


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


def _one_of(where: str, value, allowed) -> None:
    _check(value in allowed, f"{where}: {value!r} is not allowed; choose one of: {', '.join(allowed)}")


def validate_conv_arch(arch, shape: tuple) -> None:
    """Value and shape checks for an image arch; shape = (C, H, W) of one training image."""
    _check(arch.z_dim >= 1, f"arch.z_dim must be >= 1, got {arch.z_dim}")
    _one_of("arch.z_dist", arch.z_dist, NOISE)
    _one_of("arch.init", arch.init, INITS)
    _check(arch.init_std > 0, f"arch.init_std must be > 0, got {arch.init_std}")
    _check(len(shape) == 3, f"arch={arch.name} is an image net; the data are not images (shape {tuple(shape)})")
    c, h, w = shape
    _check(c in (1, 3), f"arch={arch.name} supports 1 or 3 channels, not {c}")
    if isinstance(arch, ImageMLPArch):
        for player in ("g", "d"):
            net = getattr(arch, player)
            _check(len(net.hidden) >= 1 and all(n >= 1 for n in net.hidden),
                   f"arch.{player}.hidden: give at least one width, each >= 1, got {list(net.hidden)}")
            _one_of(f"arch.{player}.act", net.act, MLP_ACTIVATIONS)
            _check(net.slope >= 0, f"arch.{player}.slope must be >= 0, got {net.slope}")
        return  # a fully connected net takes any image size

    _one_of("arch.net", arch.net, tuple(RESOLUTIONS))
    for key in ("g_width", "d_width"):
        value = getattr(arch, key)
        _check(value is None or value >= 1, f"arch.{key} must be >= 1 (or null for the table's), got {value}")
    if arch.net not in BATCHNORM_SWITCH:
        for key in ("g_batchnorm", "d_batchnorm"):
            _check(getattr(arch, key) is None,
                   f"arch.{key}: net {arch.net} has no batchnorm switch (its table fixes it); leave it null")
    sizes = RESOLUTIONS[arch.net]
    if h != w or h not in sizes:
        listed = ", ".join(f"{r}x{r}" for r in sizes)
        hint = f"set dataset.resolution={32 if 32 in sizes else sizes[0]}"
        hint += "" if len(sizes) == 1 else " (or another of these)"
        raise ConfigError(f"arch={arch.name} supports {listed} images (1 or 3 channels), "
                          f"not {c}x{h}x{w}: {hint}")
