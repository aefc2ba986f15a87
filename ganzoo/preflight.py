"""Checks that must pass before Hydra makes a run folder. Kept free of torch imports
(torch alone takes ~2 s to import) so a bad command line fails in about a second."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

from .errors import CheckpointError, ConfigError
from .rundir import checkpoint_path


def _cuda() -> bool:
    import torch
    return torch.cuda.is_available()


def check_device(cfg) -> None:
    """What needs the machine the job runs on: the CLI runs it for local launchers, and every job
    runs it again first thing, so a sweep sent to a cluster from a login node without a GPU is
    checked on the node that has one."""
    if cfg.device == "cuda" and not _cuda():
        raise ConfigError("device=cuda but no CUDA device is visible; use device=auto or device=cpu")
    if cfg.amp != "off" and (cfg.device == "cpu" or not _cuda()):
        raise ConfigError(f"amp={cfg.amp} needs a CUDA device and none is in use; set amp=off")
    if cfg.amp == "bf16":
        import torch
        if not torch.cuda.is_bf16_supported():
            raise ConfigError("amp=bf16 needs a GPU with bfloat16 support (Ampere or newer); "
                              "use amp=fp16 or amp=off")


def memory_available() -> Optional[int]:
    """Bytes the kernel says a new allocation can have (MemAvailable); None where it does not say."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_counts(cfg) -> None:
    """A batch or an evaluation whose data tensors alone cannot fit this machine's memory is refused before
    anything is allocated (an out-of-memory kill on a shared node takes other jobs down). The estimate is a
    floor: float32 real and fake rows of one step (fargan's f*N0 candidates too) and the evaluation's
    samples, without the nets' activations."""
    from .config import data_shape, is_image
    if cfg.device == "cuda" or (cfg.device == "auto" and _cuda()):
        return  # the tensors live in the GPU's memory, whose own error is one line and kills no neighbour
    per_row = 4 * math.prod(data_shape(cfg.dataset))
    extra = cfg.method.f * cfg.method.N0 if cfg.method.name == "fargan" else 0
    step = (2 * cfg.batch_size + extra) * per_row
    evaluation = cfg.metrics.samples(is_image(cfg.dataset)) * per_row * 2  # the samples and a reference
    have = memory_available()
    for what, need in (("batch_size=" + str(cfg.batch_size), step), ("metrics.num_samples", evaluation)):
        if have is not None and need > 0.8 * have:
            raise ConfigError(f"{what} needs at least {need / 2**30:,.1f} GiB of memory for its data alone and "
                              f"{have / 2**30:,.1f} GiB is available here: lower it")


def preflight(cfg, device_here: bool = True) -> None:
    """`device_here`: the job runs on this machine (a local launcher), so its device is checked too."""
    from .config import is_image
    if device_here:
        check_device(cfg)
        check_counts(cfg)
    if is_image(cfg.dataset):
        if not cfg.synthetic_images:
            from .data.files import check_files
            check_files(cfg.dataset)
        if cfg.metrics.inception or cfg.metrics.prc:
            # load the pretrained extractors now: a missing weights file must stop the run in
            # seconds, not after hours of training
            from .metrics.fidelity import preflight as metrics_preflight
            metrics_preflight(cfg.metrics, "cpu")
    if cfg.resume and cfg.resume != "auto":  # auto: the job decides in its own folder
        path = checkpoint_path(Path(cfg.resume))
        if not path.is_file():
            raise CheckpointError(f"resume={cfg.resume}: no checkpoint at {path}; "
                                  f"pass the folder of a run that saved one")
