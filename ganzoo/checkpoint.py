"""Atomic checkpoints and every RNG state needed for exact resume."""
from __future__ import annotations

import hashlib
import pickle
import random
import zipfile
from pathlib import Path

import numpy as np
import torch

from .errors import CheckpointError
# torch-free, for `ganzoo report`; here too, where the checkpoints and caches import it from
from .rundir import atomic_write  # noqa: F401

FORMAT = 1


def torch_save(obj, fh) -> None:
    """torch.save with a CRC-32 of every record of its zip file (torch's default; turned back on here if a
    caller turned it off for speed): the checksums `verify` checks on load."""
    get = getattr(torch.serialization, "get_crc32_options", None)
    if get is None or get():
        torch.save(obj, fh)
        return
    torch.serialization.set_crc32_options(True)
    try:
        torch.save(obj, fh)
    finally:
        torch.serialization.set_crc32_options(False)


_DOS_DIRECTORY = 0x10


def verify(source) -> None:
    """Check a file torch.save wrote (a path, or a seekable binary file, left where it was) against the
    checksums inside it; raise ValueError naming the damaged part.

    torch's zip format stores a CRC-32 of every record (the pickle, each tensor's bytes, ...), written
    with the file in the same atomic rename, but torch.load never checks it: damaged tensor bytes load as
    wrong numbers. Python's zipfile checks a record's CRC-32 when it reads the record to its end, so this
    reads them all. It covers every file torch >= 1.6 wrote, whichever ganzoo version wrote it; bytes
    it does not cover (timestamps, alignment padding) are bytes torch.load does not use. Cost: one more
    read of the file, usually from the page cache."""
    pos = source.tell() if hasattr(source, "read") else None
    try:
        with zipfile.ZipFile(source) as zf:
            for info in zf.infolist():
                # torch's zip reader (miniz) takes a record with the DOS directory attribute as an empty
                # folder and hands torch.load uninitialised memory for its tensor; zipfile ignores the bit
                if info.external_attr & _DOS_DIRECTORY or info.filename.endswith("/"):
                    raise ValueError(f"damaged bytes: record {info.filename} is marked as a folder")
                try:
                    with zf.open(info) as fh:
                        while fh.read(1 << 24):
                            pass
                except zipfile.BadZipFile:
                    raise ValueError(f"damaged bytes: {info.filename} does not match its CRC-32") from None
    except zipfile.BadZipFile as exc:
        raise ValueError(f"not a whole zip file: {exc}") from None
    finally:
        if pos is not None:
            source.seek(pos)


def save(path: Path, state: dict) -> None:
    atomic_write(path, lambda fh: torch_save(state, fh))


def load(path: Path) -> dict:
    """A checkpoint, every tensor on the CPU whatever device wrote it. The loaders move each part
    where it belongs: load_state_dict copies weights onto the nets' device and optimizer state onto
    its parameters' (leaving Adam's step counters on the host, where a non-fused Adam reads them
    without a sync), and RNG states stay CPU ByteTensors, the only form set_state takes.

    Every record is checked against its CRC-32 first (`verify`): a damaged, truncated or foreign file
    raises CheckpointError in one line and is left as it is."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        verify(path)
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # damaged bytes, truncated zip, bad pickle, foreign object: all mean "unusable"
        if isinstance(exc, pickle.UnpicklingError) and "Weights only load failed" in str(exc):
            # intact, but it names Python objects to build: unpickling them could run any code
            raise CheckpointError(
                f"checkpoint {path} was refused for safety: besides tensors and plain values it names Python "
                f"objects to build, and building them could run code. It was not loaded and is left as it is; "
                f"ganzoo loads only its own checkpoints (use the run's ckpt/last.pt or ckpt/best.pt)") from None
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"checkpoint {path} is corrupt or truncated ({reason}); it was not used and is left as it is: "
            f"use an intact copy (the run's ckpt/best.pt, or an older backup) or start a new run") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path} is not a ganzoo checkpoint (format {FORMAT})")
    return state


# what every ganzoo checkpoint holds, and of what kind (the parts' own contents are checked as they load)
PARTS = {"step": int, "config": dict, "method": dict, "data": dict, "rng": dict}


def check_contents(state: dict, path: Path) -> None:
    """An intact file (its CRCs hold) whose contents are not a checkpoint's (a part missing or of another
    kind, a step that is not a count) is refused in one line."""
    for key, kind in PARTS.items():
        value = state.get(key)
        if not isinstance(value, kind) or isinstance(value, bool) or (key == "step" and value < 0):
            what = "missing" if key not in state else f"{type(value).__name__} {value!r}"[:80]
            raise CheckpointError(f"checkpoint {path} is not usable: its {key!r} is {what}, not a "
                                  f"{'step count' if key == 'step' else kind.__name__}; it was not used and is left "
                                  f"as it is")


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
