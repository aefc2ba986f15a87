"""microbatchGAN (paper 000): one G, K discriminators, each fed its own microbatch.

The batch of B reals and B fakes is cut into K contiguous microbatches of
B/K. D_k tells its real microbatch x_k from its fake one y_k and, weighted by
the diversity parameter alpha, counts the other microbatches' fakes y_-k as
real:  mean r(D_k(x_k)) + mean f(D_k(y_k)) + alpha * mean r(D_k(y_-k)).
G minimises sum_k [mean g(D_k(y_k)) - alpha * mean r(D_k(y_-k))], which pays
for variety across the batch. alpha is a number or act(beta) with beta
learned by G's optimiser. K = 1 is the baseline.

One optimiser holds every D_k: Adam and RMSprop keep per-element state, so
that is exactly K separate optimisers.
"""
from __future__ import annotations

import math
from typing import Dict

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .common import set_requires_grad
from .gan import GAN, DrawReal
from .players import make_players

ACTS = {"sigmoid": torch.sigmoid, "softplus": F.softplus, "tanh": torch.tanh, "identity": lambda b: b}
INVERSE = {"sigmoid": lambda a: math.log(a / (1 - a)), "softplus": lambda a: math.log(math.expm1(a)),
           "tanh": math.atanh, "identity": lambda a: a}


class Microbatch(GAN):
    def __init__(self, cfg, make_g, make_d, device, stream: int = 0):
        m = cfg.method
        self.K = m.K
        super().__init__(cfg, make_g, make_d, device, stream)
        self.micro = self.batch_size // self.K
        self.act = m.alpha_act
        if self.act is None:
            self.beta = None
            self.static_alpha = float(m.alpha)
        else:
            # every activation starts at the same alpha0 (sigmoid(-1.8) = 0.142 by default), never negative
            self.beta = nn.Parameter(torch.tensor(INVERSE[self.act](m.alpha_init), device=device))
            self.g_params.append(self.beta)
            self.make_optimizers()
        own = torch.arange(self.batch_size, device=device) // self.micro
        self.own = own.unsqueeze(0) == torch.arange(self.K, device=device).unsqueeze(1)  # (K, B): y_k in row k

    def make_discriminator(self, make_d) -> nn.Module:
        return make_players(make_d, self.K, self.cfg.method.players)

    def alpha(self) -> Tensor:
        if self.beta is None:
            return torch.tensor(self.static_alpha, device=self.device)
        return ACTS[self.act](self.beta)

    @property
    def diverse(self) -> bool:
        """Whether the y_-k terms count (K > 1 and alpha not fixed at 0)."""
        return self.K > 1 and (self.beta is not None or self.static_alpha != 0)

    def split_logits(self, fake: Tensor):
        """D_k's logits on its own fakes (K, B/K) and, when they count, on the others' (K, B - B/K)."""
        if not self.diverse:
            return self.D(fake.view(self.K, self.micro, *fake.shape[1:])).float(), None
        logits = self.D(fake.unsqueeze(0).expand(self.K, *fake.shape)).float()  # every D_k on every fake
        return logits[self.own].view(self.K, self.micro), logits[~self.own].view(self.K, -1)

    def d_losses(self, real: Tensor, fake: Tensor, log: bool):
        """Per-discriminator losses (K,) (D_k's own parameters only reach entry k), scalars to log."""
        x = real.view(self.K, self.micro, *real.shape[1:])
        if self.penalty == "r1":
            x = x.detach().requires_grad_(True)
        alpha = self.alpha().detach()
        with self.amp.autocast():
            l_real = self.D(x).float()
            l_own, l_other = self.split_logits(fake)
            per_d = self.loss.real(l_real).mean(1) + self.loss.fake(l_own).mean(1)
            if l_other is not None:
                per_d = per_d + alpha * self.loss.real(l_other).mean(1)
        out = {"loss/d": per_d.detach().mean()}
        if log:
            out["d/real_logit"] = l_real.detach().mean()
            out["d/fake_logit"] = l_own.detach().mean()
            if l_other is not None:
                out["microbatch/other_fake_logit"] = l_other.detach().mean()
        if self.penalty != "none":
            y = fake.view(self.K, self.micro, *fake.shape[1:])
            pen = self.penalty_term(self.D, x, l_real, y, batch_dims=2)
            per_d = per_d + self.k * pen
            out["loss/d_penalty"] = pen.detach().mean()
        return per_d, out

    def d_step(self, draw_real: DrawReal, log: bool) -> Dict[str, Tensor]:
        real = draw_real()
        with torch.no_grad():
            fake = self.G(self.noise(self.batch_size))
        per_d, out = self.d_losses(real, fake, log)
        self.amp.update(per_d.sum(), self.opt_d, self.d_params, out, "grad_norm/d" if log else None, "d")
        return out

    def g_step(self, log: bool) -> Dict[str, Tensor]:
        set_requires_grad(self.d_params, False)
        alpha = self.alpha()
        with self.amp.autocast():
            l_own, l_other = self.split_logits(self.G(self.noise(self.batch_size)))
            loss = self.loss.gen(l_own).mean(1).sum()
            if l_other is not None:
                loss = loss - (alpha * self.loss.real(l_other).mean(1)).sum()
        out = {"loss/g": loss.detach(), "microbatch/alpha": alpha.detach()}
        self.amp.update(loss, self.opt_g, self.g_params, out, "grad_norm/g" if log else None, "g")
        set_requires_grad(self.d_params, True)
        return out

    def critic(self, x: Tensor) -> Tensor:
        """The mean logit of the K discriminators."""
        was_training = self.D.training
        self.D.eval()
        with torch.no_grad():
            out = self.D(x.unsqueeze(0).expand(self.K, *x.shape)).mean(0)
        self.D.train(was_training)
        return out

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
