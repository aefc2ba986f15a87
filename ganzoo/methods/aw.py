"""Adaptive weighted discriminator: D's real and fake losses get weights chosen
from their gradients every step.

Only D's update differs from the baseline: the gradients g_r, g_f of the real
and fake losses over all of D's parameters are combined as w_r*g_r + w_f*g_f
(weights are constants of the step). When D already scores reals well and
fakes badly it favours the fake loss and vice versa; when the two gradients
disagree, the favoured one's step is projected to leave the other loss
unchanged to first order.
"""
from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor

from .gan import GAN, DBatch, Setup, Stats

# branch codes logged as aw/branch
BISECT, FAVOUR_REAL, FAVOUR_REAL_PROJECTED, FAVOUR_FAKE, FAVOUR_FAKE_PROJECTED = 0, 1, 2, 3, 4
TINY = 1e-12


def aw_weights(rr: Tensor, ff: Tensor, rf: Tensor, s_r: Tensor, s_f: Tensor, m) -> Tuple[Tensor, Tensor, Tensor]:
    """(w_r, w_f, branch) of docs/METHODS.md ("aw") from the dot products of g_r and g_f and the mean
    sigmoid scores; m holds normalized, alpha1, alpha2, delta, eps. Tensor ops only, so a CUDA
    step never waits for the host."""
    norm_r = rr.clamp_min(TINY).sqrt()
    norm_f = ff.clamp_min(TINY).sqrt()
    one = torch.ones_like(rr)
    inv_r, inv_f = (1 / norm_r, 1 / norm_f) if m.normalized else (one, one)
    # weight that makes the other loss's gradient orthogonal to the combined step
    proj_f = -rf / ff.clamp_min(TINY) * inv_r
    proj_r = -rf / rr.clamp_min(TINY) * inv_f
    favour_real = (s_r < s_f - m.delta) | (s_r < m.alpha1)
    favour_fake = ~favour_real & (s_r > s_f - m.delta) & (s_r > m.alpha2)
    opposed = rf < 0
    zero = torch.zeros_like(rr)
    w_r = torch.where(favour_fake, torch.where(opposed, proj_r, zero), inv_r) + m.eps
    w_f = torch.where(favour_real, torch.where(opposed, proj_f, zero), inv_f) + m.eps
    branch = torch.where(favour_real, FAVOUR_REAL + opposed.long(),
                         torch.where(favour_fake, FAVOUR_FAKE + opposed.long(), torch.zeros_like(opposed.long())))
    return w_r, w_f, branch


def _flat(grads, params) -> Tensor:
    return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(grads, params)])


class AW(GAN):
    """Only how D's gradient is formed differs: d_update.

    Under several ranks g_r, g_f, the penalty's gradient and the scores s_r, s_f are averaged
    across ranks BEFORE the weights are computed from them: the weights are nonlinear in them,
    so averaging the combined step instead would not be one process's step (the tests' negative
    control averages the step instead, and differs)."""

    def __init__(self, s: Setup, *, normalized: bool, alpha1: float, alpha2: float, delta: float, eps: float,
                 stream: int = 0):
        super().__init__(s, stream=stream)
        self.normalized, self.alpha1, self.alpha2, self.delta, self.eps = normalized, alpha1, alpha2, delta, eps

    def d_update(self, batch: DBatch, log: bool) -> Stats:
        t = self.d_terms(batch, log)
        out = t.stats
        params = self.d_params
        # autograd.grad, not backward: nothing reaches G or accumulates across the two losses
        g_r = _flat(torch.autograd.grad(t.real, params, retain_graph=True, allow_unused=True), params)
        g_f = _flat(torch.autograd.grad(t.fake, params, retain_graph=t.penalty is not None,
                                        allow_unused=True), params)
        g_p = _flat(torch.autograd.grad(t.penalty, params, allow_unused=True), params) \
            if t.penalty is not None else None
        scores = torch.stack([torch.sigmoid(l.detach()).mean() for l in t.logits])
        self.rank_mean([g_r, g_f, scores] + ([g_p] if g_p is not None else []))
        s_r, s_f = scores.unbind()  # the scores that pick the branch
        rr, ff, rf = g_r @ g_r, g_f @ g_f, g_r @ g_f
        w_r, w_f, branch = aw_weights(rr, ff, rf, s_r, s_f, self)
        step = w_r * g_r + w_f * g_f
        if g_p is not None:  # penalties join the combined gradient unweighted
            step = step + g_p
        out.update(self.update("d", grads=step, log=log))
        if log:
            out["aw/w_r"], out["aw/w_f"], out["aw/branch"] = w_r, w_f, branch.float()
            out["aw/s_r"], out["aw/s_f"] = s_r, s_f
            cos = rf / (rr.clamp_min(TINY).sqrt() * ff.clamp_min(TINY).sqrt())
            out["aw/angle"] = torch.rad2deg(torch.arccos(cos.clamp(-1, 1)))
        return out

    def rank_mean(self, tensors) -> None:
        """Every rank's values replaced by their mean over ranks, in place (nothing in one process)."""
        if self.shard.world > 1:
            self.shard.mean_(tensors)
