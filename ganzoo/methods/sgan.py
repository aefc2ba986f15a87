"""SGAN: N local GAN pairs and a global pair trained against them.

Each local pair (G_i, D_i) is an ordinary baseline GAN with its own noise,
trained only against its partner on its own real batch; the global pair never
changes a local. The global pair meets the locals through "message" networks
(`opponent`):

- `message` (default, our reading of Algorithm 1 and the supplement): every
  `refresh` global updates, D^msg becomes a copy of a local D_j and G^msg a copy
  of a local G_l (weights and optimiser state), j and l drawn uniformly. Each
  global update, D^msg takes `msg_steps` steps against G_0 and G^msg as many
  against D_0 (the copies are G_0's and D_0's own opponents, so G_0 is punished
  for collapsing), then D_0 takes its step on reals vs G^msg's samples and G_0
  its step against D^msg. `msg_steps=0` keeps the copies frozen.
- `live` (v1's reading, kept so older runs stay comparable): D_0 tells reals
  from an equal mixture of every local generator's samples, G_0 minimises
  mean_i g(D_i(G_0(z))) against the live local discriminators, read-only.

`schedule`: `round` updates the global pair once after every local pair made
its step; `each` (the supplement's Fig. 4) updates it after each local update,
N global updates an iteration. The model's output is G_0; `ganzoo eval` also
scores every G_i. Under several ranks every pair is data-parallel; `live`'s
mixture is gathered from all ranks and shuffled as one process would.
"""
from __future__ import annotations

import copy
from typing import Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

from .common import frozen
from .gan import GAN, DBatch, DrawReal, Setup, Stats
from .players import frozen_buffers


class SGAN(GAN):
    """The global pair is this object's G and D (so its optimisers, EMA, noise and checkpoint
    state are the baseline's); the local pairs are baselines of their own, and so is the pair
    of message networks (G^msg, D^msg)."""

    def __init__(self, s: Setup, *, N: int, opponent: str, schedule: str, refresh: int, msg_steps: int,
                 stream: int = 0):
        super().__init__(s, stream=stream)
        self.pairs = [GAN(s, stream=stream + 1 + i) for i in range(N)]
        self.picture_rows = 1 + len(self.pairs)
        self.opponent, self.schedule, self.refresh, self.msg_steps = opponent, schedule, refresh, msg_steps
        self.message = None
        if opponent == "message":
            self.message = GAN(s, stream=stream + 1 + N)
            self.message.ema = None  # a working copy, never sampled
            self.draws = torch.Generator().manual_seed(s.seed * 1_000_003 + 104_729 + stream)
            self.global_updates = 0
            self.drawn = (-1, -1)  # (l, j): the locals G^msg and D^msg were last copied from

    def step(self, draw_real: DrawReal, log: bool = False) -> Stats:
        local: Dict[str, List[Tensor]] = {}
        out: Stats = {}
        for pair in self.pairs:
            for key, value in pair.step(draw_real, log).items():
                if not key.startswith("lr/"):  # the same schedule as the global pair's
                    local.setdefault(f"local/{key}", []).append(value)
            if self.schedule == "each":
                out.update(self.global_update(draw_real, log))
        if self.schedule == "round":
            out.update(self.global_update(draw_real, log))
        out.update({key: torch.stack(values).mean() for key, values in local.items()})  # mean over the pairs
        self.end_iteration()
        if self.message is not None:
            self.message.end_iteration()  # its lr follows the same schedule
        if log:
            out["lr/g"] = torch.tensor(self.opt_g.param_groups[0]["lr"])
            out["lr/d"] = torch.tensor(self.opt_d.param_groups[0]["lr"])
        return out

    def global_update(self, draw_real: DrawReal, log: bool) -> Stats:
        """n_dis D_0 steps and n_gen G_0 steps (after the message networks' steps)."""
        out: Stats = {}
        if self.message is not None:
            out.update(self.message_steps(draw_real, log))
        out.update(self.phases(draw_real, log))
        return out

    # ------------------------------------------------------------------ message networks
    def refresh_messages(self) -> None:
        """G^msg and D^msg become copies of locals drawn uniformly (weights, buffers, optimiser state)."""
        l, j = torch.randint(len(self.pairs), (2,), generator=self.draws).tolist()
        m = self.message
        with torch.no_grad():
            m.G.load_state_dict(self.pairs[l].G.state_dict())
            m.D.load_state_dict(self.pairs[j].D.state_dict())
        # deep copies: load_state_dict keeps the very tensors it is given (same device and dtype), and
        # the message's steps would then move the local's optimiser state in place
        m.opt_g.load_state_dict(copy.deepcopy(self.pairs[l].opt_g.state_dict()))
        m.opt_d.load_state_dict(copy.deepcopy(self.pairs[j].opt_d.state_dict()))
        self.drawn = (l, j)

    def message_steps(self, draw_real: DrawReal, log: bool) -> Stats:
        """Refresh when due; then D^msg's steps against G_0 and G^msg's against D_0."""
        if self.global_updates % self.refresh == 0:
            self.refresh_messages()
        self.global_updates += 1
        m = self.message
        out: Stats = {}
        for i in range(self.msg_steps):
            for _ in range(self.n_dis):
                real, real_y = self.draw(draw_real)
                z, y = self.latent(self.batch_size)
                with torch.no_grad():
                    fake = self.generate(z, y)
                stats = m.d_update(DBatch(real, fake, real_y=real_y, fake_y=y), log and i == self.msg_steps - 1)
            with frozen(self.d_params):
                loss = self.generator_loss(m, self.D)
                stats["loss/g"] = loss.detach()
                stats.update(m.update("g", loss, log and i == self.msg_steps - 1))
            out.update({f"message/{k}": v for k, v in stats.items()})
        if log:
            out["message/g_from"], out["message/d_from"] = (torch.tensor(float(i)) for i in self.drawn)
        return out

    def generator_loss(self, pair: GAN, D: nn.Module) -> Tensor:
        """pair's G (its own noise and labels) against D."""
        z, y = pair.latent(self.batch_size)
        with self.amp.autocast():
            return self.loss.gen(self.critic(pair.generate(z, y), D, y=y).float()).mean()

    # ------------------------------------------------------------------ the global pair's batches and loss
    def local_mixture(self, n: int) -> Tuple[Tensor, Optional[Tensor]]:
        """n samples of the local generators, an equal share from each (shuffled, detached), and their
        labels. The locals run as they train; their batchnorm statistics are left untouched."""
        share = -(-n // len(self.pairs))
        gen = self.noise.generator
        with torch.no_grad(), frozen_buffers([p.G for p in self.pairs]), self.amp.autocast():
            made = []
            for p in self.pairs:
                z, y = self.latent(share)
                made.append((self.generate(z, y, p.G).float(), y))
        parts = torch.cat([x for x, _ in made])
        labels = None if not self.conditional else torch.cat([y for _, y in made])
        if self.shard.world > 1:  # every rank's share of every pair's block, back in one process's order
            parts = self._in_process_order(parts)
            labels = None if labels is None else self._in_process_order(labels)
        pick = torch.randperm(len(parts), generator=gen, device=self.device)[:n]
        return self.shard.local(parts[pick]), None if labels is None else self.shard.local(labels[pick])

    def _in_process_order(self, rows: Tensor) -> Tensor:
        every = self.shard.gather(rows)
        return every.view(self.shard.world, len(self.pairs), -1, *rows.shape[1:]).transpose(0, 1) \
            .reshape(-1, *rows.shape[1:])

    def d_batch(self, draw_real: DrawReal, log: bool) -> DBatch:
        real, real_y = self.draw(draw_real)
        if self.message is None:
            fake, fake_y = self.local_mixture(self.batch_size)
            return DBatch(real, fake, real_y=real_y, fake_y=fake_y)
        m = self.message
        z, y = m.latent(self.batch_size)
        with torch.no_grad(), self.amp.autocast():
            return DBatch(real, m.generate(z, y).float(), real_y=real_y, fake_y=y)

    def g_step(self, log: bool) -> Stats:
        """G_0 against D^msg (frozen for the step), or against the live local discriminators, which
        stay as they are: parameters frozen, and buffers restored after the backward (which reads
        batchnorm's statistics)."""
        opponents = [self.message.D] if self.message is not None else [p.D for p in self.pairs]
        with frozen(q for D in opponents for q in D.parameters()), frozen_buffers(opponents):
            z, y = self.latent(self.batch_size)
            with self.amp.autocast():
                fake = self.generate(z, y)
                loss = torch.stack([self.loss.gen(self.critic(fake, D, y=y).float()).mean() for D in opponents]).mean()
            out = {"loss/g": loss.detach()}
            out.update(self.update("g", loss, log))
        return out

    # ------------------------------------------------------------------ using the model
    def _helpers(self) -> List[GAN]:
        return self.pairs + ([self.message] if self.message is not None else [])

    def networks(self) -> List[nn.Module]:
        return super().networks() + [net for p in self._helpers() for net in p.networks()]

    def double_backward(self) -> List[nn.Module]:
        return super().double_backward() + [net for p in self._helpers() for net in p.double_backward()]

    @torch.no_grad()
    def sample_each(self, n: int, generator: torch.Generator, y: Optional[Tensor] = None) -> List[Tensor]:
        """Rows: the global generator, then every local one."""
        return [GAN.sample(method, n, generator, y=y)[0] for method in [self] + self.pairs]

    def scored_parts(self) -> Dict[str, Callable]:
        return {f"local{i + 1}": pair.sample for i, pair in enumerate(self.pairs)}

    def state_dict(self) -> dict:
        state = super().state_dict()
        state["pairs"] = [p.state_dict() for p in self.pairs]
        if self.message is not None:
            state["message"] = {"nets": self.message.state_dict(), "draws": self.draws.get_state(),
                                "global_updates": self.global_updates, "drawn": list(self.drawn)}
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        for p, s in zip(self.pairs, state["pairs"]):
            p.load_state_dict(s)
        if self.message is not None:
            msg = state["message"]
            self.message.load_state_dict(msg["nets"])
            self.draws.set_state(msg["draws"])
            self.global_updates = int(msg["global_updates"])
            self.drawn = tuple(msg["drawn"])
