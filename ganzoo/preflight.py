"""Checks that must pass before Hydra makes a run folder. Kept free of torch imports
(torch alone takes ~2 s to import) so a bad command line fails in about a second."""
from __future__ import annotations

from pathlib import Path

from .errors import CheckpointError, ConfigError


def checkpoint_path(run_dir: Path, which: str = "last") -> Path:
    return Path(run_dir) / "ckpt" / f"{which}.pt"


def _cuda() -> bool:
    import torch
    return torch.cuda.is_available()


def preflight(cfg) -> None:
    from .config import is_image
    if cfg.device == "cuda" and not _cuda():
        raise ConfigError("device=cuda but no CUDA device is visible; use device=auto or device=cpu")
    if cfg.amp != "off" and (cfg.device == "cpu" or not _cuda()):
        raise ConfigError(f"amp={cfg.amp} needs a CUDA device and none is in use; set amp=off")
    if is_image(cfg.dataset):
        if not cfg.synthetic_images:
            from .data.files import check_files
            check_files(cfg.dataset)
        if cfg.metrics.inception or cfg.metrics.prc:
            # load the pretrained extractors now: a missing weights file must stop the run in
            # seconds, not after hours of training
            from .metrics.fidelity import preflight as metrics_preflight
            metrics_preflight(cfg.metrics, "cpu")
    if cfg.resume:
        path = checkpoint_path(Path(cfg.resume))
        if not path.is_file():
            raise CheckpointError(f"resume={cfg.resume}: no checkpoint at {path}; "
                                  f"pass the folder of a run that saved one")
