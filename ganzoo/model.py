"""What train, sample and eval all build from a config: the data, the nets, the method and the
evaluator on a device (Model), and how it is evaluated and pictured."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Callable, Dict, Optional

import torch

from . import distributed
from .config import TrainConfig
from .data import build_data
from .distributed import Shard
from .errors import ConfigError
from .methods import build_method
from .methods.protocol import Method
from .nets.build import build_nets

log = logging.getLogger("ganzoo")


@dataclass
class Model:
    """What train, sample and eval all build from a config."""
    data: object
    method: Method
    device: torch.device
    evaluator: Callable


def configure_backends(cfg: TrainConfig) -> None:
    """Kernel choices; process-wide settings, so each run sets every one of them."""
    if cfg.deterministic:
        # cuBLAS reads this when its first handle is made, so before any CUDA matmul
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if torch.are_deterministic_algorithms_enabled() != cfg.deterministic:
        # only on a change: the call imports torch's compiler stack (seconds) the first time
        torch.use_deterministic_algorithms(cfg.deterministic)
    torch.backends.cudnn.deterministic = cfg.deterministic
    torch.backends.cudnn.benchmark = cfg.cudnn.benchmark and not cfg.deterministic
    torch.backends.cuda.matmul.allow_tf32 = cfg.tf32
    torch.backends.cudnn.allow_tf32 = cfg.tf32


def build(cfg: TrainConfig, device: Optional[torch.device] = None, shard: Shard = Shard(),
          train: bool = True) -> Model:
    """The run's model; `train=False` for sampling and evaluation (no optimisers: their state is not read)."""
    device = device or resolve_device(cfg.device, shard)
    configure_backends(cfg)
    data = build_data(cfg.dataset, cfg.synthetic_images)
    # a conditional run's labels are checked now (DataError in one line), before any net is built
    counts = data.class_counts() if cfg.conditional else None
    make_g, make_d = build_nets(cfg.arch, data.shape, cfg.num_classes(), cfg.labels.g)
    method = build_method(cfg, make_g, make_d, device, shard, train, counts)
    if shard.world > 1:
        sync_batchnorm(cfg, method, device)
    eager = method.double_backward()
    for net in method.networks():
        if cfg.channels_last and device.type == "cuda" and len(data.shape) == 3:
            net.to(memory_format=torch.channels_last)
        if cfg.compile and not any(net is e for e in eager):
            net.compile()  # in place: state_dict keys stay those of the plain module
    if cfg.compile and eager:
        log.info(f"compile=true: {len(eager)} net(s) stay eager (a gradient penalty needs double backward, "
                 "which torch.compile does not support); the others are compiled")
    return Model(data, method, device, data.evaluator(cfg.metrics, cfg.seed, device, shard))


def sync_batchnorm(cfg: TrainConfig, method, device: torch.device) -> None:
    """Batchnorm under several ranks: statistics over the global batch (torch's SyncBatchNorm, CUDA
    only), or refused: per-rank statistics are not one process's training."""
    from .nets.common import batch_dependent
    nets = [net for net in method.networks() if batch_dependent(net)]
    if not nets:
        return
    if not cfg.sync_bn:
        log.warning(f"sync_bn=false: {len(nets)} batchnorm net(s) normalise each rank's rows on their own; "
                    f"this run is not the same as one process with the global batch")
        return
    if device.type != "cuda":
        raise ConfigError(f"arch={cfg.arch.name} has batchnorm and torch's SyncBatchNorm needs CUDA: on CPU ranks "
                          f"use an arch without batchnorm, one process, or sync_bn=false (per-rank statistics, "
                          f"not the same training)")
    twice = [net for net in method.double_backward() if batch_dependent(net)]
    if twice:
        raise ConfigError("a gradient penalty differentiates D twice and torch's SyncBatchNorm has no double "
                          "backward: use loss.penalty=none, a D without batchnorm, or sync_bn=false")
    for net in nets:  # in place: the parameters stay the same objects, so the optimisers keep them
        torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)


def evaluate(cfg: TrainConfig, model: Model, parts: Optional[bool] = None) -> Dict[str, object]:
    """The model's scores, and with `parts` those of every player the method scores on its own
    (sgan's local generators) as "<part>/<metric>". By default parts are scored where the data say
    it is cheap (2-D data); `ganzoo eval` always scores them."""
    method = model.method
    classes = cfg.num_classes()
    metrics = model.evaluator(method.sample, method.num_generators, method.surface, classes=classes)
    if parts or (parts is None and model.data.score_parts):
        for name, sample_fn in method.scored_parts().items():
            scores = model.evaluator(sample_fn, 1, classes=classes)
            metrics.update({f"{name}/{k}": v for k, v in scores.items() if k != "protocol"})
    return metrics


def resolve_device(name: str, shard: Shard = Shard()) -> torch.device:
    """The device a run uses; under several ranks each uses the GPU of its local rank."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda but no CUDA device is visible; use device=auto or device=cpu")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and shard.world > 1:
        return torch.device("cuda", distributed.local_rank())
    return torch.device(name)



def device_type(name: str) -> str:
    return "cuda" if name == "cuda" or (name == "auto" and torch.cuda.is_available()) else "cpu"


def picture(cfg: TrainConfig, model: Model, step: int):
    title = f"{cfg.method.name} / {cfg.loss.name} on {model.data.name}, step {step}"
    return model.data.picture(model.method, cfg.seed, model.device, title, cfg.picture_images, cfg.num_classes())


def augmented_picture(cfg: TrainConfig, model: Model):
    """The first 16 training images as D sees them at this point (augment=...), or None without augmentation."""
    augment = model.method.augment
    if augment is None:
        return None
    from .data.pixels import to_float
    from .plots import image_grid
    train = model.data.images("train")
    reals = torch.stack([train[i][0] for i in range(min(16, len(train)))]).to(model.device)
    return image_grid([augment.preview(to_float(reals), cfg.seed + 27_183)], nrow=8)


def describe(cfg: TrainConfig, model: Model) -> str:
    count = lambda net: sum(p.numel() for p in net.parameters()) / 1e6  # noqa: E731
    method = model.method
    return (f"{cfg.method.name} on {cfg.dataset.name} {'x'.join(map(str, model.data.shape))}, "
            f"arch={cfg.arch.name} (G {count(method.G):.2f}M / D {count(method.D):.2f}M parameters), "
            f"{cfg.loss.name} loss, {model.device}; another net: arch=<name> (ganzoo train --help lists them)")
