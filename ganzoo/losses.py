"""Loss families and gradient penalties: pure functions of logits (see METHODS.md).

A family is three per-sample terms, all minimised: `real(l)` and `fake(l)` for
the discriminator, `gen(l)` for the generator, where `l` is a raw logit.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

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


def _grad_sq_norm(logits: Tensor, inputs: Tensor, batch_dims: int = 1) -> Tensor:
    """Per-sample ||d logit / d input||^2, differentiable (create_graph) so D can train on it.
    inputs (B, ...), or (K, B, ...) with batch_dims=2 for K stacked discriminators."""
    (grad,) = torch.autograd.grad(logits.sum(), inputs, create_graph=True)
    return grad.flatten(batch_dims).pow(2).sum(-1)


def r1(logits: Tensor, inputs: Tensor, batch_dims: int = 1) -> Tensor:
    """Zero-centred gradient penalty on the samples D treats as real (one value per D).

    `logits` must come from `inputs` with requires_grad set, so the real
    forward pass is shared with the loss instead of being run twice.
    """
    return _grad_sq_norm(logits, inputs, batch_dims).mean(-1)


def _interpolates(real: Tensor, fake: Tensor, generator: torch.Generator | None, batch_dims: int) -> Tensor:
    shape = real.shape[:batch_dims] + (1,) * (real.dim() - batch_dims)
    t = torch.rand(shape, device=real.device, dtype=real.dtype, generator=generator)
    return (t * real.detach() + (1 - t) * fake.detach()).requires_grad_(True)


def gp(disc: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, generator=None, batch_dims: int = 1) -> Tensor:
    """WGAN-GP: mean (||grad D(x_hat)|| - 1)^2 on random real/fake interpolates.
    batch_dims=2 for K stacked discriminators on (K, B, ...) inputs: one value per D."""
    x = _interpolates(real, fake, generator, batch_dims)
    norm = (_grad_sq_norm(disc(x), x, batch_dims) + 1e-12).sqrt()
    return (norm - 1).pow(2).mean(-1)


def zgp(disc: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, generator=None, batch_dims: int = 1) -> Tensor:
    """Zero-centred GP on interpolates (Thanh-Tung et al. 2019): mean ||grad D(x_hat)||^2."""
    x = _interpolates(real, fake, generator, batch_dims)
    return _grad_sq_norm(disc(x), x, batch_dims).mean(-1)
