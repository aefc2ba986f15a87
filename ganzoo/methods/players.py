"""Several independent nets of one architecture, run as one module.

Multi-player methods (stackelberg's I generators, microbatch's K
discriminators) hold their players either as a plain list (`NetList`, a
Python loop) or as a batched stack (`MLPStack`: member i's layers are slices
of stacked weight tensors and a layer is one batched matmul). Both take a
stacked input (n, B, ...) and return (n, B, ...). On a 2-core CPU a stack of
8 small MLPs runs several times faster than the loop (scripts/bench.py
--players measures it); conv nets stay a list.

Every member is first built by the arch factory, so a stack starts from
exactly the weights a list would hold.
"""
from __future__ import annotations

import contextlib
from typing import Callable, List

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..nets.mlp import MLP, Discriminator


class NetList(nn.Module):
    def __init__(self, members: List[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def __len__(self) -> int:
        return len(self.members)

    def forward(self, x: Tensor, *labels: Tensor) -> Tensor:
        """labels: (n, B) class labels, member i's in row i, for conditional members."""
        return torch.stack([m(x[i], *(y[i] for y in labels)) for i, m in enumerate(self.members)])

    def forward_one(self, i: int, x: Tensor, *labels: Tensor) -> Tensor:
        return self.members[i](x, *labels)


class _StackedLinear(nn.Module):
    def __init__(self, layers: List[nn.Linear]):
        super().__init__()
        # (n, in, out) so that x (n, B, in) @ weight is one baddbmm
        self.weight = nn.Parameter(torch.stack([l.weight.detach().t() for l in layers]).contiguous())
        self.bias = nn.Parameter(torch.stack([l.bias.detach() for l in layers]).unsqueeze(1).contiguous())

    def forward(self, x: Tensor) -> Tensor:
        return torch.baddbmm(self.bias, x, self.weight)

    def forward_one(self, i: int, x: Tensor) -> Tensor:
        return torch.addmm(self.bias[i], x, self.weight[i])


class _StackedBatchNorm(nn.Module):
    """Per-member batchnorm: member i's h features are channels i*h..(i+1)*h of one BatchNorm1d."""

    def __init__(self, layers: List[nn.BatchNorm1d]):
        super().__init__()
        self.h = layers[0].num_features
        self.bn = nn.BatchNorm1d(self.h * len(layers), eps=layers[0].eps, momentum=layers[0].momentum)
        with torch.no_grad():
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(self.bn, name).copy_(torch.cat([getattr(l, name) for l in layers]))

    def forward(self, x: Tensor) -> Tensor:
        n, b, h = x.shape
        y = self.bn(x.transpose(0, 1).reshape(b, n * h))
        return y.reshape(b, n, h).transpose(0, 1)

    def forward_one(self, i: int, x: Tensor) -> Tensor:
        s = slice(i * self.h, (i + 1) * self.h)
        bn = self.bn
        return F.batch_norm(x, bn.running_mean[s], bn.running_var[s], bn.weight[s], bn.bias[s],
                            False, 0.0, bn.eps)


class MLPStack(nn.Module):
    def __init__(self, members: List[MLP]):
        super().__init__()
        self.n = len(members)
        self.squeeze = isinstance(members[0], Discriminator)
        layers = []
        for parts in zip(*(m.net for m in members)):
            first = parts[0]
            if isinstance(first, nn.Linear):
                layers.append(_StackedLinear(list(parts)))
            elif isinstance(first, nn.BatchNorm1d):
                layers.append(_StackedBatchNorm(list(parts)))
            else:  # an elementwise activation: one copy serves every member
                layers.append(first)
        self.layers = nn.ModuleList(layers)

    def __len__(self) -> int:
        return self.n

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x)
        return x.squeeze(-1) if self.squeeze else x

    def forward_one(self, i: int, x: Tensor) -> Tensor:
        """Member i alone (sampling; batchnorm uses its running statistics here)."""
        for layer in self.layers:
            x = layer.forward_one(i, x) if hasattr(layer, "forward_one") else layer(x)
        return x.squeeze(-1) if self.squeeze else x


def stackable(net: nn.Module) -> bool:
    """A plain MLP (no spectral norm) can join a batched stack."""
    if not isinstance(net, MLP):
        return False
    return not any(hasattr(m, "weight_orig") or hasattr(m, "parametrizations") for m in net.modules())


def make_players(factory: Callable[[], nn.Module], n: int, mode: str) -> nn.Module:
    """n members from one factory, as a list or a stack. mode: auto | list | stack."""
    members = [factory() for _ in range(n)]
    can_stack = stackable(members[0])
    if mode == "stack" and not can_stack:
        raise ValueError("players=stack needs a plain MLP arch (no spectral norm, unconditional); use players=list or auto")
    if mode == "stack" or (mode == "auto" and can_stack and n > 1):
        return MLPStack(members)
    return NetList(members)


@contextlib.contextmanager
def frozen_buffers(modules: List[nn.Module]):
    """Run nets in training mode but leave their buffers (batchnorm statistics, spectral-norm
    vectors) as they were: for players another player only reads."""
    saved = [(b, b.detach().clone()) for m in modules for b in m.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for b, value in saved:
                b.copy_(value)
