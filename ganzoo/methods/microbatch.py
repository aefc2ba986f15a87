"""microbatchGAN: one G, K discriminators, each fed its own microbatch.

The batch of B reals and B fakes is cut into K contiguous microbatches, of
B/K when K divides B, else of near-equal sizes (the first B mod K hold one
sample more, numpy.array_split's rule), so any K from 1 to B runs with any
batch. D_k tells its real microbatch x_k from its fake one y_k and, weighted
by the diversity parameter alpha, counts the other microbatches' fakes y_-k
as real. The paper's main text is not at hand and no code was released, so
two readings of its objective are offered (`reading`):

- additive (the default): D_k minimises
  mean r(D_k(x_k)) + mean f(D_k(y_k)) + alpha * mean r(D_k(y_-k)); G minimises
  sum_k [mean g(D_k(y_k)) - alpha * mean r(D_k(y_-k))]. G's loss falls as
  alpha grows whatever the data, so a learned alpha only ever rises.
- mix (the abstract's "gradually change each discriminator's task"): D_k's
  positives are a (1 - alpha) / alpha mix of its reals and the other
  microbatches' fakes: (1 - alpha) mean r(D_k(x_k)) + alpha mean r(D_k(y_-k))
  + mean f(D_k(y_k)); G minimises the negative of D's alpha terms with the
  non-saturating form of its own: sum_k [mean g(D_k(y_k))
  - alpha (mean r(D_k(y_-k)) - mean r(D_k(x_k)))]. G's gradient is the
  additive reading's; alpha's is r(x_k) - r(y_-k), which changes sign with
  what D_k makes of the others' fakes against the reals.

`g_reuse` lets G's step score the fakes of D's last step (the same z) instead
of fresh ones. alpha is a number (static) or act(beta) with beta learned by
G's optimiser. K = 1 is the baseline under every reading.

With a batchnorm D, each D_k always scores the whole fake batch at once (the
own microbatch is a slice of it), whatever alpha is: D_k's normalisation of its
own fakes then does not change when alpha goes from 0 to a positive or learned
value, so static-0 and self-learned runs differ only by the y_-k terms. Without
batchnorm a row's logit does not depend on its batch, and D_k scores only its own
fakes when the y_-k terms do not count.

Under several ranks every rank holds its equal share of each microbatch (the
batch is sliced block by block, distributed.Shard.groups), so the means above
are over its local rows and their gradients average to one process's; K times
the world size must divide the batch.

One optimiser holds every D_k: Adam and RMSprop keep per-element state, so
that is exactly K separate optimisers. The step selects microbatches with
slices and precomputed index tensors only (no boolean masks), so a CUDA step
never waits for the host.
"""
from __future__ import annotations

import math
from functools import partial
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..nets.common import batch_dependent
from .common import evaluating
from .gan import GAN, DBatch, Setup, Stats
from .players import make_players

ACTS = {"sigmoid": torch.sigmoid, "softplus": F.softplus, "tanh": torch.tanh, "identity": lambda b: b}
BETA0 = -1.8  # the paper's initial beta for the sigmoid (alpha0 = sigmoid(-1.8) = 0.1419)
INVERSE = {"sigmoid": lambda a: math.log(a / (1 - a)), "softplus": lambda a: math.log(math.expm1(a)),
           "tanh": math.atanh, "identity": lambda a: a}


def microbatch_sizes(batch: int, k: int) -> List[int]:
    """K contiguous parts of near-equal size; the first batch % k hold one more."""
    q, r = divmod(batch, k)
    return [q + (i < r) for i in range(k)]


def _same(t: Tensor) -> Tensor:
    return t


class Microbatches:
    """Per-microbatch means of per-row values, for B rows cut into K parts."""

    def __init__(self, batch: int, k: int, device: torch.device):
        self.K = k
        self.sizes = microbatch_sizes(batch, k)
        ends = torch.tensor(self.sizes).cumsum(0).tolist()
        self.bounds = [(e - n, e) for e, n in zip(ends, self.sizes)]
        self.equal = batch % k == 0
        part = torch.repeat_interleave(torch.arange(k), torch.tensor(self.sizes))
        own = part.unsqueeze(0) == torch.arange(k).unsqueeze(1)  # (K, B): row k marks D_k's own samples
        cols = torch.arange(batch).expand(k, batch)
        # every row of (K, B) scores: D_k's own columns, then the others', in order (gather, not masks)
        self.own_idx = cols[own].view(k, -1).to(device) if self.equal else None
        self.other_idx = cols[~own].view(k, -1).to(device) if self.equal and k > 1 else None
        # unequal parts: weights that average each row of (K, B) over D_k's own / the other columns
        sizes = torch.tensor(self.sizes, dtype=torch.float32).unsqueeze(1)
        self.w_own = None if self.equal else (own / sizes).to(device)
        self.w_other = None if self.equal else (~own / (batch - sizes).clamp_min(1)).to(device)

    def mean(self, v: Tensor) -> Tensor:
        """(B,) values of rows each scored by its own D_k -> (K,) means per microbatch."""
        if self.equal:
            return v.view(self.K, -1).mean(1)
        return torch.stack([v[a:b].mean() for a, b in self.bounds])

    def own_mean(self, v: Tensor) -> Tensor:
        """(K, B) values of every D_k on every row -> (K,) means over D_k's own rows."""
        if self.equal:
            return v.gather(1, self.own_idx).mean(1)
        return (v * self.w_own).sum(1)

    def other_mean(self, v: Tensor) -> Tensor:
        """(K, B) -> (K,) means over the other microbatches' rows."""
        if self.equal:
            return v.gather(1, self.other_idx).mean(1)
        return (v * self.w_other).sum(1)


class Microbatch(GAN):
    def __init__(self, s: Setup, *, K: int, alpha: Optional[float], alpha_act: Optional[str],
                 alpha_init: Optional[float], players: str, reading: str = "additive", g_reuse: bool = False,
                 stream: int = 0):
        self.K = K
        self.mix = reading == "mix"
        self.g_reuse = g_reuse
        self.last_z: Optional[Tensor] = None  # g_reuse: the noise of this iteration's last D step
        self.last_y: Optional[Tensor] = None  # and its fake labels (a conditional run)
        self.last_real_term: Optional[Tensor] = None  # mix: (K,) mean r(D_k(x_k)) of the last D step
        self.parts = Microbatches(s.shard.rows(s.batch_size), K, s.device)  # this rank's rows
        if players == "auto" and not self.parts.equal:  # a batched stack needs equal microbatches
            players = "list"
        self.act = None if alpha is not None else alpha_act  # a number means a static alpha
        if self.act is None:
            self.beta = None
            self.static_alpha = float(alpha)
            self._alpha = torch.tensor(self.static_alpha, device=s.device)  # made once, not per step
        else:
            # alpha_init null: the paper's beta0 = -1.8 for the sigmoid, and for the other activations
            # the beta that starts at the same alpha0 = sigmoid(-1.8), so alpha never starts negative
            if alpha_init is None:
                alpha_init = 1 / (1 + math.exp(-BETA0))
                beta0 = BETA0 if self.act == "sigmoid" else INVERSE[self.act](alpha_init)
            else:
                beta0 = INVERSE[self.act](alpha_init)
            self.beta = nn.Parameter(torch.tensor(beta0, device=s.device))
        super().__init__(s, make_d=lambda: make_players(s.make_d, K, players),
                         g_extra=() if self.beta is None else (self.beta,), stream=stream, groups=K)
        # a batchnorm D_k scores every fake together whatever alpha is (module docstring)
        self.whole_fake_batch = self.diverse or (K > 1 and batch_dependent(self.D))

    def alpha(self) -> Tensor:
        if self.beta is None:
            return self._alpha
        return ACTS[self.act](self.beta)

    @property
    def diverse(self) -> bool:
        """Whether the y_-k terms count (K > 1 and alpha not fixed at 0)."""
        return self.K > 1 and (self.beta is not None or self.static_alpha != 0)

    def own_scores(self, x: Tensor, y: Optional[Tensor] = None) -> Tensor:
        """(B,) logits: every row scored by the D_k of its microbatch (with its label y, if any)."""
        if self.parts.equal:
            return self.critic(x.view(self.K, -1, *x.shape[1:]),
                               y=None if y is None else y.view(self.K, -1)).float().reshape(len(x))
        return torch.cat([self.critic(x[a:b], partial(self.D.forward_one, k), y=None if y is None else y[a:b])
                          for k, (a, b) in enumerate(self.parts.bounds)]).float()

    def fake_logits(self, fake: Tensor, y: Optional[Tensor] = None) -> Tensor:
        """D's logits on a fake batch: (B,) rows scored by their own D_k when the y_-k terms do not
        count and D has no batchnorm, else (K, B): every D_k on every fake."""
        if not self.whole_fake_batch:
            return self.own_scores(fake, y)
        return self.every_d(fake, y)

    def every_d(self, x: Tensor, y: Optional[Tensor] = None) -> Tensor:
        """(K, B): every D_k on every row of x."""
        return self.critic(x.unsqueeze(0).expand(self.K, *x.shape),
                           y=None if y is None else y.unsqueeze(0).expand(self.K, -1)).float()

    def own_mean(self, logits: Tensor, term) -> Tensor:
        """(K,) means of term over each D_k's own fakes."""
        values = term(logits)
        return self.parts.mean(values) if logits.dim() == 1 else self.parts.own_mean(values)

    def d_batch(self, draw_real, log: bool) -> DBatch:
        if not self.g_reuse:
            return super().d_batch(draw_real, log)
        real, real_y = self.draw(draw_real)
        # G's step of this iteration scores these z (and labels) again
        self.last_z, self.last_y = self.latent(self.batch_size)
        with torch.no_grad():
            fake = self.generate(self.last_z, self.last_y)
        return DBatch(real, fake, real_y=real_y, fake_y=self.last_y)

    def d_loss(self, batch: DBatch, log: bool) -> Tuple[Tensor, Stats]:
        """The sum of the K discriminators' losses: one optimiser step trains each D_k on its own."""
        per_d, out = self.d_losses(batch, log)
        return per_d.sum(), out

    def d_losses(self, batch: DBatch, log: bool) -> Tuple[Tensor, Stats]:
        """Per-discriminator losses (K,) (D_k's own parameters only reach entry k), scalars to log."""
        real, fake = batch.real, batch.fake
        x = real.detach().requires_grad_(True) if self.penalty == "r1" else real
        alpha = self.alpha().detach()
        with self.amp.autocast():
            l_real = self.own_scores(x, batch.real_y)
            if self.augment is not None:
                self.augment.observe(l_real)
            l_fake = self.fake_logits(fake, batch.fake_y)
            t_real = self.parts.mean(self.loss.real(l_real))
            per_d = self.own_mean(l_fake, self.loss.fake)
            if self.diverse:
                t_other = self.parts.other_mean(self.loss.real(l_fake))
                per_d = per_d + ((1 - alpha) * t_real if self.mix else t_real) + alpha * t_other
                self.last_real_term = t_real.detach()
            else:
                per_d = per_d + t_real
        out = {"loss/d": per_d.detach().mean()}
        if log:
            out["d/real_logit"] = l_real.detach().mean()
            out["d/fake_logit"] = self.own_mean(l_fake.detach(), _same).mean()
            if self.diverse:
                out["microbatch/other_fake_logit"] = self.parts.other_mean(l_fake.detach()).mean()
            if self.K > 1:
                out["microbatch/own_vs_other_acc"] = self.own_vs_other(fake, l_fake.detach(), batch.fake_y)
        if self.penalty != "none":
            own = self.own_scores if batch.real_y is None else partial(self.own_scores, y=batch.real_y)
            pen = self.parts.mean(self.penalty_term(own, x, l_real, fake))
            per_d = per_d + self.k * pen
            out["loss/d_penalty"] = pen.detach().mean()
        return per_d, out

    @torch.no_grad()
    def own_vs_other(self, fake: Tensor, l_fake: Tensor, y: Optional[Tensor] = None) -> Tensor:
        """How well each D_k tells its own microbatch's fakes from the others' (the diversity task), as a
        ranking accuracy: the share of (own, other) pairs whose other fake D_k scores as more real (ties
        count half), averaged over the K discriminators. 0.5 is chance; it needs no threshold, so it reads
        the same for a logit and a softplus output."""
        logits = l_fake if l_fake.dim() == 2 else self.every_d(fake, y)
        part = torch.repeat_interleave(torch.arange(self.K, device=logits.device),
                                       torch.tensor(self.parts.sizes, device=logits.device))
        if self.shard.world > 1:  # every rank's rows: the pairs of the whole batch, as one process counts them
            logits = self.shard.gather(logits.t().contiguous()).t()
            part = part.repeat(self.shard.world)
        acc = []
        for k in range(self.K):
            own, other = logits[k, part == k], logits[k, part != k]
            pairs = other.unsqueeze(0) - own.unsqueeze(1)
            acc.append((pairs > 0).float().mean() + 0.5 * (pairs == 0).float().mean())
        return torch.stack(acc).mean()

    def g_loss(self, log: bool) -> Tuple[Tensor, Stats]:
        alpha = self.alpha()
        reuse = self.g_reuse and self.last_z is not None
        z, y = (self.last_z, self.last_y) if reuse else self.latent(self.batch_size)
        self.last_z = self.last_y = None
        with self.amp.autocast():
            l_fake = self.fake_logits(self.generate(z, y), y)
            loss = self.own_mean(l_fake, self.loss.gen).sum()
            if self.diverse:
                diversity = self.parts.other_mean(self.loss.real(l_fake))
                if self.mix:  # alpha's own gradient compares the others' fakes with D_k's reals
                    diversity = diversity - self.last_real_term
                loss = loss - (alpha * diversity).sum()
        return loss, {"loss/g": loss.detach(), "microbatch/alpha": alpha.detach()}

    @torch.no_grad()
    def surface(self, x: Tensor) -> Tensor:
        """The mean logit of the K discriminators."""
        with evaluating(self.D):
            return self.critic(x.unsqueeze(0).expand(self.K, *x.shape)).mean(0)

    def state_dict(self) -> dict:
        state = super().state_dict()
        if self.beta is not None:
            state["beta"] = self.beta.detach().clone()
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        if self.beta is not None:
            with torch.no_grad():
                self.beta.copy_(state["beta"])
