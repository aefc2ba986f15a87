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
    """On CUDA, Adam runs fused and RMSprop (which has no fused kernel) as foreach: one kernel for
    all parameters instead of several per parameter, and fused Adam takes fp16 loss scaling
    without a host sync. On the CPU, PyTorch's defaults."""
    params = list(params)
    cuda = bool(params) and all(p.device.type == "cuda" for p in params)
    if o.name == "adam":
        return torch.optim.Adam(params, lr=o.lr, betas=tuple(o.betas), eps=o.eps, weight_decay=o.weight_decay,
                                fused=True if cuda else None)
    if o.name == "rmsprop":
        return torch.optim.RMSprop(params, lr=o.lr, alpha=o.alpha, eps=o.eps, weight_decay=o.weight_decay,
                                   foreach=True if cuda else None)
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


class Precision:
    """Mixed precision for CUDA: autocast to bf16 or fp16; fp16 scales each player's loss with
    its own GradScaler (their state goes into the checkpoint). With amp=off every call is a
    plain backward and step."""

    def __init__(self, amp: str, device: torch.device):
        self.enabled = amp != "off" and device.type == "cuda"
        self.dtype = torch.bfloat16 if amp == "bf16" else torch.float16
        self.device = device
        self.scaling = self.enabled and amp == "fp16"
        self.scalers: dict = {}

    def autocast(self):
        if not self.enabled:
            return _NULL
        return torch.autocast(self.device.type, dtype=self.dtype)

    def _scaler(self, player: str):
        if player not in self.scalers:
            self.scalers[player] = torch.amp.GradScaler("cuda")
        return self.scalers[player]

    def penalty_scale(self, player: str) -> Optional[Tensor]:
        """The player's current loss scale as a device tensor (fp16 only), for gradient penalties."""
        if not self.scaling:
            return None
        return self._scaler(player).scale(torch.ones((), device=self.device))

    def update(self, loss: Tensor, opt: torch.optim.Optimizer, params, out: dict, norm_key, player: str) -> None:
        """zero_grad, backward, optional gradient norm into out[norm_key], step."""
        opt.zero_grad(set_to_none=True)
        if not self.scaling:
            loss.backward()
            if norm_key:
                out[norm_key] = grad_norm(params)
            opt.step()
            return
        scaler = self._scaler(player)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        if norm_key:
            out[norm_key] = grad_norm(params)
        scaler.step(opt)
        scaler.update()

    def state_dict(self) -> dict:
        return {"scalers": {k: s.state_dict() for k, s in self.scalers.items()}} if self.scaling else {}

    def load_state_dict(self, state: dict) -> None:
        for player, sd in state.get("scalers", {}).items():
            self._scaler(player).load_state_dict(sd)


class _Null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


_NULL = _Null()


def grad_norm(params: List[nn.Parameter]) -> Tensor:
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def set_requires_grad(params: List[nn.Parameter], flag: bool) -> None:
    for p in params:
        p.requires_grad_(flag)
