"""`ganzoo sample` and `ganzoo eval`: use a trained run's checkpoint."""
from __future__ import annotations

import io
import json
import os
import logging
from pathlib import Path

import numpy as np
import torch

from . import checkpoint
from .config import is_image, load_train_config
from .errors import ConfigError
from .data.pixels import to_uint8
from .errors import CheckpointError
from .preflight import memory_available
from .rundir import check_run, checkpoint_path
from .model import build, evaluate, resolve_device
from .logger import format_metrics

log = logging.getLogger("ganzoo")



def load_run(run: str, which: str, device_name: str):
    """A run folder -> (its TrainConfig, the built model with the checkpoint's weights, step)."""
    run_dir = Path(run).expanduser()
    path = check_run(run, which)
    device = resolve_device(device_name)
    state = checkpoint.load(path)
    checkpoint.check_contents(state, path)
    cfg = load_train_config(state["config"], saved=True)
    model = build(cfg, device, train=False)
    try:
        model.method.load_state_dict(state["method"])
    except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise CheckpointError(f"checkpoint {path}'s contents do not fit the nets its config builds ({reason})") \
            from None
    return cfg, model, int(state["step"]), run_dir


def check_finite(samples: torch.Tensor, run: str, which: str, step: int) -> None:
    """Samples of a diverged generator (NaN or Inf weights) are refused, not written or scored."""
    bad = int((~torch.isfinite(samples)).flatten(1).any(1).sum()) if samples.numel() else 0
    if bad:
        path = checkpoint_path(Path(run).expanduser(), which)
        raise CheckpointError(f"run={run} ckpt={which}: the generator of {path} (step {step}) gives non-finite "
                              f"samples (NaN or Inf in {bad} of {len(samples)}): its weights diverged; "
                              f"nothing was written. Use an earlier checkpoint or train again")


def check_sample_memory(n: int, shape: tuple, image: bool, png: bool) -> None:
    """Refuse before drawing a sample count whose arrays cannot fit in memory: on a shared node an
    out-of-memory kill takes other jobs down with it. A picture holds all n at once; arrays (.npz) are
    drawn and written STREAM_ROWS at a time, so only one block need fit. The estimate counts the float32
    samples, their written copy (uint8 images / float32 points) and the file's bytes in memory, and the
    generator index."""
    from .errors import ConfigError
    size = int(np.prod(shape))
    per_sample = size * 4 + (size if image else size * 4) * 2 + 16
    if png:  # a picture of n samples: one grid of n images, or a scatter of n points
        limit = 10_000 if image else 1_000_000
        if n > limit:
            raise ConfigError(f"n={n} is too many for one picture (at most {limit:,} {'images' if image else 'points'}); "
                              f"write arrays instead: out=samples.npz")
    held = n if png else min(n, STREAM_ROWS)
    need, have = held * per_sample, memory_available()
    if have is not None and need > 0.8 * have:
        raise ConfigError(f"n={n:,} samples need about {need / 2**30:,.1f} GiB of memory and {have / 2**30:,.1f} GiB "
                          f"is available: draw at most n={int(0.8 * have // per_sample):,} per command (seed= draws "
                          f"another set)")


# rows drawn and written at a time when an .npz holds more (a multiple of the methods' own sampling chunk,
# so for one-generator methods the streamed file equals the one drawn at once)
STREAM_ROWS = 16 * 4096


def check_disk(path: Path, n: int, shape: tuple, image: bool) -> None:
    """Refuse before drawing an .npz the disk cannot hold (nothing half-written is left either way)."""
    import shutil
    from .errors import ConfigError
    need = n * (int(np.prod(shape)) * (1 if image else 4) + 8) + 4096
    free = shutil.disk_usage(path.parent if path.parent.exists() else Path(".")).free
    if need > free:
        raise ConfigError(f"out={path}: n={n:,} samples need about {need / 2**30:,.2f} GiB on disk and "
                          f"{free / 2**30:,.2f} GiB is free there; nothing was written")


def write_npz(fh, n: int, draw, convert) -> None:
    """An .npz with `samples` and `generator` (what np.savez writes), drawn block by block: draw(k) ->
    (samples, index) of k rows; convert(samples) -> the stored array. Only one block is in memory; the
    generator indices wait in a temporary file until the samples are written."""
    import tempfile
    import zipfile
    from numpy.lib import format as npy
    with zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED, allowZip64=True) as zf, \
            tempfile.TemporaryFile() as indices:
        with zf.open("samples.npy", "w", force_zip64=True) as out:
            done = 0
            while done < n:
                k = min(STREAM_ROWS, n - done)
                samples, index = draw(k)
                arr = np.ascontiguousarray(convert(samples))
                if done == 0:
                    npy.write_array_header_2_0(out, {"descr": npy.dtype_to_descr(arr.dtype), "fortran_order": False,
                                                     "shape": (n, *arr.shape[1:])})
                out.write(arr.tobytes())
                indices.write(np.ascontiguousarray(index.cpu().numpy().astype(np.int64)).tobytes())
                done += k
        with zf.open("generator.npy", "w", force_zip64=True) as out:
            npy.write_array_header_2_0(out, {"descr": npy.dtype_to_descr(np.dtype(np.int64)), "fortran_order": False,
                                             "shape": (n,)})
            indices.seek(0)
            while block := indices.read(1 << 24):
                out.write(block)


def sample_command(c) -> None:
    # before the checkpoint is read and the samples drawn: values, the run's checkpoint, out='s folder
    c.check()
    c.ready()
    out = Path(c.out).expanduser()
    cfg, model, step, _ = load_run(c.run, c.ckpt, c.device)
    image = is_image(cfg.dataset)
    check_sample_memory(c.n, tuple(model.data.shape), image, out.suffix == ".png")
    gen = torch.Generator(device=model.device).manual_seed(c.seed)
    classes = cfg.num_classes()
    if c.label is not None and not c.label < max(classes, 1):
        raise ConfigError(f"class={c.label}: {c.run} is " + (f"conditional on {classes} classes (0..{classes - 1})"
                                                            if classes else "not a conditional run"))
    drawn = [0]

    def asked(k: int):
        """The classes of the next k samples: class= for all, else 0, 1, ..., C-1 in turn."""
        if not classes:
            return None
        start, drawn[0] = drawn[0], drawn[0] + k
        y = torch.full((k,), c.label) if c.label is not None else torch.arange(start, start + k) % classes
        return y.to(model.device)

    if out.suffix == ".npz":
        check_disk(out, c.n, tuple(model.data.shape), image)

        def draw(k: int):
            samples, index = model.method.sample(k, gen, y=asked(k))
            check_finite(samples, c.run, c.ckpt, step)
            return samples, index
        # images as uint8 N x C x H x W (what FID tools read); 2-D points as float32 N x 2
        convert = (lambda x: to_uint8(x).cpu().numpy()) if image else (lambda x: x.float().cpu().numpy())
        checkpoint.atomic_write(out, lambda fh: write_npz(fh, c.n, draw, convert))  # one draw up to STREAM_ROWS
        print(f"wrote {c.n} samples from step {step} to {out}")
        return
    y = asked(c.n)
    samples, index = model.method.sample(c.n, gen, y=y)
    check_finite(samples, c.run, c.ckpt, step)
    if image:
        from PIL import Image
        from .plots import image_grid
        # one generator's samples together; a conditional run's classes in rows
        order = torch.argsort(index if y is None or c.label is not None else y.cpu() * 1000 + index, stable=True)
        per_row = -(-c.n // classes) if y is not None and c.label is None else int(np.ceil(np.sqrt(c.n)))
        rgb = image_grid([samples[order]], nrow=per_row)
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format="PNG")
        data = buf.getvalue()
    else:
        from PIL import Image
        from .plots import figure_to_array, scatter_2d
        real = model.data.sample(c.n, torch.Generator(device=model.device).manual_seed(c.seed + 1), model.device)
        fig = scatter_2d(real, samples, index, model.method.surface, title=f"{c.run} step {step}")
        buf = io.BytesIO()
        Image.fromarray(figure_to_array(fig)).save(buf, format="PNG")
        data = buf.getvalue()
    checkpoint.atomic_write(out, lambda fh: fh.write(data))
    print(f"wrote {c.n} samples from step {step} to {out}")


def eval_command(c) -> None:
    c.check()
    c.ready()
    cfg, model, step, run_dir = load_run(c.run, c.ckpt, c.device)
    if c.seed is not None and c.seed != cfg.seed:  # the evaluation draws its samples from this seed
        cfg.seed = c.seed
        model.evaluator = model.data.evaluator(cfg.metrics, cfg.seed, model.device)
    # a diverged generator would score NaN and leave that number in metrics.jsonl: refuse it first
    probe, _ = model.method.sample(64, torch.Generator(device=model.device).manual_seed(cfg.seed))
    check_finite(probe, c.run, c.ckpt, step)
    metrics = evaluate(cfg, model, parts=True)
    record = {"step": step, "source": "eval", "ckpt": c.ckpt, "seed": cfg.seed, **metrics}
    append_line(run_dir / "metrics.jsonl", json.dumps(record))
    print(f"step {step} ({c.ckpt}, seed {cfg.seed}): {format_metrics(metrics)}")


def append_line(path: Path, line: str) -> None:
    """Append one line, unbuffered; if a write fails (a full disk), the file is cut back to its old
    length, so no torn line is left for a reader."""
    data = memoryview((line + "\n").encode())
    with open(path, "ab", buffering=0) as fh:
        size = fh.seek(0, os.SEEK_END)
        try:
            while data:
                data = data[fh.write(data):]
        except OSError as exc:
            fh.truncate(size)
            exc.filename = exc.filename or str(path)
            raise


def classifier_command(c) -> None:
    from .data import build_data
    from .metrics.classifier import load_or_train_classifier

    c.ready()  # the dataset's files, a writable cache folder
    data = build_data(c.dataset)
    clf = load_or_train_classifier(data, os.path.expanduser(c.metrics.cache_dir), device=resolve_device(c.device))
    print(f"{data.name} classifier: test accuracy {clf.accuracy:.4f}  ({clf.path})")
