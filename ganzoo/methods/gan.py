"""The baseline GAN (docs/METHODS.md): one G, one D, n_dis D steps per G step.

Every other method is written as a difference from this class. An iteration is
n_dis D phases then n_gen G phases (one by default); each phase is a batch, a loss and `update`:

    d_step:  d_batch -> DBatch(real, fake);  d_update: d_loss (d_terms summed) -> update("d")
    g_step:  with D frozen, g_loss -> update("g")

In a conditional run (Setup.num_classes > 0) every sample travels with its class label: reals with the
data's, fakes with labels drawn from the noise stream right after their z (`latent`); G is called as
G(z, y) (`generate`) and every D call passes the labels of what it scores through `critic`. In an
unconditional run the labels are None and nothing is drawn for them.

A method overrides the pieces it changes (fargan: d_batch; aw: d_update, how D's
gradient is formed; microbatch: d_loss, g_loss and its D factory) and inherits the
rest: noise, optimisers, schedules, EMA, sampling, checkpoint state.

Every training call of a discriminator, in every method, goes through `critic`: the one
place where what D sees can change for all of them at once. The loop's side of a method
is written down in methods/protocol.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

from .. import losses
from . import regularisers
from ..distributed import Shard
from .common import EMA, Noise, Precision, evaluating, frozen, grad_norm, make_optimizer, make_scheduler

DrawReal = Callable[..., Tensor]
Factory = Callable[[], nn.Module]
Stats = Dict[str, Tensor]


@dataclass
class Setup:
    """What every method is built from besides its own hyperparameters: the run's nets, batch,
    loss, noise, optimisers and precision (methods/build.py makes it from the config, whose
    schemas hold the defaults: none here)."""
    make_g: Factory
    make_d: Factory
    device: torch.device
    batch_size: int
    n_dis: int
    n_gen: int
    steps: int
    seed: int
    loss: str
    penalty: str
    k: float
    z_dim: int
    z_dist: str
    optim_g: object               # OptimizerConfig
    optim_d: object
    decay: str
    ema: object                   # EMAConfig
    amp: str
    shard: Shard = field(default_factory=Shard)  # this process's rank of the run (distributed.py)
    train: bool = True            # False: built to sample or evaluate, without optimisers (methods.build)
    num_classes: int = 0          # > 0: a conditional run (G(z, y), D(x, y))
    augment: Optional[object] = None  # what D sees (augment/pipeline.py); None: the images as they are
    consistency: Optional[object] = None  # bCR / zCR weights (config.py ConsistencyConfig); None: off
    lecam: float = 0.0            # LeCam regularisation's weight (methods/regularisers.py)
    lecam_decay: float = 0.99
    class_probs: Optional[Tensor] = None  # fake labels' class frequencies (None: uniform)


@dataclass
class DBatch:
    """D's reals and (detached) fakes for one update, the scalars their making logs, and in a
    conditional run the class label of every row."""
    real: Tensor
    fake: Tensor
    stats: Stats = field(default_factory=dict)
    real_y: Optional[Tensor] = None
    fake_y: Optional[Tensor] = None
    z: Optional[Tensor] = None    # the fakes' noise, kept where zCR perturbs it


@dataclass
class Player:
    """Parameters that one optimiser trains (G's, D's, a method's own classifier's)."""
    params: List[nn.Parameter]
    opt: torch.optim.Optimizer


@dataclass
class DTerms:
    """D's loss on one batch as separate terms (each a weighted mean, summed for the update), its
    logits, the scalars to log, and the features D's last layer read on the fakes when the method
    asks for them (`score_fake`)."""
    real: Tensor
    fake: Tensor
    penalty: Optional[Tensor]
    logits: Tuple[Tensor, Tensor]
    stats: Stats
    fake_features: Optional[Tensor] = None

    def total(self) -> Tensor:
        loss = self.real + self.fake
        return loss if self.penalty is None else loss + self.penalty


class GAN:
    num_generators = 1  # generator indices a sample can carry
    picture_rows = 1    # rows of sample_each

    def __init__(self, s: Setup, make_g: Optional[Factory] = None, make_d: Optional[Factory] = None,
                 g_extra: Tuple[nn.Parameter, ...] = (), penalty: Optional[Tuple[str, float]] = None,
                 stream: int = 0, groups: int = 1):
        """A subclass passes what it changes: its own net factories (G is built first, then D, as
        the baseline does), extra parameters G's optimiser trains, its own (penalty, weight).
        `stream` offsets the noise seed, for methods that hold several baselines (sgan's pairs).
        `groups`: a batch is that many equal blocks, and each rank keeps its share of every block
        (microbatch's K microbatches), not one contiguous slice."""
        self.setup = s
        self.device = s.device
        self.shard = s.shard.grouped(groups) if groups > 1 else s.shard
        self.batch_size = s.batch_size           # the global batch, what one process would draw
        self.local_batch = self.shard.rows(s.batch_size)  # this rank's rows of it
        self.n_dis = s.n_dis
        self.n_gen = s.n_gen
        self.loss = losses.get_loss(s.loss)
        name, k = penalty if penalty is not None else (s.penalty, s.k)
        self.penalty = name if k > 0 else "none"
        self.k = k
        self.conditional = s.num_classes > 0
        self.augment = s.augment  # shared by every GAN a method holds (sgan's pairs): one random stream
        self.consistency = s.consistency if s.consistency is not None and (
            s.consistency.bcr() or s.consistency.zcr()) else None
        self.lecam = regularisers.LeCam(s.lecam, s.lecam_decay, s.device, self.shard) if s.lecam > 0 else None
        self.noise = Noise(s.z_dim, s.z_dist, s.device, seed=s.seed * 1_000_003 + 17 + 7_919 * stream,
                           shard=self.shard, num_classes=s.num_classes, class_probs=s.class_probs)
        self.iteration = 0
        self.G = (make_g or s.make_g)().to(s.device)
        self.D = (make_d or s.make_d)().to(s.device)
        self.g_params = list(self.G.parameters()) + list(g_extra)
        self.d_params = list(self.D.parameters())
        self.opt_g = self.optimizer(self.g_params, s.optim_g)
        self.opt_d = self.optimizer(self.d_params, s.optim_d)
        self.players: Dict[str, Player] = {"g": Player(self.g_params, self.opt_g),
                                           "d": Player(self.d_params, self.opt_d)}
        self.sched_g = make_scheduler(self.opt_g, s.decay, s.steps) if s.train else None
        self.sched_d = make_scheduler(self.opt_d, s.decay, s.steps) if s.train else None
        self.decay = s.decay != "none"
        self.ema = EMA(self.G, s.ema.decay, s.ema.start) if s.ema.enabled else None
        self.amp = Precision(s.amp, s.device)

    def optimizer(self, params: List[nn.Parameter], o) -> Optional[torch.optim.Optimizer]:
        """An optimiser for params; None in a model built only to sample or evaluate (making one imports
        torch's compiler stack, seconds `ganzoo sample` need not wait; their checkpoint state is not read)."""
        return make_optimizer(params, o) if self.setup.train else None

    # ------------------------------------------------------------------ training
    def step(self, draw_real: DrawReal, log: bool = False) -> Stats:
        """One generator iteration. `draw_real(n=None)` returns the next n real samples
        (a batch by default).

        Returns detached scalars; the costly diagnostics (gradient norms,
        learning rates) only when `log` is set.
        """
        out = self.phases(draw_real, log)
        self.end_iteration()
        if log:
            out["lr/g"] = torch.tensor(self.opt_g.param_groups[0]["lr"])
            out["lr/d"] = torch.tensor(self.opt_d.param_groups[0]["lr"])
        return out

    def phases(self, draw_real: DrawReal, log: bool) -> Stats:
        """n_dis D steps, then n_gen G steps; the scalars of the last of each when logging."""
        out: Stats = {}
        for i in range(self.n_dis):
            out.update(self.d_step(draw_real, log and i == self.n_dis - 1))
        for i in range(self.n_gen):
            out.update(self.g_step(log and i == self.n_gen - 1))
        return out

    def update(self, player: str, loss: Optional[Tensor] = None, log: bool = False,
               grads: Optional[Tensor] = None) -> Stats:
        """`player` names an entry of `self.players`: parameters and their optimiser.

        The one place a player's parameters change: zero_grad, backward of `loss` (loss-scaled
        under fp16) and the gradients averaged across ranks, or, with `grads`, that flat gradient
        (already the same on every rank) as the parameters' grads; unscale; the gradient norm when
        logging; the optimiser step. Returns {"grad_norm/<player>": norm} when logging."""
        params, opt = self.players[player].params, self.players[player].opt
        opt.zero_grad(set_to_none=True)
        if grads is None:
            self.amp.backward(loss, player)
            # each rank's loss is a mean over its equal share of the batch: the average of the ranks'
            # gradients is one process's; scaled (fp16) gradients, so every rank's scaler agrees
            self.shard.average_grads(params)
        else:
            offset = 0
            for p in params:
                p.grad = grads[offset:offset + p.numel()].view_as(p).clone()
                offset += p.numel()
        self.amp.unscale(opt, player)
        out = {f"grad_norm/{player}": grad_norm(params)} if log else {}
        self.amp.step(opt, player)
        return out

    # samples and their labels
    def draw(self, draw_real: DrawReal, n: Optional[int] = None) -> Tuple[Tensor, Optional[Tensor]]:
        """The next n reals (a batch by default) and their labels (None in an unconditional run)."""
        out = draw_real() if n is None else draw_real(n)
        return out if self.conditional else (out, None)

    def latent(self, n: int) -> Tuple[Tensor, Optional[Tensor]]:
        """This rank's share of n noise rows and, in a conditional run, of n fake labels drawn after them."""
        z = self.noise(n)
        return z, (self.noise.labels(n) if self.conditional else None)

    def generate(self, z: Tensor, y: Optional[Tensor], G: Optional[nn.Module] = None) -> Tensor:
        G = self.G if G is None else G
        return G(z) if y is None else G(z, y)

    # D's phase: a batch, its loss, the update
    def d_step(self, draw_real: DrawReal, log: bool) -> Stats:
        batch = self.d_batch(draw_real, log)
        out = self.d_update(batch, log)
        out.update(batch.stats)
        if self.augment is not None:
            self.augment.end_d_step()
            if log:
                out.update(self.augment.stats())
        return out

    def d_batch(self, draw_real: DrawReal, log: bool) -> DBatch:
        """D's reals and (detached) fakes for one update."""
        real, real_y = self.draw(draw_real)
        z, y = self.latent(self.batch_size)
        with torch.no_grad():
            fake = self.generate(z, y)
        zcr = self.consistency is not None and self.consistency.zcr_dis > 0
        return DBatch(real, fake, real_y=real_y, fake_y=y, z=z if zcr else None)

    def d_update(self, batch: DBatch, log: bool) -> Stats:
        """One D update on this batch's reals and fakes; the scalars to log."""
        loss, out = self.d_loss(batch, log)
        out.update(self.update("d", loss, log))
        return out

    def d_loss(self, batch: DBatch, log: bool) -> Tuple[Tensor, Stats]:
        terms = self.d_terms(batch, log)
        return terms.total(), terms.stats

    def d_terms(self, batch: DBatch, log: bool) -> DTerms:
        real, fake = batch.real, batch.fake
        if self.penalty == "r1":
            real = real.detach().requires_grad_(True)
        with self.amp.autocast():
            l_real = self.critic(real, y=batch.real_y).float()
            if self.augment is not None:
                self.augment.observe(l_real)
            l_fake, features = self.score_fake(fake, batch.fake_y)
            l_fake = l_fake.float()
            t_real, t_fake = self.loss.real(l_real).mean(), self.loss.fake(l_fake).mean()
        out = {"loss/d": (t_real + t_fake).detach()}
        if log:
            out["d/real_logit"] = l_real.detach().mean()
            out["d/fake_logit"] = l_fake.detach().mean()
        penalty = None
        if self.penalty != "none":
            # interpolates are scored with the reals' labels (as StudioGAN's conditional GP does)
            critic = self.critic if batch.real_y is None else partial(self.critic, y=batch.real_y)
            pen = self.penalty_term(critic, real, l_real, fake).mean()
            penalty = self.k * pen
            out["loss/d_penalty"] = pen.detach()
        extra = self.regularisers(batch, real, l_real, l_fake, out)
        if extra is not None:  # with the penalty: aw adds both to its combined gradient unweighted
            penalty = extra if penalty is None else penalty + extra
        return DTerms(t_real, t_fake, penalty, (l_real, l_fake), out, features)

    def regularisers(self, batch: DBatch, real: Tensor, l_real: Tensor, l_fake: Tensor, out: Stats) -> Optional[Tensor]:
        """LeCam, bCR and zCR's terms of D's loss (methods/regularisers.py), each logged; None when all are off."""
        terms = []
        if self.lecam is not None:
            terms.append(self.lecam.term(l_real, l_fake))
            out["loss/d_lecam"] = terms[-1].detach()
        c = self.consistency
        if c is not None and c.bcr():
            with self.amp.autocast():
                terms.append(regularisers.bcr_term(self.critic, real.detach(), batch.fake, l_real, l_fake, c,
                                                   self.shard.rows_of, self.noise.generator, batch.real_y, batch.fake_y))
            out["loss/d_bcr"] = terms[-1].detach()
        if c is not None and c.zcr_dis > 0 and batch.z is not None:
            with torch.no_grad():
                moved = self.generate(batch.z + self.latent_step(len(batch.z)), batch.fake_y)
            with self.amp.autocast():
                terms.append(c.zcr_dis * (l_fake - self.critic(moved, y=batch.fake_y).float()).pow(2).mean())
            out["loss/d_zcr"] = terms[-1].detach()
        return sum(terms) if terms else None

    def latent_step(self, n_local: int) -> Tensor:
        """zCR's dz for this rank's n_local rows of a global draw."""
        z_dim = self.setup.z_dim
        return self.shard.rows_of(lambda m: torch.randn(m, z_dim, generator=self.noise.generator,
                                                        device=self.device), n_local) * self.consistency.zcr_sigma

    def penalty_term(self, D: Callable, real: Tensor, l_real: Tensor, fake: Tensor) -> Tensor:
        """loss.penalty's value per sample (one per row of `real`)."""
        scale = self.amp.penalty_scale("d")
        if self.penalty == "r1":
            return losses.r1_terms(l_real, real, scale)
        fn = losses.gp_terms if self.penalty == "gp" else losses.zgp_terms
        # interpolation weights: this rank's rows of the global draw
        t = self.shard.rows_of(lambda n: torch.rand((n,) + (1,) * (real.dim() - 1), device=real.device,
                                                    dtype=real.dtype, generator=self.noise.generator), len(real))
        return fn(D, real, fake, self.noise.generator, scale, t=t)

    # G's phase: its loss with D frozen, the update
    def g_step(self, log: bool) -> Stats:
        with frozen(self.d_params):  # G's backward need not fill D's grads
            loss, out = self.g_loss(log)
            out.update(self.update("g", loss, log))
        return out

    def g_loss(self, log: bool) -> Tuple[Tensor, Stats]:
        z, y = self.latent(self.batch_size)
        with self.amp.autocast():
            fake = self.generate(z, y)
            loss = self.loss.gen(self.score_fake(fake, y)[0].float()).mean()
        out = {"loss/g": loss.detach()}
        if self.consistency is not None and self.consistency.zcr_gen > 0:  # G is rewarded for moving with z
            with self.amp.autocast():
                spread = (fake - self.generate(z + self.latent_step(len(z)), y)).float().pow(2).mean()
            loss = loss - self.consistency.zcr_gen * spread
            out["loss/g_zcr"] = spread.detach()
        return loss, out

    def critic(self, x: Tensor, net: Optional[Callable[..., Tensor]] = None,
               features: bool = False, y: Optional[Tensor] = None):
        """D's logits on x: the one seam every training call of a discriminator goes through.
        `net`: another discriminator than self.D (sgan's opponents, one member of microbatch's
        stack). With `features`, (logits, the features D's last layer read) from a net that has
        `features` and `logit` (every D of nets/). `y`: x's class labels in a conditional run. With an
        augmentation, images are transformed first (DiffAugment, ADA: every D input, reals and fakes)."""
        net = self.D if net is None else net
        if self.augment is not None and x.dim() >= 4:
            x = self.augment(x)
        if not features:
            return net(x) if y is None else net(x, y)
        h = net.features(x)
        return (net.logit(h) if y is None else net.logit(h, y)), h

    def score_fake(self, fake: Tensor, y: Optional[Tensor] = None) -> Tuple[Tensor, Optional[Tensor]]:
        """D's logits on a batch of fakes (labels y), and the features its last layer read where the
        method uses them (stackelberg's head; None here)."""
        return self.critic(fake, y=y), None

    def end_iteration(self) -> None:
        self.iteration += 1
        if self.decay:  # a constant rate needs no scheduler step
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

    def sample_labels(self, n: int, generator: Optional[torch.Generator], y: Optional[Tensor]) -> Optional[Tensor]:
        """The classes n samples are asked for: `y` as given, else drawn as training draws them (after
        the noise); None in an unconditional model."""
        if not self.conditional:
            return None
        return self.noise.labels_full(n, generator) if y is None else y.to(self.device)

    @torch.no_grad()
    def sample(self, n: int, generator: Optional[torch.Generator] = None,
               chunk: int = 4096, y: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """n samples and the index of the generator that made each (all 0 here); a conditional model
        makes class y[i] in row i (y drawn when not given)."""
        with evaluating(self.generators[0]) as G:
            z = [self.noise.full(min(chunk, n - i), generator) for i in range(0, n, chunk)]
            y = self.sample_labels(n, generator, y)
            ys = [None] * len(z) if y is None else y.split(chunk)
            parts = [self.generate(zi, yi, G).float() for zi, yi in zip(z, ys)]
        return torch.cat(parts), torch.zeros(n, dtype=torch.long)

    @torch.no_grad()
    def sample_each(self, n: int, generator: torch.Generator, y: Optional[Tensor] = None) -> List[Tensor]:
        """n samples from every generator (one row each in a picture)."""
        return [self.sample(n, generator, y=y)[0]]

    def scored_parts(self) -> Dict[str, Callable]:
        """Sample functions of players that `ganzoo eval` scores on their own, besides the model's
        output (sgan's local generators); name -> sample(n, generator) -> (samples, index)."""
        return {}

    @torch.no_grad()
    def surface(self, x: Tensor) -> Tensor:
        """D's logits on x in eval mode, for pictures and scores of the decision surface."""
        with evaluating(self.D):
            return self.critic(x)

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
        if self.augment is not None:
            state["augment"] = self.augment.state_dict()
        state.update(regularisers.state(self.lecam))
        state.update(self.amp.state_dict())
        return state

    def load_state_dict(self, state: dict) -> None:
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        for name in ("opt_g", "opt_d", "sched_g", "sched_d"):
            if getattr(self, name) is not None:  # none in a model built to sample or evaluate
                getattr(self, name).load_state_dict(state[name])
        self.noise.generator.set_state(state["noise"])
        self.iteration = int(state["iteration"])
        if self.ema is not None:
            self.ema.net.load_state_dict(state["ema"])
        if self.augment is not None:
            self.augment.load_state_dict(state["augment"])
        if self.lecam is not None:
            self.lecam.anchors.copy_(state["lecam_anchors"])
        self.amp.load_state_dict(state)
