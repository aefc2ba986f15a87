"""Stackelberg GAN: I generators with separate parameters against one D.

D: mean r(D(x)) + (1/I) sum_i mean f(D(G_i(z_i))). G: the average over i of
mean g(D(G_i(z_i))) (the paper's (1/I) Phi, eq. 10; a sum instead,
which only rescales every G_i's gradient by I). Samples of the trained model
come from a generator drawn uniformly per sample.

The released MNIST / Fashion-MNIST scripts add a "which generator" loss,
classifier_weight * CE(head(body(G_i(z))), i), to BOTH G's and D's losses through
a head on D's body (`classifier=shared`, MGAN-style); `classifier=separate`
trains a net of its own instead, which never shapes D. With a batchnorm D,
D scores each generator's batch on its own by default, as the authors call D
once per generator (`score_each`).

Under several ranks every rank holds its share of each generator's batch (the
noise is sliced generator by generator), and the penalty pairs real row j with
generator j mod I by j's global number, as one process does.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..nets.common import batch_dependent
from .common import evaluating, frozen
from .gan import GAN, DBatch, DrawReal, Player, Setup, Stats
from .players import make_players


def with_head(net: nn.Module, outputs: int) -> nn.Module:
    """net with a linear head `which_generator` on the features its last linear layer reads (D's
    shared body, `net.features`)."""
    last = [m for m in net.modules() if isinstance(m, nn.Linear)][-1]
    net.which_generator = nn.Linear(last.in_features, outputs)
    return net


def classifier_like(make_d, outputs: int) -> nn.Module:
    """D's architecture with its last linear layer widened to `outputs` logits (MGAN's
    "which generator" classifier; a separate net here, not a head sharing D's body)."""
    net = make_d()
    name, last = [(n, m) for n, m in net.named_modules() if isinstance(m, nn.Linear)][-1]
    parent = net.get_submodule(name.rpartition(".")[0])
    setattr(parent, name.rpartition(".")[2], nn.Linear(last.in_features, outputs))
    return net


class Stackelberg(GAN):
    def __init__(self, s: Setup, *, I: int, shared_noise: bool, classifier: str, classifier_weight: float,
                 score_each: Optional[bool], players: str, stream: int = 0):
        self.head = classifier == "shared" and classifier_weight > 0
        make_d = (lambda: with_head(s.make_d(), I)) if self.head else None
        super().__init__(s, make_g=lambda: make_players(s.make_g, I, players), make_d=make_d, stream=stream)
        self.I = self.num_generators = self.picture_rows = I
        self.shared_noise = shared_noise
        self.classifier_weight = classifier_weight
        self.score_each = batch_dependent(self.D) if score_each is None else score_each
        self.C: Optional[nn.Module] = None
        if classifier == "separate" and classifier_weight > 0:
            self.C = classifier_like(s.make_d, I).to(s.device)
            self.c_params = list(self.C.parameters())
            self.opt_c = self.optimizer(self.c_params, s.optim_d)
            self.players["c"] = Player(self.c_params, self.opt_c)
        # the "which generator" targets of the fakes' rows
        self.generator_index = torch.arange(I, device=s.device).repeat_interleave(self.local_batch)

    def latents(self, n: int) -> Tuple[Tensor, Optional[Tensor]]:
        """(I, n / world, z_dim): every generator's training noise, this rank's share of a global batch
        of n each (one draw shared by all with shared_noise); in a conditional run (I, n / world) fake
        labels, drawn after the noise by the same rule."""
        if self.shared_noise:
            z, y = self.latent(n)
            return z.unsqueeze(0).expand(self.I, -1, -1), None if y is None else y.unsqueeze(0).expand(self.I, -1)
        # each generator's batch is a block of the global draw; a rank keeps its share of every block
        rows = self.shard.rows(n)
        z = self.shard.local(self.noise.full(self.I * n), groups=self.I).view(self.I, rows, -1)
        if not self.conditional:
            return z, None
        return z, self.shard.local(self.noise.labels_full(self.I * n), groups=self.I).view(self.I, rows)

    def fakes(self) -> Tuple[Tensor, Optional[Tensor]]:
        """A batch from every generator: generator i's at rows i*B..(i+1)*B (B: this rank's rows), and
        their labels."""
        z, y = self.latents(self.batch_size)
        return self.generate(z, y).flatten(0, 1), None if y is None else y.flatten()

    def d_batch(self, draw_real: DrawReal, log: bool) -> DBatch:
        real, real_y = self.draw(draw_real)
        with torch.no_grad():
            fake, fake_y = self.fakes()
        return DBatch(real, fake, real_y=real_y, fake_y=fake_y)

    def score_fake(self, fake: Tensor, y: Optional[Tensor] = None) -> Tuple[Tensor, Optional[Tensor]]:
        """D's logits on fakes (generator i's at rows i*B..(i+1)*B), one call per generator's batch
        when score_each, and with the head the features D's body gave every row."""
        if not self.score_each or len(fake) != self.I * self.local_batch:
            return self.critic(fake, features=True, y=y) if self.head else (self.critic(fake, y=y), None)
        ys = [None] * self.I if y is None else y.chunk(self.I)
        if not self.head:
            return torch.cat([self.critic(part, y=yi) for part, yi in zip(fake.chunk(self.I), ys)]), None
        logits, features = zip(*(self.critic(part, features=True, y=yi) for part, yi in zip(fake.chunk(self.I), ys)))
        return torch.cat(logits), torch.cat(features)

    def which_generator_loss(self, features: Tensor) -> Tensor:
        """Cross-entropy of the head on D's body features of the fakes."""
        return F.cross_entropy(self.D.which_generator(features).float(), self.generator_index)

    def d_loss(self, batch: DBatch, log: bool) -> Tuple[Tensor, Stats]:
        terms = self.d_terms(batch, log)
        loss, out = terms.total(), terms.stats
        if self.head:
            ce = self.which_generator_loss(terms.fake_features)
            out["loss/classifier"] = ce.detach()
            loss = loss + self.classifier_weight * ce
        return loss, out

    def d_update(self, batch: DBatch, log: bool) -> Stats:
        out = super().d_update(batch, log)
        if self.C is not None:
            loss_c = F.cross_entropy(self.C(batch.fake).float(), self.generator_index)
            self.update("c", loss_c)
            out["loss/classifier"] = loss_c.detach()
        return out

    def penalty_term(self, D, real, l_real, fake) -> Tensor:
        if fake.shape[0] != real.shape[0]:
            # interpolate each real sample with a fake of generator (j mod I): all generators take part;
            # j is the row's global number, so every rank pairs its rows as one process would
            j = torch.arange(real.shape[0], device=fake.device)
            which = self.shard.global_index(real.shape[0], fake.device) % self.I
            fake = fake.view(self.I, -1, *fake.shape[1:])[which, j]
        return super().penalty_term(D, real, l_real, fake)

    def g_loss(self, log: bool) -> Tuple[Tensor, Stats]:
        with self.amp.autocast():
            fake, y = self.fakes()
            logits, features = self.score_fake(fake, y)
            loss = self.loss.gen(logits.float()).mean()
            out = {"loss/g": loss.detach()}
            if self.head:  # D and its head are frozen for G's step: this trains the generators only
                loss = loss + self.classifier_weight * self.which_generator_loss(features)
            if self.C is not None:
                with frozen(self.c_params):
                    loss = loss + self.classifier_weight * F.cross_entropy(self.C(fake).float(), self.generator_index)
        return loss, out

    # ------------------------------------------------------------------ using the model
    def networks(self) -> List[nn.Module]:
        return super().networks() + ([self.C] if self.C is not None else [])

    @torch.no_grad()
    def sample(self, n: int, generator: Optional[torch.Generator] = None, chunk: int = 4096,
               y: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """n samples, each from a generator drawn uniformly, and that generator's index."""
        with evaluating(self.generators[0]) as G:
            return self._sample(G, n, generator, chunk, y)

    def _sample(self, G, n: int, generator: Optional[torch.Generator], chunk: int,
                y: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        if self.I == 1:  # no draw: one generator samples exactly as the baseline does
            index = torch.zeros(n, dtype=torch.long, device=self.device)
        else:
            index = torch.randint(self.I, (n,), generator=generator or self.noise.generator, device=self.device)
        z = self.noise.full(n, generator)
        y = self.sample_labels(n, generator, y)
        out: Optional[Tensor] = None
        for i in range(self.I):
            rows = (index == i).nonzero().squeeze(1)
            if len(rows) == 0:
                continue
            part = torch.cat([G.forward_one(i, z[rows[s:s + chunk]], *(() if y is None else (y[rows[s:s + chunk]],)))
                              .float() for s in range(0, len(rows), chunk)])
            if out is None:
                out = part.new_empty((n,) + part.shape[1:])
            out[rows] = part
        return out, index.cpu()

    @torch.no_grad()
    def sample_each(self, n: int, generator: torch.Generator, y: Optional[Tensor] = None) -> List[Tensor]:
        """The same n latents (and classes) through every generator: one row per generator."""
        with evaluating(self.generators[0]) as G:
            z = self.noise.full(n, generator)
            y = self.sample_labels(n, generator, y)
            return [G.forward_one(i, z, *(() if y is None else (y,))).float() for i in range(self.I)]

    def state_dict(self) -> dict:
        state = super().state_dict()
        if self.C is not None:
            state["C"], state["opt_c"] = self.C.state_dict(), self.opt_c.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        if self.C is not None:
            self.C.load_state_dict(state["C"])
            if self.opt_c is not None:
                self.opt_c.load_state_dict(state["opt_c"])
