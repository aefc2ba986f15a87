"""Would data loading starve the training step? images/s of each input path against what a step consumes.

Input paths (ganzoo's Stream, as a run draws batches):
  - in memory: a set held as a tensor on the device (MNIST-like, CIFAR, STL), batched by index;
  - image folder: PNG files decoded by a DataLoader, at each --workers count.
Against: the images/s one training step consumes (D on B real images, n_dis 1) for `--arch` at batch B,
the figure the loader must beat. Median over repeats; the folder is written once to a temp dir.

    python scripts/bench.py --input [--batch 64] [--files 2048] [--workers 0 2] [--repeats 5] [--device cpu]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch


def write_folder(root: Path, n: int, size: int) -> None:
    from PIL import Image
    gen = torch.Generator().manual_seed(0)
    pixels = (torch.rand(n, size, size, 3, generator=gen) * 255).to(torch.uint8).numpy()
    (root / "class0").mkdir(parents=True)
    for i in range(n):
        Image.fromarray(pixels[i]).save(root / "class0" / f"{i:05d}.png")


def rate(stream, batch: int, draws: int, repeats: int, device: torch.device) -> float:
    """images/s of stream(batch), median over repeats (one draw first: a loader's start is not a rate)."""
    stream(batch)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(draws):
            x = stream(batch)
        if device.type == "cuda":
            torch.cuda.synchronize()
        del x
        times.append(time.perf_counter() - t)
    return batch * draws / statistics.median(times)


def step_rate(arch: str, batch: int, size: int, steps: int, repeats: int, device: torch.device) -> float:
    """images/s a training step of `arch` consumes (its real batch per step)."""
    from ganzoo.config import compose_train
    from ganzoo.methods.build import build_method
    from ganzoo.nets.build import build_nets
    cfg = compose_train("dataset=cifar10", f"arch={arch}", f"batch_size={batch}", f"device={device.type}",
                        f"dataset.resolution={size}", "metrics.inception=false", "method=gan")
    make_g, make_d = build_nets(cfg.arch, (3, size, size))
    method = build_method(cfg, make_g, make_d, device)
    real = torch.rand(batch, 3, size, size, device=device) * 2 - 1
    draw = lambda n=None: real  # noqa: E731  (the nets' cost alone)
    method.step(draw)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(steps):
            method.step(draw)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t) / steps)
    return batch / statistics.median(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--files", type=int, default=2048, help="images in the folder (PNG, 32x32 RGB)")
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    ap.add_argument("--draws", type=int, default=10, help="batches drawn per repeat")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--arch", default="dcgan")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    if min(args.batch, args.files, args.draws, args.repeats) < 1 or args.files < args.batch:
        ap.error("--batch, --draws, --repeats >= 1 and --files >= --batch")
    from ganzoo.config import ImageData
    from ganzoo.data import Stream, build_data
    device = torch.device(args.device)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        write_folder(Path(tmp), args.files, args.size)
        for workers in args.workers:
            cfg = ImageData(name="image_folder", root=tmp, channels=3, resolution=args.size, workers=workers,
                            in_memory=False)
            data = build_data(cfg)
            stream = Stream(data, args.batch, seed=0, device=device, workers=workers)
            rows.append((f"image folder (PNG), DataLoader, workers {workers}",
                         rate(stream, args.batch, args.draws, args.repeats, device)))
            stream.close()
        data = build_data(ImageData(name="image_folder", root=tmp, channels=3, resolution=args.size, workers=0,
                                    in_memory=True))
        stream = Stream(data, args.batch, seed=0, device=device)
        rows.append(("in memory (a tensor on the device)", rate(stream, args.batch, args.draws, args.repeats, device)))
    need = step_rate(args.arch, args.batch, args.size, max(1, args.draws // 2), args.repeats, device)
    print(f"input paths at batch {args.batch}, {args.size}x{args.size} RGB, device {device}, "
          f"{torch.get_num_threads()} torch threads; one training step of arch={args.arch} consumes "
          f"{need:,.0f} images/s\n")
    print("| input path | images/s | x what a step consumes |")
    print("|---|---|---|")
    for name, r in rows:
        print(f"| {name} | {r:,.0f} | {r / need:.2f} |")
    print(f"| training step (arch={args.arch}, n_dis 1) | {need:,.0f} | 1.00 |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
