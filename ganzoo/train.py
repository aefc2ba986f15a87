"""The one training loop: build, step, log, evaluate, checkpoint.

It knows nothing of which method runs: it calls method.step / sample / surface
/ state_dict, and hands numbers and pictures to the logger.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional

import torch

from . import checkpoint, distributed
from .config import TrainConfig, flatten, load_train_config, resolved, to_dict
from .data import Stream, build_data
from .errors import CheckpointError, ConfigError
from .distributed import Shard
from .logger import RunLogger, Silent
from .methods import build_method
from .methods.protocol import Method
from .metrics import registry
from .nets.build import build_nets
from .preflight import check_device
from .rundir import checkpoint_path
from .errors import GanzooError, os_error_message
from .rundir import auto_resume, read_status, refuse_records
from .signals import Interrupted, Stopped, StopSignals
from .watchdog import Diverged, check_losses, check_state

log = logging.getLogger("ganzoo")

# keys that may change when a run is resumed; anything else would make the resumed run a different experiment
RESUMABLE = ("steps", "eval_every", "ckpt_every", "log_every", "sample_every", "resume", "device", "metrics.",
             "deterministic", "tf32", "watchdog.", "threads", "picture_images")


def resumable_text() -> str:
    """The keys a resume may change, as the refusal and the README's Resume section say them."""
    keys = [k + "*" if k.endswith(".") else k for k in RESUMABLE if k != "resume"]
    return ", ".join(f"`{k}`" for k in keys[:-1]) + f" and `{keys[-1]}`"


def resolve_device(name: str, shard: Shard = Shard()) -> torch.device:
    """The device a run uses; under several ranks each uses the GPU of its local rank."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda but no CUDA device is visible; use device=auto or device=cpu")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and shard.world > 1:
        return torch.device("cuda", distributed.local_rank())
    return torch.device(name)


@dataclass
class Model:
    """What train, sample and eval all build from a config."""
    data: object
    method: Method
    device: torch.device
    evaluator: Callable


def configure_backends(cfg: TrainConfig) -> None:
    """Kernel choices; process-wide settings, so each run sets every one of them."""
    if cfg.deterministic:
        # cuBLAS reads this when its first handle is made, so before any CUDA matmul
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if torch.are_deterministic_algorithms_enabled() != cfg.deterministic:
        # only on a change: the call imports torch's compiler stack (~2.6 s) the first time
        torch.use_deterministic_algorithms(cfg.deterministic)
    torch.backends.cudnn.deterministic = cfg.deterministic
    torch.backends.cudnn.benchmark = cfg.cudnn.benchmark and not cfg.deterministic
    torch.backends.cuda.matmul.allow_tf32 = cfg.tf32
    torch.backends.cudnn.allow_tf32 = cfg.tf32


def build(cfg: TrainConfig, device: Optional[torch.device] = None, shard: Shard = Shard()) -> Model:
    device = device or resolve_device(cfg.device, shard)
    configure_backends(cfg)
    data = build_data(cfg.dataset, cfg.synthetic_images)
    make_g, make_d = build_nets(cfg.arch, data.shape)
    method = build_method(cfg, make_g, make_d, device, shard)
    if shard.world > 1:
        sync_batchnorm(cfg, method, device)
    eager = method.double_backward()
    for net in method.networks():
        if cfg.channels_last and device.type == "cuda" and len(data.shape) == 3:
            net.to(memory_format=torch.channels_last)
        if cfg.compile and not any(net is e for e in eager):
            net.compile()  # in place: state_dict keys stay those of the plain module
    if cfg.compile and eager:
        log.info(f"compile=true: {len(eager)} net(s) stay eager (a gradient penalty needs double backward, "
                 "which torch.compile does not support); the others are compiled")
    return Model(data, method, device, data.evaluator(cfg.metrics, cfg.seed, device, shard))


def sync_batchnorm(cfg: TrainConfig, method, device: torch.device) -> None:
    """Batchnorm under several ranks: statistics over the global batch (torch's SyncBatchNorm, CUDA
    only), or refused: per-rank statistics are not one process's training."""
    from .nets.common import batch_dependent
    nets = [net for net in method.networks() if batch_dependent(net)]
    if not nets:
        return
    if not cfg.sync_bn:
        log.warning(f"sync_bn=false: {len(nets)} batchnorm net(s) normalise each rank's rows on their own; "
                    f"this run is not the same as one process with the global batch")
        return
    if device.type != "cuda":
        raise ConfigError(f"arch={cfg.arch.name} has batchnorm and torch's SyncBatchNorm needs CUDA: on CPU ranks "
                          f"use an arch without batchnorm, one process, or sync_bn=false (per-rank statistics, "
                          f"not the same training)")
    twice = [net for net in method.double_backward() if batch_dependent(net)]
    if twice:
        raise ConfigError("a gradient penalty differentiates D twice and torch's SyncBatchNorm has no double "
                          "backward: use loss.penalty=none, a D without batchnorm, or sync_bn=false")
    for net in nets:  # in place: the parameters stay the same objects, so the optimisers keep them
        torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)


def evaluate(cfg: TrainConfig, model: Model, parts: Optional[bool] = None) -> Dict[str, object]:
    """The model's scores, and with `parts` those of every player the method scores on its own
    (sgan's local generators) as "<part>/<metric>". By default parts are scored where the data say
    it is cheap (2-D data); `ganzoo eval` always scores them."""
    method = model.method
    metrics = model.evaluator(method.sample, method.num_generators, method.surface)
    if parts or (parts is None and model.data.score_parts):
        for name, sample_fn in method.scored_parts().items():
            scores = model.evaluator(sample_fn, 1)
            metrics.update({f"{name}/{k}": v for k, v in scores.items() if k != "protocol"})
    return metrics


def picture(cfg: TrainConfig, model: Model, step: int):
    title = f"{cfg.method.name} / {cfg.loss.name} on {model.data.name}, step {step}"
    return model.data.picture(model.method, cfg.seed, model.device, title, cfg.picture_images)


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
    except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise CheckpointError(f"the checkpoint's contents do not fit this run's nets and state ({reason}); it "
                              f"was not used and is left as it is") from None


def _every(period: Optional[int], step: int) -> bool:
    return bool(period) and step % period == 0


def write_status(run_dir: Path, status: str, **extra) -> None:
    record = {"status": status, "time": round(time.time(), 3), **extra}
    checkpoint.atomic_write(Path(run_dir) / "status.json", lambda fh: fh.write(json.dumps(record).encode()))


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


def describe(cfg: TrainConfig, model: Model) -> str:
    count = lambda net: sum(p.numel() for p in net.parameters()) / 1e6  # noqa: E731
    method = model.method
    return (f"{cfg.method.name} on {cfg.dataset.name} {'x'.join(map(str, model.data.shape))}, "
            f"arch={cfg.arch.name} (G {count(method.G):.2f}M / D {count(method.D):.2f}M parameters), "
            f"{cfg.loss.name} loss, {model.device}; another net: arch=<name> (ganzoo train --help lists them)")


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


def environment(world: int = 1) -> Dict[str, object]:
    """What a result's bits depend on besides the config: torch's thread count and the versions."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    def v(package: str) -> Optional[str]:
        try:
            return version(package)
        except PackageNotFoundError:
            return None
    env = {"threads": torch.get_num_threads(), "world": world, "python": platform.python_version(),
           **{p: v(p) for p in ("ganzoo", "torch", "torchvision", "numpy", "hydra-core")},
           "cuda": torch.version.cuda if torch.cuda.is_available() else None, "host": platform.node()}
    return env


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


def device_type(name: str) -> str:
    return "cuda" if name == "cuda" or (name == "auto" and torch.cuda.is_available()) else "cpu"


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


def run(cfg: Optional[TrainConfig], run_dir: Optional[Path], shard: Shard) -> Dict[str, Optional[float]]:
    decided = plan(cfg, run_dir, shard)
    cfg, run_dir, state = decided["cfg"], decided["run_dir"], decided["state"]
    leader = shard.leader  # writes everything; the other ranks write nothing
    if decided["done"]:
        done = (read_status(run_dir) or {}) if leader else {}
        log.info(f"resume: {run_dir} is done at step {done.get('step')}; nothing to do (steps= more to extend it)")
        return done.get("metrics") or {}
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    checkpoint.seed_everything(cfg.seed)
    model = build(cfg, shard=shard)
    env = environment(shard.world)
    method = model.method
    if leader:
        log.info(describe(cfg, model))
        log.info("torch {torch} on {threads} thread(s) x {world} process(es), python {python}; a seed's result is "
                 "bit-for-bit the same on one machine at one thread count and world size".format(**env))
    stream = Stream(model.data, cfg.batch_size, cfg.seed, model.device, model.data.workers, method.shard)
    if leader and hasattr(model.evaluator, "warm"):
        model.evaluator.warm()  # reference features now (the other ranks wait at the first step)

    start = 0
    best: Optional[dict] = None  # {"metric", "value", "step"} of ckpt/best.pt
    if state is not None:
        restore(method, stream, state)
        start = int(state["step"])
        best = state.get("best")
        then = state.get("environment") or {}
        changed = [f"{k} {then[k]} -> {env[k]}" for k in ("threads", "world") if then.get(k, 1) != env[k]]
        if changed and leader:
            log.warning(f"this run continues on other hardware ({', '.join(changed)}): it continues the same "
                        f"training, but not bit for bit as an uninterrupted run")
        if leader:
            log.info(f"resuming {run_dir} from step {start}")
        del state
    elif leader:
        clear_logs(run_dir)
    config_dict = to_dict(cfg)
    if leader:
        checkpoint.atomic_write(run_dir / "environment.json", lambda fh: fh.write(json.dumps(env, indent=1).encode()))

    def status(name: str, **extra) -> None:
        if leader:
            write_status(run_dir, name, **extra)

    def save(step: int, which: str = "last", settle: bool = True) -> None:
        check_state(step, method)  # nothing non-finite ever replaces a good checkpoint
        if which == "last":  # every rank saves "last" at the same steps (best: rank 0's evaluation)
            shard.check_same(step, method.state_dict())
        if leader:
            state = {"format": checkpoint.FORMAT, "step": step, "config": config_dict, "best": best,
                     "environment": env, "method": method.state_dict(), "data": stream.state_dict(),
                     "rng": checkpoint.rng_state()}
            checkpoint.save(checkpoint_path(run_dir, which), state)
        if which == "last":
            saved["step"] = step
            status("running", step=step, pid=os.getpid())
            if settle:  # no rank runs ahead of the write (stop() settles after its status)
                shard.barrier()

    def evaluation(step: int) -> Dict[str, object]:
        """Every rank evaluates its share (image features; 2-D points are scored by each rank alike);
        rank 0 scores, logs and keeps the best: the metrics of one process."""
        nonlocal best
        check_state(step, method)
        metrics = evaluate(cfg, model)
        if not leader:
            return {}
        logger.metrics(step, metrics)
        score = registry.score(metrics, cfg.metrics.best)
        if score is not None and (best is None or registry.better(score[0], score[1], best["value"])):
            best = {"metric": score[0], "value": score[1], "step": step}
            save(step, "best")
        return metrics

    saved = {"step": start}  # the step of ckpt/last.pt
    status("running", step=start, pid=os.getpid())
    logger = RunLogger(run_dir, cfg.steps, start, cfg.log_every) if leader else Silent()
    redirect = contextlib.nullcontext()
    if logger.bar is not None:
        from tqdm.contrib.logging import logging_redirect_tqdm
        redirect = logging_redirect_tqdm(loggers=[logging.root])
    final: Dict[str, Optional[float]] = {}
    png = None
    step = start
    try:
        with redirect, StopSignals() as signals:
            try:
                for step in range(start + 1, cfg.steps + 1):
                    want_log = _every(cfg.log_every, step)
                    out = method.step(stream, log=want_log)
                    values = to_floats(shard.mean_stats(out)) if want_log else None
                    if values:
                        check_losses(step, values, cfg.watchdog.max_loss)
                        logger.scalars(step, values)
                    logger.progress(step, values)
                    last = step == cfg.steps
                    if want_log and not last:
                        check_state(step, method, values)
                    if agreed(signals, shard):
                        stop(signals, step, save, run_dir, status, shard)
                    if _every(cfg.sample_every, step) and not last and leader:
                        check_state(step, method)
                        logger.image("samples", step, picture(cfg, model, step))
                    if _every(cfg.eval_every, step) and not last:
                        evaluation(step)
                    if _every(cfg.ckpt_every, step) and not last:
                        save(step)
                end = max(cfg.steps, start)
                if agreed(signals, shard) and end > start:  # before the final evaluation, which can be long
                    stop(signals, end, save, run_dir, status, shard)
                if start >= cfg.steps and leader:
                    log.info(f"run already at step {start} >= steps={cfg.steps}; pass a larger steps= to extend it")
                final = evaluation(end)
                if start < cfg.steps:
                    save(end)
                if leader:
                    if cfg.sample_every is not None:  # null: no picture at all
                        png = logger.image("samples", end, picture(cfg, model, end))
                    logger.hparams(flatten(config_dict), final, end)
            finally:
                stream.close()  # a sweep's next job runs in this process: no reader processes left behind
                logger.close()
    except Diverged as exc:
        status("diverged", step=exc.step, error=str(exc), last_checkpoint=saved["step"])
        raise
    except Stopped:
        raise  # its status is written
    except Interrupted as exc:
        # a second signal: out at once; the last checkpoint is whole (atomic writes)
        status("interrupted" if exc.signum == signal.SIGINT else "preempted", step=saved["step"], signal=exc.signum)
        raise Stopped(f"stopped by a second {signal.Signals(exc.signum).name} at step {step}; "
                      f"ckpt/last.pt is from step {saved['step']} (resume={run_dir} continues it)",
                      exc.signum) from None
    except SystemExit:
        raise  # a launcher's handler ending the job after a signal (its status is written)
    except BaseException as exc:
        message = (str(exc) if isinstance(exc, GanzooError) else os_error_message(exc) if isinstance(exc, OSError)
                   else f"{type(exc).__name__}: {exc}")
        with contextlib.suppress(OSError):  # a full disk may refuse this too; the error is what matters
            status("failed", step=saved["step"], error=message)
        raise
    status("done", step=max(cfg.steps, start), metrics=final)
    if leader:
        samples = f"samples: {png.relative_to(run_dir)}, " if png is not None else ""
        log.info(f"outputs: {run_dir}  ({samples}metrics.jsonl, ckpt/last.pt)")
    return final


def clear_logs(run_dir: Path) -> None:
    """A fresh start in a folder a killed run left before its first checkpoint: its evaluations
    and TensorBoard events would mix with this run's."""
    for path in [run_dir / "metrics.jsonl", *run_dir.glob("events.out.tfevents.*")]:
        path.unlink(missing_ok=True)


def agreed(signals: StopSignals, shard: Shard) -> bool:
    """Whether the run stops at this step: a signal to any one rank stops them all, and every rank
    decides from the same reduced value (a signal landing during the reduction counts next step)."""
    signum = shard.max(signals.signum or 0)
    signals.join(signum)
    return signum != 0


def stop(signals: StopSignals, step: int, save, run_dir: Path, status, shard: Shard) -> None:
    """A signal arrived during `step`: save, record, hand the signal on, end the run."""
    save(step, settle=False)
    status(signals.status, step=step, signal=signals.signum)
    # every rank waits for rank 0's files: one that exited first would have its launcher (torchrun)
    # kill rank 0 in the middle of them
    shard.barrier()
    what = "interrupted" if signals.status == "interrupted" else f"preempted ({signal.Signals(signals.signum).name})"
    message = f"{what} at step {step}; saved ckpt/last.pt (resume={run_dir} or resume=auto continues it)"
    signals.hand_over()  # a cluster launcher's own handler (submitit requeues the job here)
    raise Stopped(message, signals.signum)
