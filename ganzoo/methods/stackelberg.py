"""Stackelberg GAN (paper 002): I generators with separate parameters against one D.

D: mean r(D(x)) + (1/I) sum_i mean f(D(G_i(z_i))). G: the average over i of
mean g(D(G_i(z_i))) (the paper's (1/I) Phi, eq. 10; METHODS.md writes a sum,
which only rescales every G_i's gradient by I). Samples of the trained model
come from a generator drawn uniformly per sample.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .common import evaluating, frozen, make_optimizer
from .gan import GAN, DrawReal, Setup, Stats
from .players import make_players


def classifier_like(make_d, outputs: int) -> nn.Module:
    """D's architecture with its last linear layer widened to `outputs` logits (MGAN's
    "which generator" classifier; a separate net here, not a head sharing D's body)."""
    net = make_d()
    name, last = [(n, m) for n, m in net.named_modules() if isinstance(m, nn.Linear)][-1]
    parent = net.get_submodule(name.rpartition(".")[0])
    setattr(parent, name.rpartition(".")[2], nn.Linear(last.in_features, outputs))
    return net


class Stackelberg(GAN):
    def __init__(self, s: Setup, *, I: int, shared_noise: bool, classifier_weight: float, players: str,
                 stream: int = 0):
        super().__init__(s, make_g=lambda: make_players(s.make_g, I, players), stream=stream)
        self.I = self.num_generators = self.picture_rows = I
        self.shared_noise = shared_noise
        self.classifier_weight = classifier_weight
        self.C: Optional[nn.Module] = None
        if classifier_weight > 0:
            self.C = classifier_like(s.make_d, I).to(s.device)
            self.c_params = list(self.C.parameters())
            self.opt_c = make_optimizer(self.c_params, s.optim_d)
            self.labels = torch.arange(I, device=s.device).repeat_interleave(self.batch_size)

    def latent(self, n: int, generator: Optional[torch.Generator] = None) -> Tensor:
        """(I, n, z_dim): every generator's noise (one draw shared by all with shared_noise)."""
        if self.shared_noise:
            return self.noise(n, generator).unsqueeze(0).expand(self.I, -1, -1)
        return self.noise(self.I * n, generator).view(self.I, n, -1)

    def fakes(self) -> Tensor:
        """A batch from every generator: generator i's at rows i*B..(i+1)*B."""
        return self.G(self.latent(self.batch_size)).flatten(0, 1)

    def d_batch(self, draw_real: DrawReal) -> Tuple[Tensor, Tensor]:
        real = draw_real()
        with torch.no_grad():
            return real, self.fakes()

    def d_update(self, real: Tensor, fake: Tensor, log: bool) -> Stats:
        out = super().d_update(real, fake, log)
        if self.C is not None:
            loss_c = F.cross_entropy(self.C(fake).float(), self.labels)
            self.update("c", loss_c)
            out["loss/classifier"] = loss_c.detach()
        return out

    def penalty_term(self, D, real, l_real, fake) -> Tensor:
        if fake.shape[0] != real.shape[0]:
            # interpolate each real sample with a fake of generator (j mod I): all generators take part
            j = torch.arange(real.shape[0], device=fake.device)
            fake = fake.view(self.I, -1, *fake.shape[1:])[j % self.I, j]
        return super().penalty_term(D, real, l_real, fake)

    def g_loss(self, log: bool) -> Tuple[Tensor, Stats]:
        with self.amp.autocast():
            fake = self.fakes()
            loss = self.loss.gen(self.D(fake).float()).mean()
            out = {"loss/g": loss.detach()}
            if self.C is not None:
                with frozen(self.c_params):
                    loss = loss + self.classifier_weight * F.cross_entropy(self.C(fake).float(), self.labels)
        return loss, out

    # ------------------------------------------------------------------ using the model
    def networks(self) -> List[nn.Module]:
        return super().networks() + ([self.C] if self.C is not None else [])

    @torch.no_grad()
    def sample(self, n: int, generator: Optional[torch.Generator] = None, chunk: int = 4096) -> Tuple[Tensor, Tensor]:
        """n samples, each from a generator drawn uniformly, and that generator's index."""
        with evaluating(self.generators[0]) as G:
            return self._sample(G, n, generator, chunk)

    def _sample(self, G, n: int, generator: Optional[torch.Generator], chunk: int) -> Tuple[Tensor, Tensor]:
        if self.I == 1:  # no draw: one generator samples exactly as the baseline does
            index = torch.zeros(n, dtype=torch.long, device=self.device)
        else:
            index = torch.randint(self.I, (n,), generator=generator or self.noise.generator, device=self.device)
        z = self.noise(n, generator)
        out: Optional[Tensor] = None
        for i in range(self.I):
            rows = (index == i).nonzero().squeeze(1)
            if len(rows) == 0:
                continue
            part = torch.cat([G.forward_one(i, z[rows[s:s + chunk]]).float() for s in range(0, len(rows), chunk)])
            if out is None:
                out = part.new_empty((n,) + part.shape[1:])
            out[rows] = part
        return out, index.cpu()

    @torch.no_grad()
    def sample_each(self, n: int, generator: torch.Generator) -> List[Tensor]:
        """The same n latents through every generator: one row per generator."""
        with evaluating(self.generators[0]) as G:
            z = self.noise(n, generator)
            return [G.forward_one(i, z).float() for i in range(self.I)]

    def state_dict(self) -> dict:
        state = super().state_dict()
        if self.C is not None:
            state["C"], state["opt_c"] = self.C.state_dict(), self.opt_c.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        if self.C is not None:
            self.C.load_state_dict(state["C"])
            self.opt_c.load_state_dict(state["opt_c"])
