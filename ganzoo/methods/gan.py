"""The baseline GAN of METHODS.md: one G, one D, n_dis D steps per G step.

Every other method is written as a difference from this class: it overrides
the D step, the G step, or the set of players, and inherits the rest
(noise, optimisers, schedules, EMA, sampling, checkpoint state).
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

from .. import losses
from .common import EMA, Noise, Precision, make_optimizer, make_scheduler, set_requires_grad

DrawReal = Callable[..., Tensor]


class GAN:
    num_generators = 1  # generator indices a sample can carry
    picture_rows = 1    # rows of sample_each

    def __init__(self, cfg, make_g, make_d, device: torch.device, stream: int = 0):
        """`stream` offsets the noise seed, for methods that hold several baselines (sgan's pairs)."""
        self.cfg = cfg
        self.device = device
        self.batch_size = cfg.batch_size
        self.n_dis = cfg.n_dis
        self.loss = losses.get_loss(cfg.loss.name)
        self.penalty = cfg.loss.penalty if cfg.loss.k > 0 else "none"
        self.k = cfg.loss.k
        self.noise = Noise(cfg.arch.z_dim, cfg.arch.z_dist, device, seed=cfg.seed * 1_000_003 + 17 + 7_919 * stream)
        self.iteration = 0
        self.G = self.make_generator(make_g).to(device)
        self.D = self.make_discriminator(make_d).to(device)
        self.g_params = list(self.G.parameters())
        self.d_params = list(self.D.parameters())
        self.make_optimizers()
        self.decay = cfg.optim.decay != "none"
        self.ema = EMA(self.G, cfg.ema.decay, cfg.ema.start) if cfg.ema.enabled else None
        self.amp = Precision(cfg.amp, device)

    def make_generator(self, make_g) -> nn.Module:
        return make_g()

    def make_discriminator(self, make_d) -> nn.Module:
        return make_d()

    def make_optimizers(self) -> None:
        cfg = self.cfg
        self.opt_g = make_optimizer(self.g_params, cfg.optim.g)
        self.opt_d = make_optimizer(self.d_params, cfg.optim.d)
        self.sched_g = make_scheduler(self.opt_g, cfg.optim.decay, cfg.steps)
        self.sched_d = make_scheduler(self.opt_d, cfg.optim.decay, cfg.steps)

    # ------------------------------------------------------------------ training
    def step(self, draw_real: DrawReal, log: bool = False) -> Dict[str, Tensor]:
        """One generator iteration. `draw_real(n=None)` returns the next n real samples
        (a batch by default).

        Returns detached scalars; the costly diagnostics (gradient norms,
        learning rates) only when `log` is set.
        """
        out: Dict[str, Tensor] = {}
        for i in range(self.n_dis):
            out.update(self.d_step(draw_real, log and i == self.n_dis - 1))
        out.update(self.g_step(log))
        self.end_iteration()
        if log:
            out["lr/g"] = torch.tensor(self.opt_g.param_groups[0]["lr"])
            out["lr/d"] = torch.tensor(self.opt_d.param_groups[0]["lr"])
        return out

    def d_step(self, draw_real: DrawReal, log: bool) -> Dict[str, Tensor]:
        real = draw_real()
        with torch.no_grad():
            fake = self.G(self.noise(self.batch_size))
        return self.d_train(real, fake, log)

    def d_train(self, real: Tensor, fake: Tensor, log: bool) -> Dict[str, Tensor]:
        """One D update on these reals and fakes; the scalars to log."""
        terms, out, logits = self.d_terms(real, fake, log)
        self.d_update(terms, out, logits, log)
        return out

    def d_terms(self, real: Tensor, fake: Tensor, log: bool):
        """D's loss as separate terms {real, fake[, penalty]} (weighted, to be summed), the scalars
        to log, and D's logits (on real, on fake)."""
        if self.penalty == "r1":
            real = real.detach().requires_grad_(True)
        with self.amp.autocast():
            l_real = self.D(real).float()
            l_fake = self.D(fake).float()
            terms = {"real": self.loss.real(l_real).mean(), "fake": self.loss.fake(l_fake).mean()}
        out = {"loss/d": (terms["real"] + terms["fake"]).detach()}
        if log:
            out["d/real_logit"] = l_real.detach().mean()
            out["d/fake_logit"] = l_fake.detach().mean()
        if self.penalty != "none":
            pen = self.penalty_term(self.D, real, l_real, fake).mean()
            terms["penalty"] = self.k * pen
            out["loss/d_penalty"] = pen.detach()
        return terms, out, (l_real, l_fake)

    def d_update(self, terms: Dict[str, Tensor], out: Dict[str, Tensor], logits, log: bool) -> None:
        loss = terms["real"] + terms["fake"]
        if "penalty" in terms:
            loss = loss + terms["penalty"]
        self.amp.update(loss, self.opt_d, self.d_params, out, "grad_norm/d" if log else None, "d")

    def penalty_term(self, D: nn.Module, real: Tensor, l_real: Tensor, fake: Tensor) -> Tensor:
        """loss.penalty's value per sample (one per row of `real`)."""
        scale = self.amp.penalty_scale("d")
        if self.penalty == "r1":
            return losses.r1_terms(l_real, real, scale)
        fn = losses.gp_terms if self.penalty == "gp" else losses.zgp_terms
        return fn(D, real, fake, self.noise.generator, scale)

    def g_step(self, log: bool) -> Dict[str, Tensor]:
        set_requires_grad(self.d_params, False)  # G's backward need not fill D's grads
        with self.amp.autocast():
            loss = self.loss.gen(self.D(self.G(self.noise(self.batch_size))).float()).mean()
        out = {"loss/g": loss.detach()}
        self.amp.update(loss, self.opt_g, self.g_params, out, "grad_norm/g" if log else None, "g")
        set_requires_grad(self.d_params, True)
        return out

    def end_iteration(self) -> None:
        self.iteration += 1
        if self.decay:  # a constant rate needs no scheduler step (~5 us saved per iteration)
            self.sched_g.step()
            self.sched_d.step()
        if self.ema is not None:
            self.ema.update(self.G, self.iteration)

    # ------------------------------------------------------------------ using the model
    def networks(self) -> List[nn.Module]:
        """Every trained net (for torch.compile and memory-format changes)."""
        return [self.G, self.D]

    def double_backward(self) -> List[nn.Module]:
        """The nets whose loss differentiates an input gradient (a D with a gradient penalty)."""
        return [self.D] if self.penalty != "none" else []

    @property
    def generators(self) -> List[nn.Module]:
        """The nets that produce samples (the EMA copies when EMA is on)."""
        return [self.ema.net if self.ema is not None else self.G]

    @torch.no_grad()
    def sample(self, n: int, generator: Optional[torch.Generator] = None,
               chunk: int = 4096) -> Tuple[Tensor, Tensor]:
        """n samples and the index of the generator that made each (all 0 here)."""
        G = self.generators[0]
        was_training = G.training
        G.eval()
        parts = [G(self.noise(min(chunk, n - i), generator)).float() for i in range(0, n, chunk)]
        G.train(was_training)
        return torch.cat(parts), torch.zeros(n, dtype=torch.long)

    @torch.no_grad()
    def sample_each(self, n: int, generator: torch.Generator) -> List[Tensor]:
        """n samples from every generator (one row each in a picture)."""
        return [self.sample(n, generator)[0]]

    def scored_parts(self) -> Dict[str, Callable]:
        """Sample functions of players that `ganzoo eval` scores on their own, besides the model's
        output (sgan's local generators); name -> sample(n, generator) -> (samples, index)."""
        return {}

    @torch.no_grad()
    def critic(self, x: Tensor) -> Tensor:
        """D's logits on x, for pictures of the decision surface."""
        was_training = self.D.training
        self.D.eval()
        out = self.D(x)
        self.D.train(was_training)
        return out

    # ------------------------------------------------------------------ checkpoint state
    def state_dict(self) -> dict:
        state = {
            "G": self.G.state_dict(), "D": self.D.state_dict(),
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "sched_g": self.sched_g.state_dict(), "sched_d": self.sched_d.state_dict(),
            "noise": self.noise.generator.get_state(), "iteration": self.iteration,
        }
        if self.ema is not None:
            state["ema"] = self.ema.net.state_dict()
        state.update(self.amp.state_dict())
        return state

    def load_state_dict(self, state: dict) -> None:
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.sched_g.load_state_dict(state["sched_g"])
        self.sched_d.load_state_dict(state["sched_d"])
        self.noise.generator.set_state(state["noise"])
        self.iteration = int(state["iteration"])
        if self.ema is not None:
            self.ema.net.load_state_dict(state["ema"])
        self.amp.load_state_dict(state)
