"""Pieces every method uses: noise, optimisers, lr schedules, EMA, gradient norms."""
from __future__ import annotations

import copy
from typing import Iterable, List, Optional

import torch
from torch import Tensor, nn


class Noise:
    """Latent sampler with its own generator, so its position is part of the checkpoint."""

    def __init__(self, z_dim: int, dist: str, device: torch.device, seed: int):
        self.z_dim = z_dim
        self.dist = dist
        self.device = device
        self.generator = torch.Generator(device=device).manual_seed(seed)

    def __call__(self, n: int, generator: Optional[torch.Generator] = None) -> Tensor:
        gen = self.generator if generator is None else generator
        if self.dist == "uniform":
            return torch.rand(n, self.z_dim, generator=gen, device=self.device) * 2 - 1
        return torch.randn(n, self.z_dim, generator=gen, device=self.device)


def make_optimizer(params: Iterable[nn.Parameter], o) -> torch.optim.Optimizer:
    params = list(params)
    if o.name == "adam":
        return torch.optim.Adam(params, lr=o.lr, betas=tuple(o.betas), eps=o.eps, weight_decay=o.weight_decay)
    if o.name == "rmsprop":
        return torch.optim.RMSprop(params, lr=o.lr, alpha=o.alpha, eps=o.eps, weight_decay=o.weight_decay)
    raise ValueError(f"unknown optimizer {o.name!r}")


def make_scheduler(opt: torch.optim.Optimizer, decay: str, steps: int):
    """Linear decay to zero over `steps` generator iterations, or a constant rate."""
    if decay == "linear":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda it: max(0.0, 1.0 - it / steps))
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda it: 1.0)


class EMA:
    """Exponential moving average of a generator's weights; buffers are copied as they are."""

    def __init__(self, net: nn.Module, decay: float, start: int):
        self.decay = decay
        self.start = start
        self.net = copy.deepcopy(net).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, net: nn.Module, iteration: int) -> None:
        src = list(net.parameters())
        dst = list(self.net.parameters())
        if iteration < self.start:
            torch._foreach_copy_(dst, src)
        else:
            torch._foreach_lerp_(dst, src, 1.0 - self.decay)
        for b_dst, b_src in zip(self.net.buffers(), net.buffers()):
            b_dst.copy_(b_src)


def grad_norm(params: List[nn.Parameter]) -> Tensor:
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def set_requires_grad(params: List[nn.Parameter], flag: bool) -> None:
    for p in params:
        p.requires_grad_(flag)
