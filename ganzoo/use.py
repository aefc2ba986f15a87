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
from .data.images import to_uint8
from .errors import CheckpointError, ConfigError
from .preflight import checkpoint_path
from .train import build, evaluate, resolve_device
from .logger import format_metrics

log = logging.getLogger("ganzoo")



def load_run(run: str, which: str, device_name: str):
    """A run folder -> (its TrainConfig, the built model with the checkpoint's weights, step)."""
    run_dir = Path(run).expanduser()
    if not run_dir.is_dir():
        raise ConfigError(f"run={run}: no such folder; pass a run folder (e.g. outputs/train/<date>_<...>)")
    device = resolve_device(device_name)
    path = checkpoint_path(run_dir, which)
    if which == "best" and not path.is_file() and checkpoint_path(run_dir).is_file():
        raise CheckpointError(f"ckpt=best: {run_dir} has no {path.name}: it is written when an evaluation "
                              "scores fid or cfid, and none of this run's did (2-D runs never do); use ckpt=last")
    state = checkpoint.load(path)
    cfg = load_train_config(state["config"], saved=True)
    model = build(cfg, device)
    model.method.load_state_dict(state["method"])
    return cfg, model, int(state["step"]), run_dir


def sample_command(c) -> None:
    out = Path(c.out)
    if out.suffix not in (".npz", ".png"):
        raise ConfigError(f"out={c.out}: the file must end in .npz (arrays) or .png (a picture)")
    if c.n < 1:
        raise ConfigError(f"n must be >= 1, got {c.n}")
    cfg, model, step, _ = load_run(c.run, c.ckpt, c.device)
    gen = torch.Generator(device=model.device).manual_seed(c.seed)
    samples, index = model.method.sample(c.n, gen)
    image = is_image(cfg.dataset)
    if out.suffix == ".npz":
        # images as uint8 N x C x H x W (what FID tools read); 2-D points as float32 N x 2
        arr = to_uint8(samples).cpu().numpy() if image else samples.float().cpu().numpy()
        buf = io.BytesIO()
        np.savez(buf, samples=arr, generator=index.cpu().numpy().astype(np.int64))
        data = buf.getvalue()
    elif image:
        from PIL import Image
        from .plots import image_grid
        order = torch.argsort(index, stable=True)  # one generator's samples together
        rgb = image_grid([samples[order]], nrow=int(np.ceil(np.sqrt(c.n))))
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format="PNG")
        data = buf.getvalue()
    else:
        from PIL import Image
        from .plots import figure_to_array, scatter_2d
        real = model.data.sample(c.n, torch.Generator(device=model.device).manual_seed(c.seed + 1), model.device)
        fig = scatter_2d(real, samples, index, model.method.critic, title=f"{c.run} step {step}")
        buf = io.BytesIO()
        Image.fromarray(figure_to_array(fig)).save(buf, format="PNG")
        data = buf.getvalue()
    checkpoint.atomic_write(out, lambda fh: fh.write(data))
    print(f"wrote {c.n} samples from step {step} to {out}")


def eval_command(c) -> None:
    cfg, model, step, run_dir = load_run(c.run, c.ckpt, c.device)
    cfg.seed = c.seed if c.seed is not None else cfg.seed
    metrics = evaluate(cfg, model, parts=True)
    record = {"step": step, "source": "eval", "ckpt": c.ckpt, **metrics}
    with open(run_dir / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps(record) + "\n")
    print(f"step {step} ({c.ckpt}): {format_metrics(metrics)}")


def classifier_command(c) -> None:
    from .data import build_data
    from .data.files import check_files
    from .metrics.classifier import load_or_train_classifier

    check_files(c.dataset)
    data = build_data(c.dataset)
    clf = load_or_train_classifier(data, os.path.expanduser(c.metrics.cache_dir), device=resolve_device(c.device))
    print(f"{data.name} classifier: test accuracy {clf.accuracy:.4f}  ({clf.path})")
