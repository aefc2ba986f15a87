"""What each app does with its composed config; a user error ends it with one line."""
from __future__ import annotations

import contextlib
import logging
import shutil
import sys
import traceback
from pathlib import Path
from typing import Optional

log = logging.getLogger("ganzoo")


def fail(message: str, code: int = 1) -> None:
    print(f"ganzoo: error: {message}", file=sys.stderr)
    sys.exit(code)


def no_metrics_reason(cfg) -> str:
    """Why an evaluation scored nothing, for the line that would otherwise end in nothing."""
    off = []
    if not cfg.metrics.inception:
        off.append("metrics.inception=false")
    if not cfg.metrics.classifier:
        off.append("metrics.classifier=false")
    elif getattr(cfg.dataset, "num_classes", 0) < 2 or cfg.synthetic_images:
        off.append(f"dataset {cfg.dataset.name} has no class labels the classifier metrics could use"
                   if not cfg.synthetic_images else "synthetic images have no classifier")
    return "none (" + ("; ".join(off) or "no metric applies") + ": metrics.inception=true with Inception weights, " \
        "or a labelled dataset with metrics.classifier=true, scores this run)"


def train_task(raw) -> Optional[float]:
    """One training job. Returns the final value of `objective` when it is set (what an
    optimising sweeper reads), else None."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from ..config import load_train_config
    from ..errors import GanzooError, os_error_message
    from ..logger import format_metrics
    from ..rundir import lock_run
    from ..ranks import rank
    from ..signals import Stopped
    from ..rundir import write_status
    from ..train import train

    if rank() > 0:
        return follower_task(raw)  # a SLURM task of several: rank 0 owns the folder
    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    multirun = hc.mode == RunMode.MULTIRUN
    started = (run_dir / "status.json").exists()  # a run this job continues: its status is its own
    lock = None
    try:
        cfg = load_train_config(raw)
        lock = lock_run(run_dir)
        final = train(cfg, run_dir)
        print(f"final metrics: {format_metrics(final) or no_metrics_reason(cfg)}\noutputs: {run_dir}", flush=True)
        return objective_value(final, cfg.objective)
    except Stopped as exc:  # a signal: the whole command stops, a sweep too
        print(f"ganzoo: {exc}", file=sys.stderr, flush=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:  # Ctrl-C before the loop (building, loading data)
        fail("interrupted before training started", 130)
    except Exception as exc:
        # a file it cannot write (a full disk, no permission) is the user's to fix, in one line
        user_error = isinstance(exc, (GanzooError, OSError))
        message = (str(exc) if isinstance(exc, GanzooError) else os_error_message(exc) if user_error
                   else f"{type(exc).__name__}: {exc}")
        if not started and not (run_dir / "status.json").exists():
            with contextlib.suppress(OSError):  # the disk that failed the run may not take this either
                write_status(run_dir, "failed", error=message)  # what a sweep's summary and report read
        if multirun:  # one failing job must not stop the sweep; the summary reports it at the end
            (run_dir / "error.txt").write_text(traceback.format_exc())
            log.error(f"job failed: {message} (details: {run_dir / 'error.txt'})")
            return None
        if not user_error:
            raise
        if not started and only_hydra_files(run_dir):
            shutil.rmtree(run_dir, ignore_errors=True)  # nothing worth keeping was written
        fail(message, getattr(exc, "exit_code", 1))
    finally:
        if lock is not None:
            lock.release()


def follower_task(raw) -> None:
    """A rank other than 0 started as a Hydra job (submitit's tasks of one SLURM job): it trains what
    rank 0 decides and writes nothing of its own."""
    from ..config import load_train_config
    from ..errors import GanzooError
    from ..signals import Stopped
    from ..train import follow
    try:
        follow(load_train_config(raw))
    except Stopped as exc:
        sys.exit(exc.exit_code)
    except GanzooError as exc:
        fail(str(exc), exc.exit_code)
    return None


def only_hydra_files(run_dir: Path) -> bool:
    """The folder holds nothing but what starting a job writes (Hydra's record, its log, the lock,
    a failed status)."""
    ours = {".hydra", "train.log", ".lock", "status.json"}
    return run_dir.is_dir() and all(p.name in ours for p in run_dir.iterdir())


def objective_value(final: dict, objective: Optional[str]) -> Optional[float]:
    if objective is None:
        return None
    value = final.get(objective)
    if not isinstance(value, (int, float)):
        # optuna records a trial without a finite value as failed, and the sweep goes on
        log.error(f"objective={objective}: the run scored no finite {objective} (got {value!r})")
        return None
    return float(value)


def _guarded(load, command: str):
    """A task that loads its config with `load` and runs use.<command> on it. A user error, and a
    file it cannot read or write (a full disk, no permission, a read-only folder), end it with one
    line naming the file; its outputs are written atomically (checkpoint.atomic_write) or cut back
    (use.append_line), so nothing is left half-written."""
    def task(raw) -> None:
        from .. import use
        from ..errors import GanzooError, os_error_message
        try:
            getattr(use, command)(load(raw))
        except GanzooError as exc:
            fail(str(exc), exc.exit_code)
        except OSError as exc:
            fail(os_error_message(exc))
    return task


def _loader(name: str):
    def load(raw):
        from ..config import LOADERS
        return LOADERS[name](raw)
    return load


sample_task = _guarded(_loader("sample"), "sample_command")
eval_task = _guarded(_loader("eval"), "eval_command")
classifier_task = _guarded(_loader("classifier"), "classifier_command")
