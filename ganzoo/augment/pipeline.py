"""The run's augmentation object: GAN.critic passes every image batch a discriminator scores through it.

Randomness: each call draws the parameters of the global batch (its rows times the world size) from the
augmentation's own seeded generator and keeps this rank's contiguous rows, so a checkpoint holds one
position at any world size, and a batch held as contiguous shares (gan, aw, sgan) is augmented as one
process augments it (the other methods are refused under several ranks: config.py).

ADA's controller (Karras et al. 2020, sec. 3): r_t = E[sign(D(real))] over the reals of `interval` D
steps; every `interval` steps p moves by sign(r_t - target) * (images in those steps) / speed_images,
clamped to [0, 1]. Everything stays on the device (no host sync); under several ranks each batch's sums of
signs and counts are summed over ranks as they come, so p and the sums are one process's.
"""
from __future__ import annotations

from typing import Dict

import torch
from torch import Tensor

from ..distributed import Shard
from . import ada_ops, diffaugment


class Augment:
    def __init__(self, cfg, seed: int, device: torch.device, shard: Shard, batch_size: int):
        self.kind = str(cfg.name)
        self.policy = list(cfg.policy)
        self.groups = cfg.groups
        self.shard = Shard(shard.rank, shard.world)  # the whole batch's contiguous shares, not a method's blocks
        self.generator = torch.Generator(device=device).manual_seed(seed * 1_000_003 + 424_243)
        self.device = device
        self.p = torch.tensor(float(cfg.p), device=device)
        self.adaptive = self.kind == "ada" and cfg.adaptive
        self.target, self.interval = float(cfg.target), int(cfg.interval)
        self.step_size = batch_size * self.interval / cfg.speed_images
        self.signs = torch.zeros((), device=device)
        self.count = torch.zeros((), device=device)
        self.rt = torch.zeros((), device=device)
        self.d_steps = 0

    # -------------------------------------------------------------- transforming
    def __call__(self, x: Tensor) -> Tensor:
        """x: (..., C, H, W), leading dims (a stack of discriminators' inputs) flattened for the draw."""
        flat = x.reshape(-1, *x.shape[-3:])
        params = {k: self.shard.local(v) for k, v in self.draw(len(flat) * self.shard.world, flat.shape[-2:]).items()}
        out = self.apply(flat, params)
        return out.reshape(x.shape)

    def draw(self, n: int, size, generator=None) -> Dict[str, Tensor]:
        gen = self.generator if generator is None else generator
        if self.kind == "ada":
            return ada_ops.draw(n, self.p, gen, self.device, self.groups)
        return diffaugment.draw(n, tuple(size), gen, self.device)

    @torch.no_grad()
    def preview(self, x: Tensor, seed: int) -> Tensor:
        """x as D sees it now, drawn from a generator of its own (a picture never moves training's draws)."""
        gen = torch.Generator(device=self.device).manual_seed(seed)
        return self.apply(x, self.draw(len(x), x.shape[-2:], gen))

    def apply(self, x: Tensor, params: Dict[str, Tensor]) -> Tensor:
        if self.kind == "ada":
            return ada_ops.apply(x, params)
        return diffaugment.apply(x, params, self.policy)

    # -------------------------------------------------------------- ADA's p
    def observe(self, real_logits: Tensor) -> None:
        """D's logits on a batch of reals: the overfitting statistic's evidence, summed over every rank's
        rows at once (a device collective, no host sync), so the sums, and a checkpoint of them, are one
        process's whatever the world size and wherever the interval stands."""
        if not self.adaptive:
            return
        evidence = torch.cat([torch.sign(real_logits.detach().float()).sum().view(1),
                              torch.full((1,), float(real_logits.numel()), device=self.device)])
        if self.shard.world > 1:
            self.shard.mean_([evidence])
            evidence = evidence * self.shard.world
        self.signs += evidence[0]
        self.count += evidence[1]

    def end_d_step(self) -> None:
        if not self.adaptive:
            return
        self.d_steps += 1
        if self.d_steps % self.interval:
            return
        self.rt = self.signs / self.count.clamp_min(1)
        self.p = (self.p + torch.sign(self.rt - self.target) * self.step_size).clamp(0, 1)
        self.signs.zero_()
        self.count.zero_()

    def stats(self) -> Dict[str, Tensor]:
        return {"augment/p": self.p.detach().clone(), "augment/rt": self.rt.detach().clone()} if self.kind == "ada" else {}

    # -------------------------------------------------------------- checkpoint state
    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "p": self.p.clone(), "signs": self.signs.clone(),
                "count": self.count.clone(), "rt": self.rt.clone(), "d_steps": self.d_steps}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        for key in ("p", "signs", "count", "rt"):
            setattr(self, key, state[key].to(self.device))
        self.d_steps = int(state["d_steps"])


def build_augment(cfg, batch_size: int, device: torch.device, shard: Shard):
    """cfg: the run's TrainConfig; None for augment=none (the training of a run without augmentation)."""
    if cfg.augment.name == "none":
        return None
    return Augment(cfg.augment, cfg.seed, device, shard, batch_size)
