"""Pieces every method uses: noise, optimisers, lr schedules, EMA, gradient norms."""
from __future__ import annotations

import contextlib
import copy
from typing import Iterable, List, Optional

import torch
from torch import Tensor, nn

from ..distributed import Shard


class Noise:
    """Latent sampler with its own generator, so its position is part of the checkpoint.

    Training draws are global: `noise(n)` draws n rows and returns this rank's share of them
    (all of them in one process), so the generator advances alike at every world size. A draw
    with a `generator` of its own (sampling, evaluation) returns every row."""

    def __init__(self, z_dim: int, dist: str, device: torch.device, seed: int, shard: Shard = Shard(),
                 num_classes: int = 0, class_probs: Optional[Tensor] = None):
        self.z_dim = z_dim
        self.dist = dist
        self.device = device
        self.shard = shard
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self.num_classes = num_classes
        self.class_probs = None if class_probs is None else class_probs.to(device)

    def full(self, n: int, generator: Optional[torch.Generator] = None) -> Tensor:
        gen = self.generator if generator is None else generator
        if self.dist == "uniform":
            return torch.rand(n, self.z_dim, generator=gen, device=self.device) * 2 - 1
        return torch.randn(n, self.z_dim, generator=gen, device=self.device)

    def __call__(self, n: int, generator: Optional[torch.Generator] = None) -> Tensor:
        if generator is not None:
            return self.full(n, generator)
        return self.shard.local(self.full(n))

    def labels_full(self, n: int, generator: Optional[torch.Generator] = None) -> Tensor:
        """n fake class labels from the same stream as z: uniform, or the data's class frequencies. One
        class draws nothing, so a one-class run moves the stream exactly as an unconditional one."""
        gen = self.generator if generator is None else generator
        if self.num_classes <= 1:
            return torch.zeros(n, dtype=torch.long, device=self.device)
        if self.class_probs is not None:
            return torch.multinomial(self.class_probs, n, replacement=True, generator=gen)
        return torch.randint(self.num_classes, (n,), generator=gen, device=self.device)

    def labels(self, n: int) -> Tensor:
        """This rank's share of a global draw of n fake labels (`__call__`'s rule)."""
        return self.shard.local(self.labels_full(n))

    def blocks(self, *sizes: int) -> Tensor:
        """One draw of sum(sizes) rows: this rank's share of each consecutive block, concatenated."""
        return self._local_blocks(self.full(sum(sizes)), sizes)

    def label_blocks(self, *sizes: int) -> Tensor:
        """`blocks`' rule for fake labels."""
        return self._local_blocks(self.labels_full(sum(sizes)), sizes)

    def _local_blocks(self, rows: Tensor, sizes) -> Tensor:
        if self.shard.world == 1:
            return rows
        return torch.cat([self.shard.local(part) for part in rows.split(list(sizes))])


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
                                   momentum=o.momentum, foreach=True if cuda else None)
    if o.name == "sgd":
        return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay,
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
            return contextlib.nullcontext()
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

    def backward(self, loss: Tensor, player: str) -> None:
        (self._scaler(player).scale(loss) if self.scaling else loss).backward()

    def unscale(self, opt: torch.optim.Optimizer, player: str) -> None:
        """Gradients back to their true size (fp16), before anything reads them."""
        if self.scaling:
            self._scaler(player).unscale_(opt)

    def step(self, opt: torch.optim.Optimizer, player: str) -> None:
        """The optimiser step; under fp16 skipped when a gradient is not finite."""
        if not self.scaling:
            opt.step()
            return
        scaler = self._scaler(player)
        scaler.step(opt)
        scaler.update()

    def state_dict(self) -> dict:
        return {"scalers": {k: s.state_dict() for k, s in self.scalers.items()}} if self.scaling else {}

    def load_state_dict(self, state: dict) -> None:
        for player, sd in state.get("scalers", {}).items():
            self._scaler(player).load_state_dict(sd)


def grad_norm(params: List[nn.Parameter]) -> Tensor:
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


@contextlib.contextmanager
def frozen(params: Iterable[nn.Parameter]):
    """Parameters that another player's backward must not fill (requires_grad off), restored
    however the block ends."""
    params = [p for p in params if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


@contextlib.contextmanager
def evaluating(net: nn.Module):
    """net in eval mode for the block, its previous mode restored however the block ends."""
    was_training = net.training
    net.eval()
    try:
        yield net
    finally:
        net.train(was_training)
