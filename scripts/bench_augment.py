"""Step time of each augmentation and D-loss regulariser divided by augment=none's, side by side in one run.

The baseline GAN with DCGAN's nets on 32x32 RGB images (CIFAR-10's shape, random pixels: the cost does not
depend on the content), batch 64, built from its config as `ganzoo train` builds it; every setting is
warmed up, then timed over --steps calls of method.step. Repeats are interleaved (every setting once per
repeat, in a rotating order) so load bursts hit all alike; the ratio printed is the median over repeats of
(setting time / none's time in the same repeat). ADA is timed at p = 0 (its pipeline still runs: it
selects the untouched images back) and at p = 0.5.

Usage: python scripts/bench_augment.py [--repeats 5] [--steps 10] [--threads 1]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from ganzoo import checkpoint
from ganzoo.config import compose_train
from ganzoo.data import Stream
from ganzoo.model import build

BASE = ["device=cpu", "dataset=cifar10", "synthetic_images=256", "arch=dcgan", "batch_size=64", "method=gan",
        "metrics.inception=false", "metrics.classifier=false"]
SETTINGS = {
    "none": [],
    "diffaugment (color, translation, cutout)": ["augment=diffaugment"],
    "diffaugment translation": ["augment=diffaugment", "augment.policy=[translation]"],
    "ada p=0 (bgc)": ["augment=ada", "augment.p=0", "augment.adaptive=false"],
    "ada p=0.5 (bgc)": ["augment=ada", "augment.p=0.5", "augment.adaptive=false"],
    "loss.lecam=0.3": ["loss.lecam=0.3"],
    "bCR (10, 10)": ["loss.consistency.bcr_real=10", "loss.consistency.bcr_fake=10"],
    "zCR (5, 0.5)": ["loss.consistency.zcr_dis=5", "loss.consistency.zcr_gen=0.5"],
}


def setup(overrides):
    cfg = compose_train(*BASE, *overrides)
    checkpoint.seed_everything(0)
    model = build(cfg)
    stream = Stream(model.data, cfg.batch_size, cfg.seed, model.device)
    model.method.step(stream)  # warm-up
    return model.method, stream


def timed(method, stream, steps: int) -> float:
    t = time.perf_counter()
    for _ in range(steps):
        method.step(stream)
    return (time.perf_counter() - t) / steps


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1: stable on a shared machine)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    built = {name: setup(over) for name, over in SETTINGS.items()}
    names = list(SETTINGS)
    times = {name: [] for name in names}
    for r in range(args.repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            times[name].append(timed(*built[name], args.steps))
    print(f"torch {torch.__version__}, {args.threads} thread(s); baseline GAN, arch=dcgan, 32x32 RGB, batch 64; "
          f"{args.repeats} repeats of {args.steps} steps\n")
    print("| setting | ms/step (median) | / none (median ratio) |\n|---|---|---|")
    for name in names:
        ratio = statistics.median(t / n for t, n in zip(times[name], times["none"]))
        print(f"| {name} | {statistics.median(times[name]) * 1e3:.0f} | {ratio:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
