"""Loss families and gradient penalties: pure functions of logits (docs/METHODS.md).

A family is three per-sample terms, all minimised: `real(l)` and `fake(l)` for
the discriminator, `gen(l)` for the generator, where `l` is a raw logit.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

Term = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class LossFamily:
    name: str
    real: Term
    fake: Term
    gen: Term


def _neg(t: Tensor) -> Tensor:
    return -t


LOSSES = {
    "ns": LossFamily("ns", lambda l: F.softplus(-l), F.softplus, lambda l: F.softplus(-l)),
    "minimax": LossFamily("minimax", lambda l: F.softplus(-l), F.softplus, lambda l: -F.softplus(l)),
    "wgan": LossFamily("wgan", _neg, lambda l: l, _neg),
    "hinge": LossFamily("hinge", lambda l: F.relu(1 - l), lambda l: F.relu(1 + l), _neg),
    "lsgan": LossFamily("lsgan", lambda l: (l - 1) ** 2 / 2, lambda l: l ** 2 / 2, lambda l: (l - 1) ** 2 / 2),
}


def get_loss(name: str) -> LossFamily:
    return LOSSES[name]


def _grad_sq_norm(logits: Tensor, inputs: Tensor, scale: Optional[Tensor] = None) -> Tensor:
    """Per-sample ||d logit / d input||^2 over the rows of `inputs` (B, ...), differentiable
    (create_graph) so D can train on it.

    `scale` (fp16 mixed precision): the gradient is taken of scale * logits and divided by scale
    in fp32, PyTorch's AMP recipe for gradient penalties; unscaled, an fp16 backward underflows
    toward zero without an error. A tensor, so reading it costs no host sync."""
    out = logits.sum() if scale is None else (logits.float() * scale).sum()
    (grad,) = torch.autograd.grad(out, inputs, create_graph=True)
    if scale is not None:
        grad = grad.float() / scale
    return grad.flatten(1).pow(2).sum(-1)


def r1_terms(logits: Tensor, inputs: Tensor, scale: Optional[Tensor] = None) -> Tensor:
    """Zero-centred gradient penalty on the samples D treats as real, one value per sample.

    `logits` must come from `inputs` with requires_grad set, so the real
    forward pass is shared with the loss instead of being run twice.
    """
    return _grad_sq_norm(logits, inputs, scale)


def _interpolates(real: Tensor, fake: Tensor, generator: torch.Generator | None, t: Optional[Tensor]) -> Tensor:
    """`t`: the interpolation weights, when the caller drew them (a rank's share of a global draw)."""
    if t is None:
        shape = real.shape[:1] + (1,) * (real.dim() - 1)
        t = torch.rand(shape, device=real.device, dtype=real.dtype, generator=generator)
    return (t * real.detach() + (1 - t) * fake.detach()).requires_grad_(True)


def gp_terms(disc: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, generator=None,
             scale: Optional[Tensor] = None, t: Optional[Tensor] = None) -> Tensor:
    """WGAN-GP: (||grad D(x_hat)|| - 1)^2 on random real/fake interpolates, one value per sample."""
    x = _interpolates(real, fake, generator, t)
    norm = (_grad_sq_norm(disc(x), x, scale) + 1e-12).sqrt()
    return (norm - 1).pow(2)


def zgp_terms(disc: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, generator=None,
              scale: Optional[Tensor] = None, t: Optional[Tensor] = None) -> Tensor:
    """Zero-centred GP on interpolates (Thanh-Tung et al. 2019): ||grad D(x_hat)||^2 per sample."""
    x = _interpolates(real, fake, generator, t)
    return _grad_sq_norm(disc(x), x, scale)


def r1(logits: Tensor, inputs: Tensor, scale: Optional[Tensor] = None) -> Tensor:
    return r1_terms(logits, inputs, scale).mean()


def gp(disc, real: Tensor, fake: Tensor, generator=None, scale: Optional[Tensor] = None) -> Tensor:
    return gp_terms(disc, real, fake, generator, scale).mean()


def zgp(disc, real: Tensor, fake: Tensor, generator=None, scale: Optional[Tensor] = None) -> Tensor:
    return zgp_terms(disc, real, fake, generator, scale).mean()

