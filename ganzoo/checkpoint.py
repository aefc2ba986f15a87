"""Atomic checkpoints and every RNG state needed for exact resume."""
from __future__ import annotations

import hashlib

import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch

from .errors import CheckpointError

FORMAT = 1


def atomic_write(path: Path, write) -> None:
    """Write through a temp file in the same folder, fsync, then rename over `path`:
    a kill at any moment leaves either the old file or the new one, never half of one.
    A failed write (a full disk, no permission) raises the OSError with `path` as its filename, also
    where torch.save has turned it into its own RuntimeError ("unexpected pos ..."), and leaves no
    temp file (errors.os_error_message makes it one line)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        if not exc.filename or str(exc.filename).startswith(str(path.parent) + os.sep + "."):
            exc.filename = str(path)  # mkstemp names its random temp file; the user named `path`
        raise
    fh = None
    try:
        with os.fdopen(fd, "wb") as raw:
            fh = _Recording(raw)
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        error = exc if isinstance(exc, OSError) else getattr(fh, "error", None)
        if error is None:
            raise
        error.filename, error.filename2 = str(path), None
        if error is exc:
            raise
        raise error from None


class _Recording:
    """A file whose write() remembers the OSError it raised: torch.save reports a failed write (ENOSPC)
    as a RuntimeError of its own, without the OSError."""

    def __init__(self, fh):
        self._fh = fh
        self.error = None

    def write(self, data):
        try:
            return self._fh.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def __getattr__(self, name):
        return getattr(self._fh, name)


def save(path: Path, state: dict) -> None:
    atomic_write(path, lambda fh: torch.save(state, fh))


def load(path: Path) -> dict:
    """A checkpoint, every tensor on the CPU whatever device wrote it. The loaders move each part
    where it belongs: load_state_dict copies weights onto the nets' device and optimizer state onto
    its parameters' (leaving Adam's step counters on the host, where a non-fused Adam reads them
    without a sync), and RNG states stay CPU ByteTensors, the only form set_state takes."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, bad pickle, foreign object: all mean "unusable"
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"checkpoint {path} is corrupt or truncated ({reason}); "
            f"delete it and resume from an older copy, or start a new run") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path} is not a ganzoo checkpoint (format {FORMAT})")
    return state


def rng_state() -> dict:
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached": float(np_state[4])},
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        # the current device's only: a run resumes on a machine with fewer GPUs
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available():
        if isinstance(cuda, (list, tuple)):  # checkpoints before v2 saved every device's state
            cuda = cuda[min(torch.cuda.current_device(), len(cuda) - 1)]
        torch.cuda.set_rng_state(cuda)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def sha256_file(path) -> str:
    """A file's sha256, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
