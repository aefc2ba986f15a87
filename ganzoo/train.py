"""The one training loop: step, log, evaluate, checkpoint, stop.

It knows nothing of which method runs: it calls the Method protocol (methods/protocol.py) and
hands numbers and pictures to the logger. Building the model is model.py's; deciding whether the
run starts fresh or continues is resume.py's; the run folder's files are rundir.py's.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
from pathlib import Path
from typing import Dict, Optional

import torch

from . import checkpoint, distributed
from .config import TrainConfig, flatten, to_dict
from .data import Stream
from .distributed import Shard
from .errors import GanzooError, os_error_message
from .logger import RunLogger, Silent
from .metrics import registry
from .model import Model, augmented_picture, build, describe, device_type, evaluate, picture
from .resume import clear_logs, plan, restore
from .rundir import checkpoint_path, read_status, write_status
from .signals import Interrupted, Stopped, StopSignals
from .watchdog import Diverged, check_losses, check_state

log = logging.getLogger("ganzoo")


def train(cfg: TrainConfig, run_dir: Path) -> Dict[str, Optional[float]]:
    """One run, in this process or as rank 0 of several (torchrun; distributed.py)."""
    shard = distributed.join(device_type(cfg.device))
    try:
        return run(cfg, Path(run_dir), shard)
    finally:
        distributed.leave()


def follow(cfg: TrainConfig) -> None:
    """A rank other than 0: train what rank 0 decides (config, folder, checkpoint); write nothing."""
    shard = distributed.join(device_type(cfg.device))
    try:
        run(None, None, shard)
    finally:
        distributed.leave()


def run(cfg: Optional[TrainConfig], run_dir: Optional[Path], shard: Shard) -> Dict[str, Optional[float]]:
    decided = plan(cfg, run_dir, shard)
    cfg, run_dir, state = decided["cfg"], decided["run_dir"], decided["state"]
    if decided["done"]:
        done = (read_status(run_dir) or {}) if shard.leader else {}
        log.info(f"resume: {run_dir} is done at step {done.get('step')}; nothing to do (steps= more to extend it)")
        return done.get("metrics") or {}
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    checkpoint.seed_everything(cfg.seed)
    model = build(cfg, shard=shard)
    env = environment(shard.world)
    if shard.leader:
        log.info(describe(cfg, model))
        log.info("torch {torch} on {threads} thread(s) x {world} process(es), python {python}; a seed's result is "
                 "bit-for-bit the same on one machine at one thread count and world size".format(**env))
    stream = Stream(model.data, cfg.batch_size, cfg.seed, model.device, model.data.workers, model.method.shard,
                    labelled=cfg.conditional)
    if shard.leader and hasattr(model.evaluator, "warm"):
        model.evaluator.warm()  # reference features now (the other ranks wait at the first step)
    loop = Loop(cfg, run_dir, shard, model, stream, env)
    if state is not None:
        loop.resume(state)
        del state
    elif shard.leader:
        clear_logs(run_dir)
    return loop.run()


class Loop:
    """One run's loop and what it does at its moments: save, evaluate, picture, status, stop. Every
    rank runs it; rank 0 (the leader) alone writes."""

    def __init__(self, cfg: TrainConfig, run_dir: Path, shard: Shard, model: Model, stream: Stream, env: dict):
        self.cfg, self.run_dir, self.shard, self.model, self.stream, self.env = cfg, run_dir, shard, model, stream, env
        self.method = model.method
        self.leader = shard.leader
        self.start = 0
        self.saved = 0                       # the step of ckpt/last.pt
        self.best: Optional[dict] = None     # {"metric", "value", "step"} of ckpt/best.pt
        self.config = to_dict(cfg)
        self.logger = None                   # RunLogger on rank 0, Silent elsewhere: made when the run starts
        self.step = 0                        # the step in progress (an early end names it)

    def resume(self, state: dict) -> None:
        restore(self.method, self.stream, state)
        self.start = self.saved = int(state["step"])
        self.best = state.get("best")
        then = state.get("environment") or {}
        changed = [f"{k} {then[k]} -> {self.env[k]}" for k in ("threads", "world") if then.get(k, 1) != self.env[k]]
        if changed and self.leader:
            log.warning(f"this run continues on other hardware ({', '.join(changed)}): it continues the same "
                        f"training, but not bit for bit as an uninterrupted run")
        if self.leader:
            log.info(f"resuming {self.run_dir} from step {self.start}")

    # ------------------------------------------------------------------ the run
    def run(self) -> Dict[str, Optional[float]]:
        cfg = self.cfg
        if self.leader:
            checkpoint.atomic_write(self.run_dir / "environment.json",
                                    lambda fh: fh.write(json.dumps(self.env, indent=1).encode()))
        self.status("running", step=self.start, pid=os.getpid())
        self.logger = RunLogger(self.run_dir, cfg.steps, self.start, cfg.log_every) if self.leader else Silent()
        redirect = contextlib.nullcontext()
        if self.logger.bar is not None:
            from tqdm.contrib.logging import logging_redirect_tqdm
            redirect = logging_redirect_tqdm(loggers=[logging.root])
        self.step = self.start
        try:
            with redirect, StopSignals() as signals:
                try:
                    final, png = self.steps(signals)
                finally:
                    self.stream.close()  # a sweep's next job runs in this process: no reader processes left behind
                    self.logger.close()
        except BaseException as exc:
            instead = self.ended_by(exc)
            if instead is None:
                raise
            raise instead from None
        self.status("done", step=max(cfg.steps, self.start), metrics=final)
        if self.leader:
            samples = f"samples: {png.relative_to(self.run_dir)}, " if png is not None else ""
            log.info(f"outputs: {self.run_dir}  ({samples}metrics.jsonl, ckpt/last.pt)")
        return final

    def steps(self, signals: StopSignals):
        """The training steps from `start` to cfg.steps, then the final evaluation, checkpoint and picture."""
        cfg, method, logger = self.cfg, self.method, self.logger
        for step in range(self.start + 1, cfg.steps + 1):
            self.step = step
            want_log = _every(cfg.log_every, step)
            out = method.step(self.stream, log=want_log)
            values = to_floats(self.shard.mean_stats(out)) if want_log else None
            if values:
                check_losses(step, values, cfg.watchdog.max_loss)
                logger.scalars(step, values)
            logger.progress(step, values)
            last = step == cfg.steps
            if want_log and not last:
                check_state(step, method, values)
            if agreed(signals, self.shard):
                self.stop(signals, step)
            if _every(cfg.sample_every, step) and not last and self.leader:
                check_state(step, method)
                self.pictures(logger, step)
            if _every(cfg.eval_every, step) and not last:
                self.evaluation(step)
            if _every(cfg.ckpt_every, step) and not last:
                self.save(step)
        end = max(cfg.steps, self.start)
        if agreed(signals, self.shard) and end > self.start:  # before the final evaluation, which can be long
            self.stop(signals, end)
        if self.start >= cfg.steps and self.leader:
            log.info(f"run already at step {self.start} >= steps={cfg.steps}; pass a larger steps= to extend it")
        final = self.evaluation(end)
        if self.start < cfg.steps:
            self.save(end)
        png = None
        if self.leader:
            if cfg.sample_every is not None:  # null: no picture at all
                png = self.pictures(logger, end)
            logger.hparams(flatten(self.config), final, end)
        return final, png

    # ------------------------------------------------------------------ its moments
    def pictures(self, logger, step: int):
        """The samples' picture (its file is returned) and, with an augmentation, reals as D sees them."""
        png = logger.image("samples", step, picture(self.cfg, self.model, step))
        seen = augmented_picture(self.cfg, self.model)
        if seen is not None:
            logger.image("augment/reals", step, seen)
        return png

    def status(self, name: str, **extra) -> None:
        if self.leader:
            write_status(self.run_dir, name, **extra)

    def save(self, step: int, which: str = "last", settle: bool = True) -> None:
        method = self.method
        check_state(step, method)  # nothing non-finite ever replaces a good checkpoint
        if which == "last":  # every rank saves "last" at the same steps (best: rank 0's evaluation)
            self.shard.check_same(step, method.state_dict())
        if self.leader:
            state = {"format": checkpoint.FORMAT, "step": step, "config": self.config, "best": self.best,
                     "environment": self.env, "method": method.state_dict(), "data": self.stream.state_dict(),
                     "rng": checkpoint.rng_state()}
            checkpoint.save(checkpoint_path(self.run_dir, which), state)
        if which == "last":
            self.saved = step
            self.status("running", step=step, pid=os.getpid())
            if settle:  # no rank runs ahead of the write (stop() settles after its status)
                self.shard.barrier()

    def evaluation(self, step: int) -> Dict[str, object]:
        """Every rank evaluates its share (image features; 2-D points are scored by each rank alike);
        rank 0 scores, logs and keeps the best: the metrics of one process."""
        check_state(step, self.method)
        metrics = evaluate(self.cfg, self.model)
        if not self.leader:
            return {}
        self.logger.metrics(step, metrics)
        score = registry.score(metrics, self.cfg.metrics.best)
        if score is not None and (self.best is None or registry.better(score[0], score[1], self.best["value"])):
            self.best = {"metric": score[0], "value": score[1], "step": step}
            self.save(step, "best")
        return metrics

    def stop(self, signals: StopSignals, step: int) -> None:
        """A signal arrived during `step`: save, record, hand the signal on, end the run."""
        self.save(step, settle=False)
        self.status(signals.status, step=step, signal=signals.signum)
        # every rank waits for rank 0's files: one that exited first would have its launcher (torchrun)
        # kill rank 0 in the middle of them
        self.shard.barrier()
        what = ("interrupted" if signals.status == "interrupted"
                else f"preempted ({signal.Signals(signals.signum).name})")
        message = f"{what} at step {step}; saved ckpt/last.pt (resume={self.run_dir} or resume=auto continues it)"
        signals.hand_over()  # a cluster launcher's own handler (submitit requeues the job here)
        raise Stopped(message, signals.signum)

    def ended_by(self, exc: BaseException) -> Optional[BaseException]:
        """The status an early end leaves in the folder; the exception to raise instead, if any."""
        if isinstance(exc, Diverged):
            self.status("diverged", step=exc.step, error=str(exc), last_checkpoint=self.saved)
        elif isinstance(exc, (Stopped, SystemExit)):
            pass  # its status is written (a launcher's handler ends the job with SystemExit after a signal)
        elif isinstance(exc, Interrupted):
            # a second signal: out at once; the last checkpoint is whole (atomic writes)
            self.status("interrupted" if exc.signum == signal.SIGINT else "preempted", step=self.saved,
                        signal=exc.signum)
            return Stopped(f"stopped by a second {signal.Signals(exc.signum).name} at step {self.step}; "
                           f"ckpt/last.pt is from step {self.saved} (resume={self.run_dir} continues it)", exc.signum)
        else:
            message = (str(exc) if isinstance(exc, GanzooError) else os_error_message(exc)
                       if isinstance(exc, OSError) else f"{type(exc).__name__}: {exc}")
            with contextlib.suppress(OSError):  # a full disk may refuse this too; the error is what matters
                self.status("failed", step=self.saved, error=message)
        return None


def _every(period: Optional[int], step: int) -> bool:
    return bool(period) and step % period == 0


def to_floats(out: Dict[str, torch.Tensor]) -> Dict[str, float]:
    """A step's scalars as numbers, with one device-to-host transfer per device for all of them
    (one per scalar would wait on the GPU once each)."""
    values: Dict[str, float] = {}
    by_device: Dict[torch.device, list] = {}
    for key, value in out.items():
        by_device.setdefault(value.device, []).append(key)
    for device, keys in by_device.items():
        stacked = torch.stack([out[k].detach().float().reshape(()) for k in keys])
        values.update(zip(keys, stacked.cpu().tolist()))
    return {k: values[k] for k in out}


def environment(world: int = 1) -> Dict[str, object]:
    """What a result's bits depend on besides the config: torch's thread count and the versions."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    def v(package: str) -> Optional[str]:
        try:
            return version(package)
        except PackageNotFoundError:
            return None
    return {"threads": torch.get_num_threads(), "world": world, "python": platform.python_version(),
            **{p: v(p) for p in ("ganzoo", "torch", "torchvision", "numpy", "hydra-core")},
            "cuda": torch.version.cuda if torch.cuda.is_available() else None, "host": platform.node()}


def agreed(signals: StopSignals, shard: Shard) -> bool:
    """Whether the run stops at this step: a signal to any one rank stops them all, and every rank
    decides from the same reduced value (a signal landing during the reduction counts next step)."""
    signum = shard.max(signals.signum or 0)
    signals.join(signum)
    return signum != 0
