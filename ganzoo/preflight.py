"""Checks that must pass before Hydra makes a run folder. Kept free of torch imports
(torch alone takes ~2 s to import) so a bad command line fails in about a second."""
from __future__ import annotations

from pathlib import Path

from .errors import CheckpointError, ConfigError


def checkpoint_path(run_dir: Path, which: str = "last") -> Path:
    return Path(run_dir) / "ckpt" / f"{which}.pt"


def preflight(cfg) -> None:
    if cfg.device == "cuda":
        import torch
        if not torch.cuda.is_available():
            raise ConfigError("device=cuda but no CUDA device is visible; use device=auto or device=cpu")
    if cfg.resume:
        path = checkpoint_path(Path(cfg.resume))
        if not path.is_file():
            raise CheckpointError(f"resume={cfg.resume}: no checkpoint at {path}; "
                                  f"pass the folder of a run that saved one")
