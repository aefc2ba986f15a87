"""The one place a method is made from a config: the run's Setup plus the method's own
hyperparameters (its schema's fields, methods/schemas.py) as constructor arguments."""
from __future__ import annotations

import torch

from ..augment.pipeline import build_augment
from ..data.schemas import is_image
from ..distributed import Shard
from .gan import Setup
from .schemas import METHODS


def setup_from(cfg, make_g, make_d, device: torch.device, shard: Shard = Shard(), train: bool = True,
               class_counts=None) -> Setup:
    """`class_counts`: the data's classes' frequencies, which fake labels follow under labels.fake=data."""
    probs = None
    if cfg.conditional and cfg.labels.fake == "data" and class_counts is not None:
        probs = class_counts / class_counts.sum()
    return Setup(num_classes=cfg.num_classes(), class_probs=probs,
                 augment=build_augment(cfg, cfg.batch_size, device, shard), consistency=cfg.loss.consistency,
                 lecam=cfg.loss.lecam, lecam_decay=cfg.loss.lecam_decay, make_g=make_g, make_d=make_d, device=device,
                 batch_size=cfg.batch_size, n_dis=cfg.n_dis, n_gen=cfg.n_gen,
                 steps=cfg.steps, seed=cfg.seed, loss=cfg.loss.name, penalty=cfg.loss.penalty, k=cfg.loss.k,
                 z_dim=cfg.arch.z_dim, z_dist=cfg.arch.z_dist, optim_g=cfg.optim.g, optim_d=cfg.optim.d,
                 decay=cfg.optim.decay, ema=cfg.ema, amp=cfg.amp, shard=shard, train=train)


def build_method(cfg, make_g, make_d, device: torch.device, shard: Shard = Shard(), train: bool = True,
                 class_counts=None):
    """`train=False`: a model to sample or evaluate, built without optimisers."""
    m = cfg.method
    return METHODS[m.name].load()(setup_from(cfg, make_g, make_d, device, shard, train, class_counts),
                                  **m.arguments(is_image(cfg.dataset)))
