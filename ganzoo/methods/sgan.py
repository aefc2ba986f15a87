"""SGAN (paper 001): N local GAN pairs and a global pair trained against them.

Each local pair (G_i, D_i) is an ordinary baseline GAN with its own noise,
trained only against its partner on its own real batch. The global pair never
changes a local: D_0 tells real data from samples of the local generators
(a uniform mixture), and G_0 minimises mean_i g(D_i(G_0(z))) with the local
discriminators read-only (the paper's D^msg; the paper draws one D_i at random
per update, the mean over i is the same objective with less variance).
Per iteration: every local pair one baseline step, then D_0, then G_0.
The model's output is G_0; `ganzoo eval` also scores every G_i.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Tuple

import torch
from torch import Tensor, nn

from .common import frozen
from .gan import GAN, DrawReal, Setup, Stats
from .players import frozen_buffers


class SGAN(GAN):
    """The global pair is this object's G and D (so its optimisers, EMA, noise and checkpoint
    state are the baseline's); the local pairs are baselines of their own."""

    def __init__(self, s: Setup, *, N: int, stream: int = 0):
        super().__init__(s, stream=stream)
        self.pairs = [GAN(s, stream=stream + 1 + i) for i in range(N)]
        self.picture_rows = 1 + len(self.pairs)

    def step(self, draw_real: DrawReal, log: bool = False) -> Dict[str, Tensor]:
        local: Dict[str, List[Tensor]] = {}
        for pair in self.pairs:
            for key, value in pair.step(draw_real, log).items():
                if not key.startswith("lr/"):  # the same schedule as the global pair's
                    local.setdefault(f"local/{key}", []).append(value)
        out = {key: torch.stack(values).mean() for key, values in local.items()}  # mean over the pairs
        out.update(super().step(draw_real, log))
        return out

    def local_mixture(self, n: int) -> Tensor:
        """n samples of the local generators, an equal share from each (shuffled, detached).
        The locals run as they train; their batchnorm statistics are left untouched."""
        share = -(-n // len(self.pairs))
        gen = self.noise.generator
        with torch.no_grad(), frozen_buffers([p.G for p in self.pairs]), self.amp.autocast():
            parts = torch.cat([p.G(self.noise(share)).float() for p in self.pairs])
        return parts[torch.randperm(len(parts), generator=gen, device=self.device)[:n]]

    def d_batch(self, draw_real: DrawReal) -> Tuple[Tensor, Tensor]:
        real = draw_real()
        return real, self.local_mixture(self.batch_size)

    def g_step(self, log: bool) -> Stats:
        """G_0 against the local discriminators, which stay as they are: parameters frozen, and
        buffers restored after the backward (which reads batchnorm's statistics)."""
        local_ds = [p.D for p in self.pairs]
        with frozen(q for D in local_ds for q in D.parameters()), frozen_buffers(local_ds):
            with self.amp.autocast():
                fake = self.G(self.noise(self.batch_size))
                loss = torch.stack([self.loss.gen(D(fake).float()).mean() for D in local_ds]).mean()
            out = {"loss/g": loss.detach()}
            out.update(self.update("g", loss, log))
        return out

    # ------------------------------------------------------------------ using the model
    def networks(self) -> List[nn.Module]:
        return super().networks() + [net for p in self.pairs for net in p.networks()]

    def double_backward(self) -> List[nn.Module]:
        return super().double_backward() + [net for p in self.pairs for net in p.double_backward()]

    @torch.no_grad()
    def sample_each(self, n: int, generator: torch.Generator) -> List[Tensor]:
        """Rows: the global generator, then every local one."""
        return [GAN.sample(method, n, generator)[0] for method in [self] + self.pairs]

    def scored_parts(self) -> Dict[str, Callable]:
        return {f"local{i + 1}": pair.sample for i, pair in enumerate(self.pairs)}

    def state_dict(self) -> dict:
        state = super().state_dict()
        state["pairs"] = [p.state_dict() for p in self.pairs]
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        for p, s in zip(self.pairs, state["pairs"]):
            p.load_state_dict(s)
