"""What each app does with its composed config; a user error ends it with one line."""
from __future__ import annotations

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


def train_task(raw) -> Optional[float]:
    """One training job. Returns the final value of `objective` when it is set (what an
    optimising sweeper reads), else None."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from ..config import load_train_config
    from ..errors import GanzooError
    from ..logger import format_metrics
    from ..preflight import checkpoint_path
    from ..train import train, write_status

    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    multirun = hc.mode == RunMode.MULTIRUN
    try:
        cfg = load_train_config(raw)
        final = train(cfg, run_dir)
        print(f"final metrics: {format_metrics(final)}\noutputs: {run_dir}", flush=True)
        return objective_value(final, cfg.objective)
    except KeyboardInterrupt:
        write_status(run_dir, "interrupted")
        raise
    except Exception as exc:
        user_error = isinstance(exc, GanzooError)
        message = str(exc) if user_error else f"{type(exc).__name__}: {exc}"
        write_status(run_dir, "failed", error=message)
        if multirun:  # one failing job must not stop the sweep; the summary reports it at the end
            (run_dir / "error.txt").write_text(traceback.format_exc())
            log.error(f"job failed: {message} (details: {run_dir / 'error.txt'})")
            return None
        if not user_error:
            raise
        if not raw.get("resume") and not checkpoint_path(run_dir).exists():
            shutil.rmtree(run_dir, ignore_errors=True)  # nothing worth keeping was written
        fail(message, exc.exit_code)


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
    """A task that loads its config with `load` and runs use.<command> on it."""
    def task(raw) -> None:
        from .. import use
        from ..errors import GanzooError
        try:
            getattr(use, command)(load(raw))
        except GanzooError as exc:
            fail(str(exc), exc.exit_code)
    return task


def _loader(name: str):
    def load(raw):
        from ..config import LOADERS
        return LOADERS[name](raw)
    return load


sample_task = _guarded(_loader("sample"), "sample_command")
eval_task = _guarded(_loader("eval"), "eval_command")
classifier_task = _guarded(_loader("classifier"), "classifier_command")
