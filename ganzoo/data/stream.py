"""The real-data stream: seeded, and resumable to the exact batch.

A finite dataset is visited in seeded random permutations (epochs); an
infinite distribution is sampled afresh. Either way the whole position is
a small state dict that goes into the checkpoint.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from .toy import build_toy


class Stream:
    def __init__(self, data, batch_size: int, seed: int, device: torch.device):
        self.data = data
        self.batch_size = batch_size
        self.device = device
        self.generator = torch.Generator(device=device).manual_seed(seed + 7919)
        self.items: Optional[Tensor] = None if data.finite is None else data.finite.to(device)
        self.perm: Optional[Tensor] = None
        self.pos = 0
        self.epoch = 0

    def __call__(self, n: Optional[int] = None) -> Tensor:
        n = self.batch_size if n is None else n
        if self.items is None:
            return self.data.sample(n, self.generator, self.device)
        return self.items[self._indices(n)]

    def _indices(self, n: int) -> Tensor:
        parts = []
        while n > 0:
            if self.perm is None or self.pos >= len(self.perm):
                self.perm = torch.randperm(len(self.items), generator=self.generator, device=self.device)
                self.pos = 0
                self.epoch += 1
            take = min(n, len(self.perm) - self.pos)
            parts.append(self.perm[self.pos:self.pos + take])
            self.pos += take
            n -= take
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def state_dict(self) -> dict:
        return {
            "generator": self.generator.get_state(),
            "perm": self.perm.cpu() if self.perm is not None else torch.empty(0, dtype=torch.long),
            "has_perm": self.perm is not None,
            "pos": self.pos,
            "epoch": self.epoch,
        }

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.perm = state["perm"].to(self.device) if state["has_perm"] else None
        self.pos = int(state["pos"])
        self.epoch = int(state["epoch"])


def build_data(cfg):
    """Dataset config -> dataset object (2-D toy sets now; images build on the same stream)."""
    return build_toy(cfg)
