"""BigGAN's G and D at 32x32 and 64x64 (Brock, Donahue and Simonyan, ICLR 2019), as ajbrock/BigGAN-PyTorch
builds them (BigGAN.py: G_arch / D_arch, Generator, Discriminator; layers.py: GBlock, DBlock, ccbn, bn,
Attention, SN*) and runs them on CIFAR-10 (scripts/launch_cifar_ema.sh, utils.py's defaults).

G: z -> linear -> 4x4 map -> up-blocks -> BN, ReLU, 3x3 conv, tanh. An up-block: conditional BN, ReLU, x2
nearest upsampling, 3x3 conv, conditional BN, ReLU, 3x3 conv; shortcut: upsampling, 1x1 conv. Widths
(ch = arch.g_width): 32x32 three blocks of 4ch; 64x64 16ch -> 16ch, 8ch, 4ch, 2ch.
Conditional BN (ccbn): batchnorm without affine, then gain 1 + a(c) and bias b(c), where c is
  - the class index, a and b per-class embeddings (no shared embedding: the CIFAR script), or
  - the shared class embedding (`shared`), joined by the block's chunk of z (`hier`), a and b bias-free
    linear layers.
D: down-blocks (3x3 conv, ReLU, 3x3 conv at the output width, 2x2 average pooling; all but the first
start with a ReLU; a 1x1 shortcut where the width or size changes), ReLU, sum over pixels, then
linear(h) + <embed(y), h> (projection). Widths (ch = arch.d_width): 32x32 4ch, 4ch (both pooling), 4ch,
4ch; 64x64 ch, 2ch, 4ch, 8ch (each pooling), 16ch.
Spectral norm (one power iteration per training step, eps 1e-8) on every conv and linear layer of G
(`g_spectral_norm`) and, with arch.spectral_norm, on every conv, linear and embedding layer of D; never on
G's embeddings (the source: it "seems to randomly cripple G"). Self-attention (SA-GAN's block) after the
blocks that end at the sizes in `g_attn` / `d_attn`. Init (the source's init_weights): the weights of every
conv, linear and embedding layer N(0, init_std) (the script's N02), orthogonal or Glorot-uniform; biases and
batchnorm affines keep PyTorch's defaults.

Where ganzoo differs: 1 or 3 channels (the source: 3); G takes class indices (the source takes G.shared(y),
the index itself without a shared embedding); without classes (num_classes=0) G's BNs are plain batchnorm with
their own affine (the source has no such mode; with `hier`, they read the z chunks alone; `shared` is then
unused) and D has no projection; D's attention follows the true size after each block (the source's 32x32
table labels all four D blocks 16); PyTorch's spectral-norm parametrization (its u starts from 15 power
iterations, the source's from a random vector, and each step updates u then v, the source's v then u); D.logit
without y is linear(h) alone. The source's modified orthogonal regularisation is not here (the CIFAR script
turns it off: --G_ortho 0.0).
"""
from __future__ import annotations

from functools import partial
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

# G: each block's output width as a multiple of ch (the first block's input is as wide as its output)
G_LAYOUT = {32: (4, 4, 4), 64: (16, 8, 4, 2)}
# D: each block's output width as a multiple of ch, and whether it pools
D_LAYOUT = {32: ((4, True), (4, True), (4, False), (4, False)),
            64: ((1, True), (2, True), (4, True), (8, True), (16, False))}
DEFAULT_CH = 64   # utils.py's G_ch / D_ch; the CIFAR script keeps them
BOTTOM = 4        # G's first map is 4x4 (bottom_width)
SN_EPS = 1e-8     # utils.py's SN_eps


def _conv(cin: int, cout: int, k: int = 3, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, padding=k // 2, bias=bias)


class PlainBN(nn.BatchNorm2d):
    """Batchnorm with its own affine, called as a conditional one is (G's output BN; G's block BNs when
    nothing conditions them)."""

    def forward(self, x: Tensor, c: Optional[Tensor] = None) -> Tensor:
        return super().forward(x)


class CondBN(nn.Module):
    """layers.py's ccbn: gain 1 + a(c), bias b(c) per row after an affine-free batchnorm. cond_dim > 0: c is
    a vector and a, b bias-free linear layers; else c holds class indices and a, b are embeddings."""

    def __init__(self, channels: int, cond_dim: int, num_classes: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        if cond_dim:
            self.gain = nn.Linear(cond_dim, channels, bias=False)
            self.bias = nn.Linear(cond_dim, channels, bias=False)
        else:
            self.gain = nn.Embedding(num_classes, channels)
            self.bias = nn.Embedding(num_classes, channels)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        gain, bias = 1 + self.gain(c), self.bias(c)
        return self.norm(x) * gain[:, :, None, None] + bias[:, :, None, None]


class Attention(nn.Module):
    """SA-GAN's self-attention as layers.py's Attention computes it: queries at every pixel, keys and values
    2x2 max-pooled, bias-free 1x1 convs, and a learned gain that starts at 0 (the block starts as identity)."""

    def __init__(self, ch: int):
        super().__init__()
        self.theta, self.phi = _conv(ch, ch // 8, 1, False), _conv(ch, ch // 8, 1, False)
        self.g, self.o = _conv(ch, ch // 2, 1, False), _conv(ch // 2, ch, 1, False)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor) -> Tensor:
        query = self.theta(x).flatten(2)                  # B x ch/8 x HW
        key = F.max_pool2d(self.phi(x), 2).flatten(2)     # B x ch/8 x HW/4
        value = F.max_pool2d(self.g(x), 2).flatten(2)     # B x ch/2 x HW/4
        weights = torch.softmax(query.transpose(1, 2) @ key, dim=-1)
        out = (value @ weights.transpose(1, 2)).unflatten(2, x.shape[2:])
        return x + self.gamma * self.o(out)


def _attention(ch: int, on: bool) -> nn.Module:
    return Attention(ch) if on else nn.Identity()


class GBlock(nn.Module):
    def __init__(self, cin: int, cout: int, bn):
        super().__init__()
        self.bn1, self.bn2 = bn(cin), bn(cout)
        self.conv1, self.conv2 = _conv(cin, cout), _conv(cout, cout)
        self.conv_sc = _conv(cin, cout, 1)  # every block upsamples, so every shortcut is learned

    def forward(self, x: Tensor, c: Optional[Tensor]) -> Tensor:
        h = F.interpolate(F.relu(self.bn1(x, c)), scale_factor=2)
        h = self.conv2(F.relu(self.bn2(self.conv1(h), c)))
        return h + self.conv_sc(F.interpolate(x, scale_factor=2))


class BigGANGenerator(nn.Module):
    def __init__(self, z_dim: int, channels: int, widths: Sequence[int], attn: Sequence[int], num_classes: int,
                 shared: bool, shared_dim: int, hier: bool):
        super().__init__()
        self.num_classes = num_classes
        self.chunk = z_dim // (len(widths) + 1) if hier else 0  # the schema checks z_dim splits evenly
        self.shared = nn.Embedding(num_classes, shared_dim or z_dim) if num_classes and shared else None
        cond_dim = (self.shared.embedding_dim if self.shared is not None else 0) + self.chunk
        if cond_dim:
            bn = partial(CondBN, cond_dim=cond_dim, num_classes=0)
        elif num_classes:
            bn = partial(CondBN, cond_dim=0, num_classes=num_classes)
        else:
            bn = PlainBN
        self.linear = nn.Linear(self.chunk or z_dim, widths[0] * BOTTOM * BOTTOM)
        self.unflatten = nn.Unflatten(1, (widths[0], BOTTOM, BOTTOM))
        self.blocks = nn.ModuleList(GBlock(a, b, bn) for a, b in zip([widths[0], *widths], widths))
        self.attn = nn.ModuleList(_attention(w, BOTTOM * 2 ** (i + 1) in attn) for i, w in enumerate(widths))
        self.out_bn = PlainBN(widths[-1])
        self.out_conv = _conv(widths[-1], channels)

    def forward(self, z: Tensor, y: Optional[Tensor] = None) -> Tensor:
        if (y is not None) != (self.num_classes > 0):
            raise ValueError(f"this G has {self.num_classes} classes: "
                             + ("pass y, one class index per row" if self.num_classes else "call it without y"))
        cond = self.shared(y) if self.shared is not None else y
        if self.chunk:
            z, *chunks = z.split(self.chunk, dim=1)
            conds = [chunk if cond is None else torch.cat([cond, chunk], 1) for chunk in chunks]
        else:
            conds = [cond] * len(self.blocks)
        h = self.unflatten(self.linear(z))
        for block, attn, c in zip(self.blocks, self.attn, conds):
            h = attn(block(h, c))
        return torch.tanh(self.out_conv(F.relu(self.out_bn(h))))


class DBlock(nn.Module):
    """layers.py's DBlock with wide=True (the hidden conv is as wide as the output)."""

    def __init__(self, cin: int, cout: int, down: bool, preactivation: bool):
        super().__init__()
        self.conv1, self.conv2 = _conv(cin, cout), _conv(cout, cout)
        self.conv_sc = _conv(cin, cout, 1) if cin != cout or down else None
        self.down, self.preactivation = down, preactivation

    def _shortcut(self, x: Tensor) -> Tensor:
        if self.conv_sc is None:
            return x
        if not self.down:
            return self.conv_sc(x)
        # the source's order: 1x1 conv then pooling, but pooling first in the first block (on the image)
        if self.preactivation:
            return F.avg_pool2d(self.conv_sc(x), 2)
        return self.conv_sc(F.avg_pool2d(x, 2))

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv2(F.relu(self.conv1(F.relu(x) if self.preactivation else x)))
        if self.down:
            h = F.avg_pool2d(h, 2)
        return h + self._shortcut(x)


class BigGANDiscriminator(nn.Module):
    def __init__(self, channels: int, layout: Sequence[tuple], attn: Sequence[int], num_classes: int,
                 resolution: int):
        super().__init__()
        blocks, attns, cin, size = [], [], channels, resolution
        for i, (cout, down) in enumerate(layout):
            blocks.append(DBlock(cin, cout, down, preactivation=i > 0))
            size //= 2 if down else 1
            attns.append(_attention(cout, size in attn))
            cin = cout
        self.blocks, self.attn = nn.ModuleList(blocks), nn.ModuleList(attns)
        self.linear = nn.Linear(cin, 1)
        self.embed = nn.Embedding(num_classes, cin) if num_classes else None

    def features(self, x: Tensor) -> Tensor:
        """What the last layer reads (D's body, after the ReLU and the sum over pixels)."""
        for block, attn in zip(self.blocks, self.attn):
            x = attn(block(x))
        return F.relu(x).sum(dim=(2, 3))

    def logit(self, h: Tensor, y: Optional[Tensor] = None) -> Tensor:
        out = self.linear(h).squeeze(1)
        if y is not None and self.embed is not None:
            out = out + (self.embed(y) * h).sum(1)
        return out

    def forward(self, x: Tensor, y: Optional[Tensor] = None) -> Tensor:
        return self.logit(self.features(x), y)


def _init(net: nn.Module, scheme: str, std: float) -> None:
    """The source's init_weights: weights only, of conv, linear and embedding layers."""
    if scheme == "default":
        return
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding)):
            if scheme == "normal":
                nn.init.normal_(m.weight, 0.0, std)
            elif scheme == "orthogonal":
                nn.init.orthogonal_(m.weight)
            else:
                nn.init.xavier_uniform_(m.weight)


def make(build, init: str, std: float, sn_layers: tuple) -> nn.Module:
    """A fresh net: built, initialised, then spectral norm on the layers of the types in `sn_layers`
    (after init, so the normalised weight starts from the initialised one)."""
    net = build()
    _init(net, init, std)
    for m in list(net.modules()):
        # G's embeddings (the shared one, the per-class BN gains) are Embedding, never in G's sn_layers
        if isinstance(m, sn_layers):
            spectral_norm(m, eps=SN_EPS)
    return net


def biggan(arch, shape, num_classes: int):
    """(make_g, make_d) for `arch` (net: biggan) on images of `shape` (C, H, W), conditional on num_classes
    classes (0: unconditional)."""
    c, res, _ = shape
    opts = arch.biggan
    g_ch = DEFAULT_CH if arch.g_width is None else arch.g_width
    d_ch = DEFAULT_CH if arch.d_width is None else arch.d_width
    build_g = partial(BigGANGenerator, arch.z_dim, c, tuple(m * g_ch for m in G_LAYOUT[res]),
                      tuple(int(r) for r in opts.g_attn), num_classes, bool(opts.shared), int(opts.shared_dim),
                      bool(opts.hier))
    build_d = partial(BigGANDiscriminator, c, tuple((m * d_ch, down) for m, down in D_LAYOUT[res]),
                      tuple(int(r) for r in opts.d_attn), num_classes, res)
    g_sn = (nn.Conv2d, nn.Linear) if opts.g_spectral_norm else ()
    d_sn = (nn.Conv2d, nn.Linear, nn.Embedding) if arch.spectral_norm else ()
    return (partial(make, build_g, str(arch.init), arch.init_std, g_sn),
            partial(make, build_d, str(arch.init), arch.init_std, d_sn))
