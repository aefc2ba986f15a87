"""Image-side speed figures, measured on the machine it runs on.

1. images/s of one training step (n_dis=1: D on 64 real + 64 fake, G on 64 fake, forward and
   backward) for `dcgan` and `fargan_resnet32` at 32x32 RGB, batch 64, with and without
   `compile=true` (torch.compile of the nets, in place). Median over repeats, after warm-up.
2. The time of a first vs a second FID evaluation on Fashion-MNIST (the second must hit the
   reference-feature cache): with the offline classifier extractor (cfid) on the whole 60k
   train split, and with Inception using a RANDOMLY INITIALISED weights file made here (no
   internet; it times the plumbing and the network's cost, not meaningful FID numbers) on
   `--inception-real` real images.

Usage:  python scripts/bench_images.py [--repeats 5] [--steps 5] [--no-compile] [--no-fid]
                                      [--inception-real 200] [--threads N]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from ganzoo.config import compose_train

sys.path.insert(0, str(Path(__file__).resolve().parent))


compose = compose_train


def step_time(arch: str, batch: int, steps: int, repeats: int, compiled: bool) -> float:
    from ganzoo.methods import build_method
    from ganzoo.nets.build import build_nets

    cfg = compose("dataset=cifar10", f"arch={arch}", f"batch_size={batch}", "device=cpu",
                  "metrics.inception=false", f"compile={str(compiled).lower()}")
    make_g, make_d = build_nets(cfg.arch, (3, 32, 32))
    method = build_method(cfg, make_g, make_d, torch.device("cpu"))
    if compiled:
        for net in method.networks():
            net.compile()
    real = torch.rand(batch, 3, 32, 32) * 2 - 1
    draw = lambda n=None: real  # noqa: E731  (the data path is timed in bench.py; this is the nets)
    for _ in range(3 if compiled else 1):  # compilation happens on the first calls
        method.step(draw)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(steps):
            method.step(draw)
        times.append((time.perf_counter() - t) / steps)
    return statistics.median(times)


def fid_times(inception: bool, num_real, num_samples: int, cache: Path):
    from ganzoo.config import ImageData, MetricsConfig
    from ganzoo.data import build_data
    from ganzoo.metrics.fidelity import ImageMetrics, write_random_inception_weights

    data = build_data(ImageData(name="fashion_mnist", channels=1, resolution=28, num_classes=10))
    weights = str(write_random_inception_weights(cache / "random-inception.pth")) if inception else None
    cfg = MetricsConfig(num_samples=num_samples, inception=inception, inception_weights=weights,
                        classifier=not inception, num_real=num_real, cache_dir=str(cache))

    def sample(n, generator):  # stand-in generator: noise images (the cost is the extractor's)
        x = torch.rand(n, 1, 28, 28, generator=generator, device=generator.device) * 2 - 1
        return x, torch.zeros(n, dtype=torch.long)

    metrics = ImageMetrics(cfg, data, "cpu").prepare()  # classifier trained/loaded outside the timing
    out = []
    for _ in range(2):
        t = time.perf_counter()
        values = metrics(sample, seed=0)
        out.append(time.perf_counter() - t)
    key = "fid" if inception else "cfid"
    return out, values[key], metrics.cache.hits, metrics.cache.misses


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--no-fid", action="store_true")
    ap.add_argument("--inception-real", type=int, default=200)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, "
          f"median of {args.repeats} x {args.steps} steps")
    print(f"{'arch':<18} {'compile':<8} {'ms/step':>9} {'images/s':>9}")
    for arch in ("dcgan", "fargan_resnet32"):
        variants = [False] if args.no_compile or arch != "dcgan" else [False, True]
        for compiled in variants:
            steps = args.steps if arch == "dcgan" else max(1, args.steps // 3)
            try:
                t = step_time(arch, args.batch, steps, args.repeats if arch == "dcgan" else 3, compiled)
            except Exception as exc:  # e.g. no C++ compiler for inductor
                print(f"{arch:<18} {str(compiled):<8} failed: {type(exc).__name__}: {str(exc)[:80]}")
                continue
            # images per second of training: the step consumes `batch` real images
            print(f"{arch:<18} {str(compiled):<8} {t * 1e3:9.1f} {args.batch / t:9.1f}")
    if args.no_fid:
        return
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp)
        (first, second), value, hits, misses = fid_times(False, None, 5000, cache)
        print(f"cfid (classifier features, 60k reference, 5k samples): first {first:.1f} s, "
              f"second {second:.1f} s  (reference cache: {misses} computed, {hits} reused)")
        n = args.inception_real
        (first, second), value, hits, misses = fid_times(True, n, n, cache)
        print(f"fid (random-weight Inception, {n} real, {n} samples): first {first:.1f} s, "
              f"second {second:.1f} s  (reference cache: {misses} computed, {hits} reused)")


if __name__ == "__main__":
    main()
