"""Class conditioning for any G and D of nets/, as a wrapper around the unconditional net.

G: class-conditional batchnorm (de Vries et al. 2017; Miyato and Koyama 2018, the cGAN of SN-GAN's
projection code): every batchnorm of G loses its own affine and gets a learned gain and bias per class,
starting at 1 and 0, so at the first step a class-conditional G computes what the unconditional one
does. A G without batchnorm (the 2-D MLPs, stackelberg's nets) gets the class as a one-hot vector
appended to z (Mirza and Osindero 2014): it is then built with z_dim + num_classes inputs.

D: the projection discriminator (Miyato and Koyama, ICLR 2018): logit(h, y) = linear(h) + <embed(y), h>,
h the features D's last layer reads. Every D of nets/ is logit(features(x)), so the wrapper needs no
knowledge of the net. The embedding is Glorot-uniform as in SN-GAN's projection code, spectrally
normalised when D is.

Nets that take labels themselves (BigGAN) are not wrapped (NetRecord.conditional).
"""
from __future__ import annotations

from functools import partial
from typing import Callable, List, Optional, Tuple

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from .common import BATCHNORM, batch_dependent


class ClassBatchNorm(nn.Module):
    """Batchnorm without its own affine, then a gain and bias looked up by class (`self.y`, set by
    ClassConditional before each forward: batchnorm layers sit inside Sequentials that pass one tensor)."""

    def __init__(self, bn: nn.modules.batchnorm._BatchNorm, num_classes: int):
        super().__init__()
        self.norm = type(bn)(bn.num_features, eps=bn.eps, momentum=bn.momentum, affine=False,
                             track_running_stats=bn.track_running_stats)
        self.gain = nn.Embedding(num_classes, bn.num_features)
        self.bias = nn.Embedding(num_classes, bn.num_features)
        nn.init.ones_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)
        self.y: Optional[Tensor] = None

    def forward(self, x: Tensor) -> Tensor:
        shape = (len(x), -1) + (1,) * (x.dim() - 2)
        return self.norm(x) * self.gain(self.y).view(shape) + self.bias(self.y).view(shape)


def _swap_batchnorm(net: nn.Module, num_classes: int) -> List[ClassBatchNorm]:
    made = []
    for name, child in list(net.named_children()):
        if isinstance(child, BATCHNORM):
            cbn = ClassBatchNorm(child, num_classes)
            setattr(net, name, cbn)
            made.append(cbn)
        else:
            made += _swap_batchnorm(child, num_classes)
    return made


class ConditionalG(nn.Module):
    """G(z, y): `how` is "cbn" (G's batchnorms become class-conditional) or "concat" (G was built with
    num_classes more inputs, which take one_hot(y))."""

    def __init__(self, net: nn.Module, num_classes: int, how: str):
        super().__init__()
        self.net, self.num_classes, self.how = net, num_classes, how
        self._cbn = _swap_batchnorm(net, num_classes) if how == "cbn" else []

    def forward(self, z: Tensor, y: Tensor) -> Tensor:
        if self.how == "concat":
            # scatter, not F.one_hot: one_hot checks the labels' range with a host sync
            hot = torch.zeros(len(y), self.num_classes, dtype=z.dtype, device=z.device).scatter_(1, y[:, None], 1.0)
            return self.net(torch.cat([z, hot], 1))
        for m in self._cbn:
            m.y = y
        return self.net(z)


class ProjectionD(nn.Module):
    """D(x, y) = linear(h) + <embed(y), h>, h = D.features(x); without y, the unconditional logit."""

    def __init__(self, net: nn.Module, num_classes: int, width: int, sn: bool):
        super().__init__()
        self.net = net
        self.embed = nn.Embedding(num_classes, width)
        nn.init.xavier_uniform_(self.embed.weight)
        if sn:
            spectral_norm(self.embed)

    def features(self, x: Tensor) -> Tensor:
        return self.net.features(x)

    def logit(self, h: Tensor, y: Optional[Tensor] = None) -> Tensor:
        out = self.net.logit(h)
        return out if y is None else out + (self.embed(y) * h.flatten(1)).sum(1).to(out.dtype)

    def forward(self, x: Tensor, y: Optional[Tensor] = None) -> Tensor:
        return self.logit(self.features(x), y)


def feature_width(net: nn.Module, shape: tuple) -> int:
    """How many features D's last layer reads: one forward of zeros in eval mode (nothing updates)."""
    was = net.training
    net.eval()
    with torch.no_grad():
        width = net.features(torch.zeros((2,) + tuple(shape))).flatten(1).shape[1]
    net.train(was)
    return width


def make_conditional_g(make_g: Callable[[], nn.Module], make_g_wide: Callable[[], nn.Module], num_classes: int,
                       how: str) -> nn.Module:
    """how: cbn, concat or auto (cbn where G has batchnorm, concat where it has none)."""
    net = make_g()
    if how == "auto":
        how = "cbn" if batch_dependent(net) else "concat"
    if how == "concat":
        net = make_g_wide()
    elif not batch_dependent(net):
        raise ValueError("labels.g=cbn needs a G with batchnorm layers; this arch has none (use labels.g=concat)")
    return ConditionalG(net, num_classes, how)


def make_conditional_d(make_d: Callable[[], nn.Module], num_classes: int, shape: tuple, sn: bool) -> nn.Module:
    net = make_d()
    return ProjectionD(net, num_classes, feature_width(net, shape), sn)


def conditional_factories(make_g, make_g_wide, make_d, num_classes: int, how: str, shape: tuple,
                          sn: bool) -> Tuple[Callable, Callable]:
    return (partial(make_conditional_g, make_g, make_g_wide, num_classes, how),
            partial(make_conditional_d, make_d, num_classes, shape, sn))
