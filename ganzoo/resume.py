"""Whether a run starts fresh or continues, decided before anything is written: which keys a
resume may change, the checkpoint it continues (checked against the config), and restoring it."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from . import checkpoint
from .config import TrainConfig, flatten, load_train_config, resolved
from .data import Stream
from .distributed import Shard
from .errors import CheckpointError, ConfigError
from .preflight import check_device
from .rundir import auto_resume, checkpoint_path, read_status, refuse_records

# keys that may change when a run is resumed; anything else would make the resumed run a different experiment
RESUMABLE = ("steps", "eval_every", "ckpt_every", "log_every", "sample_every", "resume", "device", "metrics.",
             "deterministic", "tf32", "watchdog.", "threads", "picture_images")


def resumable_text() -> str:
    """The keys a resume may change, as the refusal and the README's Resume section say them."""
    keys = [k + "*" if k.endswith(".") else k for k in RESUMABLE if k != "resume"]
    return ", ".join(f"`{k}`" for k in keys[:-1]) + f" and `{keys[-1]}`"


def check_resumable(saved: dict, cfg: TrainConfig) -> None:
    now = flatten(resolved(cfg))
    # loaded into the schemas, a key added to ganzoo after the run was saved takes its default
    then = flatten(resolved(load_train_config(saved, saved=True)))
    changed = sorted(k for k in set(now) | set(then)
                     if now.get(k) != then.get(k) and not k.startswith(RESUMABLE))
    if changed:
        shown = ", ".join(f"{k}: {then.get(k)!r} -> {now.get(k)!r}" for k in changed[:4])
        raise ConfigError(f"cannot resume with a different experiment ({shown}); only "
                          f"{resumable_text().replace('`', '')} may change on resume")


def restore(method, stream: Stream, state: dict) -> None:
    """A checkpoint (loaded on the CPU) into a freshly built method and stream: each part copies
    itself onto its own device. Contents that do not fit (a tensor of another shape, a missing key) are
    refused in one line."""
    try:
        method.load_state_dict(state["method"])
        stream.load_state_dict(state["data"])
        checkpoint.set_rng_state(state["rng"])
    except LOAD_ERRORS as exc:
        raise does_not_fit(exc) from None


LOAD_ERRORS = (RuntimeError, KeyError, ValueError, TypeError, IndexError)


def does_not_fit(exc: BaseException) -> CheckpointError:
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    return CheckpointError(f"the checkpoint's contents do not fit this run's nets and state ({reason}); it "
                           f"was not used and is left as it is")


def check_fits(cfg: TrainConfig, state: dict) -> None:
    """The checkpoint's method state loads into the nets and players this config builds (on the CPU,
    without the data): a tensor of another shape or a missing key is refused before the job starts,
    so the run folder is left as it was. The job loads it again onto its own device."""
    import torch
    from .data.schemas import data_shape
    from .methods import build_method
    from .nets.build import build_nets
    make_g, make_d = build_nets(cfg.arch, data_shape(cfg.dataset), cfg.num_classes(), cfg.labels.g)
    try:
        build_method(cfg, make_g, make_d, torch.device("cpu")).load_state_dict(state["method"])
    except LOAD_ERRORS as exc:
        raise does_not_fit(exc) from None


def resume_state(cfg: TrainConfig, run_dir: Path) -> Optional[dict]:
    """The checkpoint this run continues (None: it starts fresh), checked against the config.
    Reads only: a refused resume leaves the run folder as it was. The CLI calls it before the
    job starts, and the job again (a launcher may start it directly)."""
    if cfg.resume is None:
        if checkpoint_path(run_dir).is_file():
            status = (read_status(run_dir) or {}).get("status", "unknown")
            raise ConfigError(f"{run_dir} already holds a run ({status}, with ckpt/last.pt): resume={run_dir} "
                              f"continues it, resume=auto continues or skips it; or pick another folder")
        refuse_records(run_dir)
        return None
    if cfg.resume == "auto":
        # a done run is checked too: resume=auto must not skip a folder that holds another experiment
        path = checkpoint_path(run_dir)
        if auto_resume(run_dir, cfg.steps) is None or not path.is_file():
            return None
    else:
        path = checkpoint_path(Path(cfg.resume))
    state = checkpoint.load(path)
    checkpoint.check_contents(state, path)
    check_resumable(state["config"], cfg)
    return state


def plan(cfg: TrainConfig, run_dir: Path, shard: Shard) -> dict:
    """Rank 0 reads the folder and decides; every rank gets its decision: the config, the folder,
    the checkpoint to continue (None: fresh) and whether the run is already done."""
    if not shard.leader:
        return shard.broadcast()
    check_device(cfg)  # here, on the machine the job runs on, before anything is written
    cfg.check_world(shard.world)
    state = resume_state(cfg, run_dir)
    # a finished run resumed with no more steps has nothing to do (and appends nothing to its record)
    done = cfg.resume is not None and auto_resume(run_dir, cfg.steps) == "done"
    return shard.broadcast({"cfg": cfg, "run_dir": run_dir, "state": None if done else state, "done": done})


def clear_logs(run_dir: Path) -> None:
    """A fresh start in a folder a killed run left before its first checkpoint: its evaluations
    and TensorBoard events would mix with this run's."""
    for path in [run_dir / "metrics.jsonl", *run_dir.glob("events.out.tfevents.*")]:
        path.unlink(missing_ok=True)
