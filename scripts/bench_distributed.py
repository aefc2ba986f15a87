"""Data parallelism's cost on this machine: step time of 2 gloo ranks vs 1 process, and the bytes
each method all-reduces or gathers per step.

Both sides train the same run (the global batch; 2 ranks hold half each): the 2-D MLP pair on
the ring and dcgan (without batchnorm) on 32x32 random pixels (synthetic_images), baseline gan.
A side is a fresh process (torchrun --standalone --nproc-per-node=2 for the ranks) that builds
the model, warms up 5 steps and times --steps steps; the sides are interleaved per repeat and
each figure is a median over repeats. On one CPU the ranks share the cores the single process
would use, so the ratio is communication and duplicated work (every rank draws the global
noise), not a speed-up: on GPUs each rank has its own.

The bytes: every all-reduce and all-gather of a 2-rank run per generator step (gradients, aw's
gradients and scores, fargan's candidates; no log steps are timed, so logged scalars are not
counted), for each method on the 2-D MLP.

Usage:  python scripts/bench.py --distributed [--repeats 5] [--steps 100] [--archs mlp,dcgan] [--traffic gan,aw,...]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ganzoo.methods.schemas import METHODS as RECORDS

ARCHS = {
    "mlp": ["dataset=ring", "arch=mlp", "optim=adam", "batch_size=256"],
    # without batchnorm: torch's SyncBatchNorm needs CUDA, and CPU ranks refuse per-rank statistics
    "dcgan": ["dataset=cifar10", "synthetic_images=256", "arch=dcgan", "arch.g_batchnorm=false",
              "arch.d_batchnorm=false", "batch_size=64", "metrics.inception=false", "metrics.prc=false"],
}
METHODS = {name: record.overrides() for name, record in RECORDS.items()}  # every method's small instance


def worker(out: str, overrides: list, steps: int) -> None:
    """One side: time `steps` generator steps after a warm-up; rank 0 writes the result."""
    import torch
    from ganzoo import distributed
    from ganzoo.config import compose_train
    from ganzoo.data import Stream
    from ganzoo.model import build
    shard = distributed.join("cpu")
    try:
        cfg = compose_train("device=cpu", "loss.penalty=none", *overrides)
        torch.manual_seed(0)
        model = build(cfg, shard=shard)
        method = model.method
        stream = Stream(model.data, cfg.batch_size, cfg.seed, model.device, 0, method.shard)
        for _ in range(5):
            method.step(stream)
        shard.barrier()
        before = shard.traffic["bytes"]
        t0 = time.perf_counter()
        for _ in range(steps):
            method.step(stream)
        shard.barrier()
        seconds = time.perf_counter() - t0
        if shard.leader:
            Path(out).write_text(json.dumps({"ms": seconds / steps * 1e3,
                                             "bytes": (shard.traffic["bytes"] - before) / steps}))
    finally:
        distributed.leave()


RANK_VARIABLES = {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "MASTER_ADDR", "MASTER_PORT",
                  "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_STEP_NUM_TASKS"}


def side(ranks: int, threads: int, overrides: list, steps: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "result.json")
        args = [__file__, "--worker", out, "--steps", str(steps), "--", *overrides]
        # a fresh launch: no rank variables of a run this process may be part of (torchrun's, SLURM's)
        env = {k: v for k, v in os.environ.items() if k not in RANK_VARIABLES and not k.startswith("TORCHELASTIC_")}
        env["OMP_NUM_THREADS"] = str(threads)
        if ranks > 1:
            cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}", *args]
        else:
            cmd = [sys.executable, *args]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[1:4])} ... failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n"
                               f"{proc.stderr[-4000:]}")
        return json.loads(Path(out).read_text())


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--archs", default=",".join(ARCHS), help=f"comma-separated, of {', '.join(ARCHS)}")
    ap.add_argument("--traffic", default=",".join(METHODS), help="comma-separated methods whose bytes to count")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("overrides", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args.worker, args.overrides, args.steps)
    archs, methods = args.archs.split(","), args.traffic.split(",")
    unknown = sorted(set(archs) - set(ARCHS)) + sorted(set(methods) - set(METHODS))
    if unknown:
        ap.error(f"unknown: {', '.join(unknown)}; archs: {', '.join(ARCHS)}; methods: {', '.join(METHODS)}")

    print(f"{os.cpu_count()} CPU cores; {args.repeats} interleaved repeats of {args.steps} steps; median ms/step")
    head = (f"{'arch':>6}  {'1 proc x1 thr':>13}  {'1 proc x2 thr':>13}  {'2 ranks x1 thr':>14}  "
            f"{'2r / 1p x1':>10}  {'2r / 1p x2':>10}")
    print(head)
    print("-" * len(head))
    for arch in archs:
        overrides = ARCHS[arch]
        runs = {"p1": [], "p2": [], "r2": []}
        for _ in range(args.repeats):
            runs["p1"].append(side(1, 1, overrides + METHODS["gan"], args.steps)["ms"])
            runs["r2"].append(side(2, 1, overrides + METHODS["gan"], args.steps)["ms"])
            runs["p2"].append(side(1, 2, overrides + METHODS["gan"], args.steps)["ms"])
        m = {k: statistics.median(v) for k, v in runs.items()}
        print(f"{arch:>6}  {m['p1']:>13.2f}  {m['p2']:>13.2f}  {m['r2']:>14.2f}  {m['r2'] / m['p1']:>10.2f}  "
              f"{m['r2'] / m['p2']:>10.2f}", flush=True)

    print("\nbytes all-reduced per generator step, 2 ranks, 2-D MLP (G 2-128-128-128-2, D 2-128-128-128-1)")
    for name in methods:
        b = side(2, 1, ARCHS["mlp"] + METHODS[name], 10)["bytes"]
        print(f"  {name:12s} {b / 1e3:9.1f} kB")


if __name__ == "__main__":
    main()
