"""Config schemas of the image architectures, and shape checks that need no torch.

config.py validates every job with these before torch is imported, so a wrong
arch/dataset pair fails in well under a second. NETS holds one record per image net.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from importlib import import_module
from typing import List, Optional, Tuple

from omegaconf import MISSING

from ..errors import ConfigError, check, non_negative, positive


class Act(StrEnum):
    """Activations (nets/mlp.py:activation builds each)."""
    relu = "relu"
    leaky_relu = "leaky_relu"
    tanh = "tanh"
    elu = "elu"
    sigmoid = "sigmoid"
    identity = "identity"


class Noise(StrEnum):
    """Latent distributions (methods/common.py:Noise)."""
    normal = "normal"
    uniform = "uniform"


class Init(StrEnum):
    """Weight initialisations (nets/common.py:init_weights)."""
    normal = "normal"
    xavier = "xavier"
    orthogonal = "orthogonal"
    default = "default"


@dataclass(frozen=True)
class NetRecord:
    """Everything ganzoo knows of one image net, in one place: where its builder is (a function
    `builder(arch, (C, H, W)) -> (make_g, make_d)` in nets/, imported only when a run builds it),
    the square image sizes its layer stack supports (1 or 3 channels), and whether its batchnorm
    layers are a switch (`arch.g_batchnorm` / `arch.d_batchnorm`) or fixed by its paper's table."""
    builder: str                  # "module:function" under ganzoo/nets
    resolutions: Tuple[int, ...]
    batchnorm_switch: bool = False
    # True: the builder is `builder(arch, shape, num_classes)` and its nets take labels themselves
    # (G(z, y), D.logit(h, y)); False: a conditional run wraps them (nets/conditional.py)
    conditional: bool = False

    def load(self):
        module, _, name = self.builder.partition(":")
        return getattr(import_module(f"ganzoo.nets.{module}"), name)


# DCGAN-style stacks keep the table's layers and change only the size of the first feature map
# (resolution / 2^upsamplings, a whole number >= 3); dcgan also adapts its depth (Radford et al.:
# stride-2 layers until the map is 4..7 pixels wide). The ResNets and the conventional net stay at
# their tables' sizes. Adding a net: its file in nets/, a record here, its YAML in conf/arch/.
NETS = {
    "dcgan": NetRecord("dcgan:dcgan", (28, 32, 48, 64), batchnorm_switch=True),
    "microbatch_dcgan": NetRecord("dcgan:microbatch_dcgan", (32, 48, 64), True),  # 3 upsamplings from 4x4 at 32
    "fargan_dcgan": NetRecord("dcgan:fargan_dcgan", (32, 48, 64), True),          # 3 upsamplings
    "stackelberg_dcgan": NetRecord("dcgan:stackelberg_dcgan", (28, 32, 48, 64), True),  # 2 from 8x8 at 32
    "fargan_resnet32": NetRecord("resnet:fargan_resnet32", (32,)),
    "fargan_resnet64": NetRecord("resnet:fargan_resnet64", (64,)),
    "fargan_conventional": NetRecord("conventional:fargan_conventional", (32,)),
    "sngan_resnet": NetRecord("sngan:sngan_resnet", (32, 48)),  # Miyato et al.'s CIFAR-10 and STL-10 tables
    "autogan": NetRecord("autogan:autogan", (32, 48)),  # G from a 4x4 (CIFAR) or 6x6 (the repo's STL-10 run) map
    "pacgan_dcgan": NetRecord("dcgan:pacgan_dcgan", (28, 32), True),    # SAME sizes down to 2x2
    "biggan": NetRecord("biggan:biggan", (32, 64), conditional=True),  # BigGAN-PyTorch's archs for 32 and 64
}
# the `net` key's options: the records' names
ConvNet = StrEnum("ConvNet", {name: name for name in NETS})


def _check_latent(arch) -> None:
    check(arch.z_dim >= 1, f"arch.z_dim must be >= 1, got {arch.z_dim}")


@dataclass
class Layers:
    """A fully connected stack: its hidden widths and activation."""
    hidden: List[int] = field(default_factory=lambda: [128, 128, 128])
    act: Act = Act.relu
    slope: float = 0.2          # leaky_relu's negative slope
    batchnorm: bool = False

    def check(self, where: str) -> None:
        check(len(self.hidden) >= 1 and all(h >= 1 for h in self.hidden),
              f"{where}.hidden: give at least one width, each >= 1, got {list(self.hidden)}")
        non_negative(f"{where}.slope", self.slope)


class DOut(StrEnum):
    """What D's last layer returns: the logit the loss takes, or softplus of it (D2GAN's toy D, whose
    objective reads D's output as a positive number; the loss then takes that number as its logit)."""
    identity = "identity"
    softplus = "softplus"


@dataclass
class MLPNet(Layers):
    spectral_norm: bool = False
    out: Act = Act.identity     # G's output activation (D's: d_out)
    in_scale: float = 1.0       # the net multiplies its input by this first (Unrolled GAN's toy D)

    def check(self, where: str) -> None:
        super().check(where)
        positive(f"{where}.in_scale", self.in_scale)


@dataclass
class MLPArch:
    """G and D for 2-D data (nets/mlp.py)."""
    name: str = "mlp"
    type: str = "mlp"
    z_dim: int = 2
    z_dist: Noise = Noise.normal
    g: MLPNet = field(default_factory=MLPNet)
    d: MLPNet = field(default_factory=MLPNet)
    d_out: DOut = DOut.identity
    # normal: weights N(0, init_std) and zero biases (D2GAN's toy code); orthogonal or xavier with gain
    # init_gain (Unrolled GAN's toy: orthogonal, 0.8); default: PyTorch's
    init: Init = Init.default
    init_std: float = 0.02
    init_gain: float = 1.0

    def check(self, shape: tuple) -> None:
        """shape: one sample's, (dim,); config.py has checked it is not an image."""
        _check_latent(self)
        self.g.check("arch.g")
        self.d.check("arch.d")
        check(self.d.out == Act.identity,
              "arch.d.out must be identity: D returns raw logits and the loss applies its own link "
              "(arch.d_out=softplus makes D's output softplus of the logit)")
        check(self.init_std > 0, f"arch.init_std must be > 0, got {self.init_std}")
        check(self.init_gain > 0, f"arch.init_gain must be > 0, got {self.init_gain}")


# the sizes after each of BigGAN's blocks (nets/biggan.py's layouts), where attention may follow one
BIGGAN_G_SIZES = {32: (8, 16, 32), 64: (8, 16, 32, 64)}
BIGGAN_D_SIZES = {32: (16, 8), 64: (32, 16, 8, 4)}


@dataclass
class BigGANOptions:
    """BigGAN's own switches (nets/biggan.py), at what ajbrock/BigGAN-PyTorch's CIFAR script
    (scripts/launch_cifar_ema.sh) runs: utils.py's defaults where the script sets nothing."""
    shared: bool = False                # G_shared: one class embedding feeds every conditional BN (else
                                        # each BN has its own per-class gain and bias)
    shared_dim: int = 0                 # the shared embedding's size; 0 = z_dim (the source's convention)
    hier: bool = False                  # z split into chunks: one for G's first layer, one per block's BNs
    g_attn: List[int] = field(default_factory=list)  # sizes after which G has a self-attention block
    d_attn: List[int] = field(default_factory=list)  # (the script: --G_attn 0 --D_attn 0, none)
    g_spectral_norm: bool = True        # G_param SN: every conv and linear layer of G

    def check(self, arch, resolution: int) -> None:
        non_negative("arch.biggan.shared_dim", self.shared_dim)
        if self.hier:
            check(self.shared, "arch.biggan.hier needs arch.biggan.shared=true: BigGAN's BNs read the "
                               "shared class embedding joined to their chunk of z")
            slots = len(BIGGAN_G_SIZES[resolution]) + 1
            check(arch.z_dim % slots == 0,
                  f"arch.z_dim={arch.z_dim}: with arch.biggan.hier at {resolution}x{resolution} z splits "
                  f"into {slots} equal chunks (G's first layer and each block); give a multiple of {slots}")
        for key, sizes, width in (("g_attn", BIGGAN_G_SIZES, arch.g_width), ("d_attn", BIGGAN_D_SIZES, arch.d_width)):
            wrong = [r for r in getattr(self, key) if r not in sizes[resolution]]
            check(not wrong, f"arch.biggan.{key}: {resolution}x{resolution} blocks end at sizes "
                             f"{list(sizes[resolution])}, not {wrong}")
            check(not getattr(self, key) or width is None or width >= 8,
                  f"arch.biggan.{key} needs arch.{key[0]}_width >= 8 (attention maps to width/8 channels)")


@dataclass
class ConvArch:
    name: str = MISSING                 # the preset's name (conf/arch/<name>.yaml)
    type: str = "conv"
    net: ConvNet = MISSING              # the net's record (NETS above)
    z_dim: int = 100
    z_dist: Noise = Noise.normal
    # base channel counts: G's last hidden layer and D's first; the other layers scale with
    # them as in the paper's table. null = the table's (sngan_resnet: it depends on resolution;
    # biggan: they are the source's channel multipliers G_ch / D_ch, 64)
    g_width: Optional[int] = None
    d_width: Optional[int] = None
    spectral_norm: bool = False         # on every conv/linear layer of D (Miyato et al. 2018)
    g_batchnorm: Optional[bool] = None  # null = the table's; a switch only where the record says so
    d_batchnorm: Optional[bool] = None
    init: Init = Init.normal            # normal: N(0, init_std) weights, zero biases; xavier; default (PyTorch's)
    init_std: float = 0.02
    biggan: BigGANOptions = field(default_factory=BigGANOptions)  # net biggan's own options

    def check(self, shape: tuple) -> None:
        _check_image(self, shape)
        for key in ("g_width", "d_width"):
            value = getattr(self, key)
            check(value is None or value >= 1, f"arch.{key} must be >= 1 (or null for the table's), got {value}")
        if not NETS[self.net].batchnorm_switch:
            for key in ("g_batchnorm", "d_batchnorm"):
                check(getattr(self, key) is None,
                      f"arch.{key}: net {self.net} has no batchnorm switch (its table fixes it); leave it null")
        c, h, w = shape
        sizes = NETS[self.net].resolutions
        if h != w or h not in sizes:
            listed = ", ".join(f"{r}x{r}" for r in sizes)
            hint = f"set dataset.resolution={32 if 32 in sizes else sizes[0]}"
            hint += "" if len(sizes) == 1 else " (or another of these)"
            raise ConfigError(f"arch={self.name} supports {listed} images (1 or 3 channels), "
                              f"not {c}x{h}x{w}: {hint}")
        if self.net == "biggan":
            self.biggan.check(self, h)
        else:
            check(self.biggan == BigGANOptions(),
                  f"arch.biggan: only net biggan reads these options; leave them unset for net {self.net}")


def _image_layers() -> Layers:
    return Layers(hidden=[512], act=Act.leaky_relu)


@dataclass
class ImageMLPArch:
    """Fully connected G and D on flattened images (Stackelberg GAN's MNIST / Fashion-MNIST nets)."""
    name: str = MISSING
    type: str = "image_mlp"
    z_dim: int = 100
    z_dist: Noise = Noise.normal
    g: Layers = field(default_factory=_image_layers)
    d: Layers = field(default_factory=_image_layers)
    spectral_norm: bool = False
    init: Init = Init.default
    init_std: float = 0.02

    def check(self, shape: tuple) -> None:
        _check_image(self, shape)  # a fully connected net takes any image size
        self.g.check("arch.g")
        self.d.check("arch.d")


def _check_image(arch, shape: tuple) -> None:
    _check_latent(arch)
    check(arch.init_std > 0, f"arch.init_std must be > 0, got {arch.init_std}")
    check(shape[0] in (1, 3), f"arch={arch.name} supports 1 or 3 channels, not {shape[0]}")


# an arch config's `type` -> its schema (a saved config names its schema by it)
ARCH_SCHEMAS = {"mlp": MLPArch, "conv": ConvArch, "image_mlp": ImageMLPArch}
