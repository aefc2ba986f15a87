"""Every method x penalty trained a few steps by 2 gloo ranks of B/2 and by 1 process of B.

Run under `torchrun --standalone --nproc-per-node=2 tests/distributed_cases.py OUT`, after
`write_configs(OUT, WEIGHTS)` composed every case once into OUT/cases.json (conftest.compose_fast:
Hydra's composition is ~0.15 s; the ranks' own composing is tested by the end-to-end torchrun runs): each rank
writes OUT/rank<r>.pt with, per case, every tensor of the method's state (parameters, optimiser
state, EMA, beta, scalers), the stream's state and the logged scalars, and the image scores of a
model evaluated with the InceptionV3 weights file WEIGHTS. tests/test_distributed.py runs the same
configs in one process (`run_cases(Shard(), configs)`) and compares.
"""
from __future__ import annotations

import json
import os
import sys
from typing import Dict, List, Tuple

import torch

from ganzoo.config import TrainConfig, load_train_config, to_dict
from ganzoo.data import Stream
from ganzoo.distributed import Shard
from ganzoo.methods import aw as aw_module
from ganzoo.methods.aw import AW
from ganzoo.methods.schemas import METHODS as RECORDS
from ganzoo.model import build

BASE = ["device=cpu", "dataset=ring", "arch=mlp", "arch.g.hidden=[16,16]", "arch.d.hidden=[16,16]",
        "optim=adam", "batch_size=32", "ema.enabled=true", "ema.start=1", "steps=100"]
PENALTIES = {"none": ["loss.penalty=none"], "r1": ["loss.penalty=r1", "loss.k=1"],
             "gp": ["loss.penalty=gp", "loss.k=1"]}
RECORDS_SMALL = {name: record.overrides() for name, record in RECORDS.items()}
# every method's small instance (fargan has its own case below: its penalty is its own), and variants
METHODS = {name: record.overrides() for name, record in RECORDS.items() if name != "fargan"}
METHODS.update({
    "stackelberg_head": ["method=stackelberg", "method.I=3", "method.classifier_weight=0.5"],
    "stackelberg_separate": ["method=stackelberg", "method.I=2", "method.classifier=separate",
                             "method.classifier_weight=0.5"],
    "microbatch_static": ["method=microbatch", "method.K=2", "method.alpha=0.3"],
    "sgan_live": ["method=sgan", "method.N=2", "method.opponent=live"],
})
# fargan brings its own penalty (zero-centred GP on D's real set, method.k)
CASES: Dict[str, List[str]] = {f"{m}/{p}": BASE + o + po for m, o in METHODS.items() for p, po in PENALTIES.items()}
CASES["fargan"] = BASE + RECORDS["fargan"].overrides() + ["method.k=1", "loss.penalty=none"]
CASES["gan/hinge/n_dis2"] = BASE + ["method=gan", "loss=hinge", "n_dis=2", "loss.penalty=gp", "loss.k=1"]
# microbatch's mix reading with G reusing D's noise; plain SGD with momentum; the 2-D nets' init, input scale and
# softplus output (the papers' toy settings)
CASES["microbatch_mix_reuse/sgd"] = BASE + ["method=microbatch", "method.K=4", "method.reading=mix",
                                            "method.g_reuse=true", "optim=sgd", "optim.g.momentum=0.9",
                                            "optim.d.momentum=0.9", "arch.init=normal", "arch.init_std=0.1",
                                            "arch.d.in_scale=0.25", "arch.d_out=softplus"]
# every method conditional (labels of the ring's modes through G, D, the penalty's interpolates and fargan's
# chosen fakes), with fake labels drawn globally and sliced
CASES.update({f"{m}/conditional": BASE + o + ["conditional=true"] + (
    ["method.k=1", "loss.penalty=none"] if m == "fargan" else ["loss.penalty=gp", "loss.k=1"])
    for m, o in RECORDS_SMALL.items()})
# conditional image nets without batchnorm (a one-hot G input, a spectrally normalised projection D)
CASES["gan/conditional_images"] = ["device=cpu", "dataset=fashion_mnist", "synthetic_images=64", "arch=dcgan",
                                   "arch.g_width=4", "arch.d_width=4", "arch.g_batchnorm=false",
                                   "arch.d_batchnorm=false", "arch.spectral_norm=true", "batch_size=16",
                                   "metrics.inception=false", "metrics.classifier=false", "conditional=true",
                                   "optim=adam", "loss=hinge"]
# augmentation drawn globally and sliced, ADA's statistic averaged over ranks, LeCam's anchors, bCR's draws
AUGMENTED = CASES["gan/conditional_images"][:12] + ["optim=adam", "loss=hinge", "augment.interval=1",
                                                    "augment.speed_images=500"]
CASES["gan/ada_lecam"] = AUGMENTED + ["augment=ada", "augment.p=0.3", "loss.lecam=0.3", "loss.consistency.bcr_real=1"]
CASES["aw/diffaugment"] = AUGMENTED + ["method=aw", "augment=diffaugment"]
# sgan with the smooth ns loss: with hinge, one seed's 2-rank run crossed the hinge's kink where one process did
# not (a rounding difference turned into a different gradient), as fargan's top-k can
CASES["sgan/ada"] = AUGMENTED + ["method=sgan", "method.N=2", "augment=ada", "augment.p=0.3", "loss=ns",
                                 "augment.interval=2"]
# negative controls: each must differ from one process
CONTROLS: Dict[str, Tuple[List[str], str]] = {
    "control/aw_synced_at_step": (BASE + ["method=aw"], "aw_late"),
    "control/batchnorm_d_unsynced": (BASE + ["method=gan", "arch.d.batchnorm=true", "sync_bn=false"], ""),
}
STEPS = 3


class AWAveragedLate(AW):
    """The negative control of aw's rule: each rank forms its weights from its own gradients and
    scores, and only the combined step is averaged over ranks."""

    def rank_mean(self, tensors) -> None:
        pass

    def update(self, player, loss=None, log=False, grads=None):
        if grads is not None and self.shard.world > 1:
            self.shard.mean_([grads])
        return super().update(player, loss, log, grads)


def flatten(prefix: str, x, out: Dict[str, torch.Tensor]) -> None:
    if isinstance(x, torch.Tensor):
        if x.dtype != torch.uint8:  # generator states are compared as they are below
            out[prefix] = x.detach().clone()
        else:
            out[prefix] = x.clone()
    elif isinstance(x, dict):
        for k, v in x.items():
            flatten(f"{prefix}.{k}", v, out)
    elif isinstance(x, (list, tuple)):
        for i, v in enumerate(x):
            flatten(f"{prefix}.{i}", v, out)
    elif isinstance(x, (int, float, bool)):
        out[prefix] = torch.tensor(float(x))


def run_case(cfg: TrainConfig, shard: Shard, steps: int = STEPS) -> Dict[str, torch.Tensor]:
    cfg.check_world(shard.world)
    torch.manual_seed(cfg.seed)  # the nets' initial weights, as seed_everything does in a run
    model = build(cfg, shard=shard)
    method = model.method
    stream = Stream(model.data, cfg.batch_size, cfg.seed, model.device, 0, method.shard, labelled=cfg.conditional)
    out: Dict[str, torch.Tensor] = {}
    for step in range(1, steps + 1):
        stats = shard.mean_stats(method.step(stream, log=True))
        for k, v in stats.items():
            out[f"log{step}.{k}"] = v.detach().float().reshape(())
    flatten("method", method.state_dict(), out)
    flatten("stream", stream.state_dict(), out)
    return out


# an untrained dcgan on random pixels, scored with a 3 x 2 feature batches' protocol
IMAGE = ["device=cpu", "dataset=cifar10", "synthetic_images=64", "arch=dcgan", "method=gan",
         "arch.g_batchnorm=false", "arch.d_batchnorm=false", "batch_size=16", "metrics.num_samples=6",
         "metrics.batch_size=2", "metrics.num_real=6", "metrics.kid_subset_size=3", "metrics.prc=false",
         "metrics.classifier=false"]


def write_configs(out: str, weights: str) -> Dict[str, dict]:
    """Every case (and the image case, with the Inception weights file `weights`) composed once, as
    plain dicts, saved to <out>/cases.json for the ranks."""
    lines = {**CASES, **{name: o for name, (o, _) in CONTROLS.items()},
             "image_scores": IMAGE + [f"metrics.inception_weights={weights}"]}
    from conftest import compose_fast  # compose_train, each set of group choices composed once
    configs = {name: to_dict(compose_fast(*o)) for name, o in lines.items()}
    with open(os.path.join(out, "cases.json"), "w") as fh:
        json.dump(configs, fh)
    return configs


def image_scores(cfg: TrainConfig, shard: Shard, cache: str) -> Dict[str, torch.Tensor]:
    """FID / IS / KID, every rank extracting its share of 3 feature batches of 2 (2 + 1 over 2
    ranks) and rank 0 scoring; {} on the other ranks. `cache`: this process's reference cache."""
    from ganzoo.model import evaluate
    cfg.metrics.cache_dir = cache
    torch.manual_seed(cfg.seed)
    scores = evaluate(cfg, build(cfg, shard=shard))
    return {k: torch.tensor(float(v)) for k, v in scores.items() if isinstance(v, (int, float))}


def run_cases(shard: Shard, configs: Dict[str, dict], cache: str) -> Dict[str, Dict[str, torch.Tensor]]:
    """`configs`: write_configs' dicts, each loaded and checked as a composed config is."""
    def cfg(name: str) -> TrainConfig:
        return load_train_config(configs[name])
    results = {name: run_case(cfg(name), shard) for name in CASES}
    results["image_scores"] = image_scores(cfg("image_scores"), shard, cache)
    for name, (_, flag) in CONTROLS.items():
        if flag == "aw_late":
            aw_module.AW = AWAveragedLate  # what the aw record loads
        try:
            results[name] = run_case(cfg(name), shard)
        finally:
            aw_module.AW = AW
    results["traffic_bytes"] = {"bytes": torch.tensor(float(shard.traffic["bytes"]))}
    if shard.world > 1:
        results["checksum"] = checksum_check(shard)
    return results


def checksum_check(shard: Shard) -> Dict[str, torch.Tensor]:
    """check_same passes on equal weights and stops every rank when one rank's weights moved."""
    from ganzoo.distributed import RanksDiverged
    state = {"w": torch.arange(6.0)}
    shard.check_same(1, state)  # equal: passes
    if shard.rank == 1:
        state["w"][3] += 1e-6
    try:
        shard.check_same(2, state)
        raised = 0.0
    except RanksDiverged:
        raised = 1.0
    return {"raised": torch.tensor(raised)}


if __name__ == "__main__":
    from ganzoo import distributed
    torch.set_num_threads(1)
    shard = distributed.join("cpu")
    try:
        with open(os.path.join(sys.argv[1], "cases.json")) as fh:
            configs = json.load(fh)
        res = run_cases(shard, configs, cache=os.path.join(sys.argv[1], "cache"))
        torch.save(res, os.path.join(sys.argv[1], f"rank{shard.rank}.pt"))
    finally:
        distributed.leave()
