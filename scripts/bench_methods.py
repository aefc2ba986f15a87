"""Step time of every method divided by the baseline's, measured side by side in one run.

For each setting (a 2-D MLP config and a Fashion-MNIST DCGAN config) every method
is built from its config exactly as `ganzoo train` builds it, warmed up, and then
timed over --steps calls of method.step (the loop's own per-step cost is the same
for every method and is measured by scripts/bench.py). Repeats are interleaved
(every method once per repeat, in a rotating order) so load bursts on a shared
machine hit all alike; the ratio printed is the median over repeats of
(method time / baseline time in the same repeat).

fargan's overhead is set against what its extra work predicts: per D step it
generates and scores f*N0 candidate fakes without gradient, timed here alone
(`predicted` = 1 + that time / baseline step time).

Multi-player methods are timed both as a batched stack and as a Python list of
players where the arch allows a stack (2-D MLPs); `auto` picks the stack there.

With --threads 1,2 every repeat times each method at each thread count, and a last
table sets each method at its faster count against the baseline at its own faster
count (torch's default is one thread per core; small steps can run slower with more
threads than with 1, large ones faster).

Usage: python scripts/bench_methods.py [--repeats 5] [--steps 200] [--threads 1|1,2] [--only 2d|toys|images]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from ganzoo import checkpoint
from ganzoo.config import compose_train
from ganzoo.data import Stream
from ganzoo.data.files import DEBIAN_FASHION_MNIST
from ganzoo.methods.gan import GAN
from ganzoo.model import build

TOY = ["dataset=ring", "arch=mlp", "batch_size=256"]
IMAGES = ["dataset=fashion_mnist", "arch=dcgan", "batch_size=64", "metrics.inception=false",
          "metrics.classifier=false"]

METHODS = {
    "gan": [],
    "gan+r1": ["loss.penalty=r1"],  # fargan's N0=0 point: the baseline with fargan's own penalty
    "fargan": ["method=fargan"],  # f=8, N0=32
    "aw": ["method=aw"],
    "stackelberg I=8 stack": ["method=stackelberg", "method.I=8", "method.players=stack"],
    "stackelberg I=8 list": ["method=stackelberg", "method.I=8", "method.players=list"],
    "microbatch K=8 stack": ["method=microbatch", "method.K=8", "method.players=stack"],
    "microbatch K=8 list": ["method=microbatch", "method.K=8", "method.players=list"],
    "sgan N=5": ["method=sgan", "method.N=5"],
}


def setup(base, extra):
    cfg = compose_train("device=cpu", *base, *extra)
    checkpoint.seed_everything(cfg.seed)
    model = build(cfg)
    return model.method, Stream(model.data, cfg.batch_size, cfg.seed, model.device)


def time_steps(method, stream, steps: int) -> float:
    t = time.perf_counter()
    for i in range(steps):
        method.step(stream, log=(i % 50 == 0))
    return (time.perf_counter() - t) / steps


def candidate_time(method, stream, steps: int) -> float:
    """One D step's extra work in fargan: its D batch (M fakes and f*N0 candidates in one G pass, the
    candidates scored without gradient) less the baseline's (M fakes)."""
    def per_call(d_batch) -> float:
        t = time.perf_counter()
        for _ in range(steps):
            d_batch(method, stream, False)
        return (time.perf_counter() - t) / steps
    return per_call(type(method).d_batch) - per_call(GAN.d_batch)


# the papers' own toy players, each against the baseline on the same arch
PAPER_TOYS = [
    ("stackelberg_toy (G 2-16-2 BN, D 2-512-256-1), ring r=0.8, batch 64",
     ["dataset=ring", "dataset.radius=0.8", "dataset.std=0.01", "arch=stackelberg_toy", "batch_size=64"],
     {"gan": [], "stackelberg I=8 stack": METHODS["stackelberg I=8 stack"],
      "stackelberg I=8 list": METHODS["stackelberg I=8 list"]}),
    ("microbatch_toy (G 256-128-128-2, D 2-128-1), ring, batch 512",
     ["dataset=ring", "arch=microbatch_toy", "batch_size=512"],
     {"gan": [], "microbatch K=8 stack": METHODS["microbatch K=8 stack"],
      "microbatch K=8 list": METHODS["microbatch K=8 list"]}),
]


def print_rows(times: dict, skip_base: bool = False) -> None:
    """One row per method: median ms/step, and its per-repeat ratios over the baseline's ("gan")."""
    for m, ts in times.items():
        if skip_base and m == "gan":
            continue
        ratios = [a / b for a, b in zip(ts, times["gan"])]
        print(f"{m:26s} {1e3 * statistics.median(ts):9.2f} {statistics.median(ratios):7.2f} "
              f"{min(ratios):7.2f}-{max(ratios):.2f}")


def bench(name: str, base, methods, repeats: int, steps: int, table=METHODS, threads=(1,)) -> None:
    built = {m: setup(base, table[m]) for m in methods}
    for m, (method, stream) in built.items():
        time_steps(method, stream, max(2, steps // 10))  # warm-up
    times = {(m, t): [] for m in methods for t in threads}
    extra = []
    for r in range(repeats):
        order = methods[r % len(methods):] + methods[:r % len(methods)]
        for t in threads:  # every thread count in every repeat: a burst of load hits them alike
            torch.set_num_threads(t)
            for m in order:
                times[m, t].append(time_steps(*built[m], steps))
        if "fargan" in built:
            extra.append(candidate_time(*built["fargan"], steps))
    torch.set_num_threads(threads[0])
    for t in threads:
        print(f"\n{name}: {repeats} repeats x {steps} steps, torch threads {t}")
        print(f"{'method':26s} {'ms/step':>9s} {'ratio':>7s} {'ratio range':>15s}")
        print_rows({m: times[m, t] for m in methods})
    if len(threads) > 1:
        # best against best: per repeat, each method at its faster thread count over the baseline at its own
        print(f"each at its faster thread count of {list(threads)}:")
        best = {m: [min(ts) for ts in zip(*(times[m, t] for t in threads))] for m in methods}
        print_rows(best, skip_base=True)
    if extra:
        t = threads[0]
        r1 = times["gan+r1", t]
        measured = statistics.median([a / b for a, b in zip(times["fargan", t], r1)])
        predicted = statistics.median([1 + e / b for e, b in zip(extra, r1)])
        print(f"fargan / gan+r1 (same penalty, {t} threads): measured {measured:.2f}, predicted from its f*N0 "
              f"candidate passes alone {predicted:.2f} ({1e3 * statistics.median(extra):.2f} ms per D step)")
    sys.stdout.flush()


def threads_list(text: str):
    try:
        counts = tuple(int(t) for t in text.split(","))
    except ValueError:
        counts = ()
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"thread counts are whole numbers >= 1 such as 1 or 1,2, got {text!r}")
    return counts


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=200, help="timed steps per repeat on 2-D data (images: /40)")
    ap.add_argument("--threads", type=threads_list, default=(1,),
                    help="torch threads, one count or a list such as 1,2 timed side by side "
                         "(default 1: stable on a shared machine)")
    ap.add_argument("--only", choices=["2d", "toys", "images"], default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads[0])
    if args.only in (None, "2d"):
        bench("2-D ring, arch=mlp (G and D 128x3), batch 256", TOY, list(METHODS), args.repeats, args.steps,
              threads=args.threads)
    if args.only in (None, "toys"):
        for name, base, table in PAPER_TOYS:
            bench(name, base, list(table), args.repeats, args.steps, table, args.threads)
    if args.only in (None, "images"):
        if not DEBIAN_FASHION_MNIST.is_dir():
            print("\nFashion-MNIST not found (apt-get install dataset-fashion-mnist): image bench skipped")
            return
        image_methods = [m for m in METHODS if not m.endswith("stack")]
        bench("Fashion-MNIST 28x28, arch=dcgan, batch 64", IMAGES, image_methods, args.repeats,
              max(2, args.steps // 40), threads=args.threads)


if __name__ == "__main__":
    main()
