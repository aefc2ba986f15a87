"""FARGAN, Fake-As-Real (paper 003): some fakes join D's real set.

Only D's step differs from the baseline. Of f*N0 candidate fakes D scores
lowest, N0 join N - N0 reals as D's real set; a zero-centred gradient
penalty (weight method.k) covers that whole set. With N0 = 0 this is the
baseline with loss.penalty=r1; with f = 1 the N0 fakes are random ones.
"""
from __future__ import annotations

from typing import Dict, Tuple

import torch
from torch import Tensor

from .gan import GAN, DrawReal


def lowest_scored(candidates: Tensor, scores: Tensor, n0: int) -> Tuple[Tensor, Tensor]:
    """The n0 candidates with the lowest logits, and a mask of the ones chosen."""
    if n0 == len(scores):  # f = 1: every candidate, in the order drawn
        return candidates, torch.ones_like(scores, dtype=torch.bool)
    idx = torch.topk(scores, n0, largest=False, sorted=False).indices
    chosen = torch.zeros_like(scores, dtype=torch.bool)
    chosen[idx] = True
    return candidates[idx], chosen


class FARGAN(GAN):
    def __init__(self, cfg, make_g, make_d, device, stream: int = 0):
        super().__init__(cfg, make_g, make_d, device, stream)
        m = cfg.method
        self.f, self.n0 = m.f, m.N0
        # the method's own penalty: zero-centred GP on D's real set, i.e. r1 on that set
        self.penalty = "r1" if m.k > 0 else "none"
        self.k = m.k

    def fakes_as_real(self) -> Tuple[Tensor, Tensor, Tensor]:
        """(selected fakes, D's logits on the selected, on the rejected candidates)."""
        with torch.no_grad(), self.amp.autocast():
            candidates = self.G(self.noise(self.f * self.n0))
            scores = self.D(candidates).float()
        selected, chosen = lowest_scored(candidates, scores, self.n0)
        return selected.float(), scores[chosen], scores[~chosen]

    def d_step(self, draw_real: DrawReal, log: bool) -> Dict[str, Tensor]:
        with torch.no_grad():
            fake = self.G(self.noise(self.batch_size))
        real = draw_real(self.batch_size - self.n0)
        if self.n0 > 0:
            selected, l_sel, l_rej = self.fakes_as_real()
            real = torch.cat([real, selected.to(real.dtype)])
        out = self.d_train(real, fake, log)
        if log and self.n0 > 0:
            out["fargan/selected_logit"] = l_sel.mean()
            if l_rej.numel():  # f = 1 rejects nothing
                out["fargan/rejected_logit"] = l_rej.mean()
            out["fargan/fake_fraction"] = torch.tensor(self.n0 / self.batch_size)
        return out
