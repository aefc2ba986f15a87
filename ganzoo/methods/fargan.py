"""FARGAN, Fake-As-Real: some fakes join D's real set.

Only D's step differs from the baseline. Of f*N0 candidate fakes D scores
lowest, N0 join N - N0 reals as D's real set; a zero-centred gradient
penalty (weight method.k) covers that whole set. With N0 = 0 this is the
baseline with loss.penalty=r1; with f = 1 the N0 fakes are random ones.
As in the paper, D's M fakes and the f*N0 candidates come from one batch
of G (which matters with a batchnorm G: they share its batch statistics).
Under several ranks each rank makes its share of both, and the N0 lowest are
chosen from the gathered candidate set of all ranks, as one process would.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor

from .gan import GAN, DBatch, DrawReal, Setup, Stats


def lowest_scored(scores: Tensor, n0: int) -> Tensor:
    """The indices of the n0 lowest logits (all of them, in the order drawn, when n0 is every one).
    An index tensor, not a boolean mask: selecting with it costs a CUDA step no host sync."""
    if n0 == len(scores):  # f = 1: every candidate
        return torch.arange(n0, device=scores.device)
    return torch.topk(scores, n0, largest=False, sorted=False).indices


class FARGAN(GAN):
    def __init__(self, s: Setup, *, f: int, N0: int, k: float, stream: int = 0):
        # the method's own penalty: zero-centred GP on D's real set, i.e. r1 on that set
        super().__init__(s, penalty=("r1", k), stream=stream)
        self.f, self.n0 = f, N0

    def d_batch(self, draw_real: DrawReal, log: bool) -> DBatch:
        """batch_size fakes; batch_size - N0 reals joined by the N0 candidates D scores lowest, each
        keeping the label it was generated with (a conditional run)."""
        real, real_y = self.draw(draw_real, self.batch_size - self.n0)
        sizes = (self.batch_size, self.f * self.n0)
        z = self.noise.blocks(*sizes)
        y = self.noise.label_blocks(*sizes) if self.conditional else None
        with torch.no_grad():
            both = self.generate(z, y)
        fake, candidates = both[:self.local_batch], both[self.local_batch:]
        fake_y, cand_y = (None, None) if y is None else (y[:self.local_batch], y[self.local_batch:])
        if self.n0 == 0:
            return DBatch(real, fake, real_y=real_y, fake_y=fake_y)
        scores, idx, candidates, cand_y = self.choose(candidates, cand_y)
        real = torch.cat([real, self.shard.local(candidates[idx]).to(real.dtype)])
        if real_y is not None:
            real_y = torch.cat([real_y, self.shard.local(cand_y[idx])])
        return DBatch(real, fake, self.selection_stats(scores, idx) if log else {}, real_y, fake_y)

    def choose(self, candidates: Tensor, y: Optional[Tensor] = None) -> Tuple[Tensor, Tensor, Tensor, Optional[Tensor]]:
        """(D's logits on every rank's candidates, the indices of the N0 lowest, those candidates, their
        labels)."""
        with torch.no_grad(), self.amp.autocast():
            scores = self.critic(candidates, y=y).float()
        scores, candidates = self.shard.gather(scores), self.shard.gather(candidates)
        if y is not None:
            y = self.shard.gather(y)
        return scores, lowest_scored(scores, self.n0), candidates, y

    def selection_stats(self, scores: Tensor, idx: Tensor) -> Stats:
        chosen = scores[idx]
        out = {"fargan/selected_logit": chosen.mean()}
        rejected = len(scores) - self.n0
        if rejected:  # f = 1 rejects nothing
            out["fargan/rejected_logit"] = (scores.sum() - chosen.sum()) / rejected
        out["fargan/fake_fraction"] = torch.tensor(self.n0 / self.batch_size)
        return out
