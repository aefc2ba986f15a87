"""The checks only a GPU can run, as one command with one table: `python3 scripts/gpu_check.py`.

On CUDA (under 8 minutes on one GPU):
  steps       every method x amp {off, bf16, fp16} x compile {off, on}: a few steps of a 32x32 image
              net, the quiet ones (no logging) under torch.cuda.set_sync_debug_mode("error"), so any
              host-device sync fails the case
  resume      stop at 3 + resume to 6 with deterministic=true, bit for bit against a straight run to 6
              (ganzoo's own train()), then quiet steps after the resume under the sync check
  torchrun    `torchrun -m ganzoo train` (NCCL) on 2 GPUs if there are, else 1, against one process
  fp16 r1     the r1 penalty of one batch under fp16 autocast, unscaled and loss-scaled, against fp32
  use         `ganzoo sample` and `ganzoo eval` (classifier metrics) from that CUDA checkpoint
  speed       images/s of dcgan and sngan_resnet at batch 64 and 128: ganzoo's step against a plain
              hand-written loop of the same nets, and the ratio
Without CUDA it says so in one line, runs what a CPU can (every method a few steps, the exact
resume, sample and eval from the checkpoint) and exits 0 unless one of those fails.

It needs ganzoo importable with its Python dependencies (on a machine without a registry, from
wheels: scripts/gpu_wheels.sh makes them, docs/CLUSTERS.md "The GPU check" shows the command). Exit code 1
on any failure; `--out DIR` also writes the table as gpu_check.md and gpu_check.json.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

# cuBLAS reads this once, when PyTorch makes its first handle: set it before torch is imported
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from ganzoo import checkpoint  # noqa: E402
from ganzoo.config import EvalConfig, SampleConfig, compose_train  # noqa: E402
from ganzoo.data import Stream  # noqa: E402
from ganzoo.errors import ConfigError  # noqa: E402
from ganzoo.methods.schemas import METHODS as RECORDS  # noqa: E402
from ganzoo.nets.build import build_nets  # noqa: E402
from ganzoo.model import build  # noqa: E402
from ganzoo.resume import restore  # noqa: E402
from ganzoo.train import train  # noqa: E402

METHODS = {name: record.overrides() for name, record in RECORDS.items()}  # every method's small instance
# a penalty where the method has none of its own (fargan's is its own), so fp16 and compile meet a double
# backward too
PENALTY = {name: [] if name == "fargan" else ["loss.penalty=r1"] for name in METHODS}

rows: list = []


def row(check: str, setting: str, ok, detail: str = "") -> None:
    """ok: True, False, or a word (refused, skipped) for a case that neither passed nor failed."""
    status = "ok" if ok is True else "FAIL" if ok is False else ok
    rows.append({"check": check, "setting": setting, "status": status, "detail": detail})
    print(f"{check:10s} {setting:44s} {status:8s} {detail}", flush=True)


def reason(exc: BaseException) -> str:
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0][:160] if lines else ''}"


def image_job(device: str, small: bool, *extra: str):
    width = "8" if small else "32"
    return compose_train(f"device={device}", "dataset=cifar10", "synthetic_images=512", "arch=dcgan",
                         f"arch.g_width={width}", f"arch.d_width={width}", f"batch_size={16 if small else 64}",
                         "metrics.inception=false", "metrics.classifier=false", *extra)


def quiet_steps(method, stream, n: int, cuda: bool) -> float:
    """n steps that do not log; on CUDA any host sync raises. Returns ms per step."""
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
    t = time.perf_counter()
    try:
        for _ in range(n):
            method.step(stream, log=False)
    finally:
        if cuda:
            torch.cuda.set_sync_debug_mode(0)
    if cuda:
        torch.cuda.synchronize()
    return (time.perf_counter() - t) / n * 1e3


# ---------------------------------------------------------------- every method x amp x compile
def check_steps(device: str, deadline: float) -> None:
    cuda = device == "cuda"
    amps = ("off", "bf16", "fp16") if cuda else ("off",)
    compiles = (False, True) if cuda else (False,)
    for compiled in compiles:  # every eager case first: the compiled ones are the slow ones
        for name, args in METHODS.items():
            for amp in amps:
                setting = f"{name} amp={amp} compile={str(compiled).lower()}"
                if time.time() > deadline:
                    row("steps", setting, "skipped", "out of the time budget (--budget)")
                    continue
                try:
                    cfg = image_job(device, not cuda, *args, *PENALTY[name], f"amp={amp}",
                                    f"compile={str(compiled).lower()}")
                except ConfigError as exc:  # aw with fp16 is refused by design; anything else is a bug
                    row("steps", setting, "refused" if (name, amp) == ("aw", "fp16") else False, str(exc)[:120])
                    continue
                step_case(cfg, setting, cuda)
    # every method class-conditional, and the papers' nets that only run conditional or at full width here
    for name, args in METHODS.items():
        if time.time() < deadline:
            step_case(image_job(device, not cuda, *args, *PENALTY[name], "conditional=true"),
                      f"{name} conditional", cuda)
    for arch, extra in (("biggan", ["conditional=true", "loss=hinge"]), ("autogan", ["loss=hinge"]),
                        ("sngan_resnet", ["conditional=true", "loss=hinge"])):
        if time.time() < deadline:
            size = ["batch_size=50"] if cuda else ["batch_size=8", "arch.g_width=8", "arch.d_width=8"]
            cfg = compose_train(f"device={device}", "dataset=cifar10", "synthetic_images=512", f"arch={arch}",
                                *size, "metrics.inception=false", "metrics.classifier=false", *extra)
            step_case(cfg, f"arch={arch} {' '.join(extra)}", cuda)


def step_case(cfg, setting: str, cuda: bool) -> None:
    """One logged step (finite?) and three quiet ones (no host sync on CUDA), as one row."""
    try:
        checkpoint.seed_everything(0)
        model = build(cfg)
        stream = Stream(model.data, cfg.batch_size, cfg.seed, model.device, labelled=cfg.conditional)
        out = model.method.step(stream, log=True)
        finite = all(torch.isfinite(v).all() for v in out.values())
        model.method.step(stream, log=False)  # warm-up (cuDNN autotuning, compilation)
        ms = quiet_steps(model.method, stream, 3, cuda)
        row("steps", setting, finite, f"{ms:.1f} ms/step, no host sync" if cuda else f"{ms:.0f} ms/step")
    except Exception as exc:  # one failing case must not hide the others
        row("steps", setting, False, reason(exc))


# ---------------------------------------------------------------- exact resume, sample, eval
def _method_tensors(path: Path) -> dict:
    state = checkpoint.load(path)["method"]
    flat = {}

    def walk(prefix, x):
        if isinstance(x, torch.Tensor):
            flat[prefix] = x
        elif isinstance(x, dict):
            for k, v in x.items():
                walk(f"{prefix}.{k}", v)
        elif isinstance(x, (list, tuple)):
            for i, v in enumerate(x):
                walk(f"{prefix}.{i}", v)
    walk("method", state)
    return flat


def check_resume_and_use(device: str, work: Path) -> None:
    cuda = device == "cuda"
    base = ["deterministic=true", "method=fargan", "method.N0=8", "method.f=2", "eval_every=0", "ckpt_every=0",
            "sample_every=0", "log_every=2", "metrics.num_samples=200", "metrics.classifier=true",
            f"metrics.cache_dir={work / 'cache'}"]
    try:
        straight, part = work / "straight", work / "part"
        train(image_job(device, not cuda, *base, "steps=6"), straight)
        train(image_job(device, not cuda, *base, "steps=3"), part)
        at3 = _method_tensors(part / "ckpt" / "last.pt")
        said = []
        hook = logging.Handler()
        hook.emit = lambda record: said.append(record.getMessage())
        logging.getLogger("ganzoo").addHandler(hook)
        logging.getLogger("ganzoo").setLevel(logging.INFO)
        try:
            train(image_job(device, not cuda, *base, "steps=6", f"resume={part}"), part)
        finally:
            logging.getLogger("ganzoo").removeHandler(hook)
        a, b = _method_tensors(straight / "ckpt" / "last.pt"), _method_tensors(part / "ckpt" / "last.pt")
        differ = [k for k in a if not torch.equal(a[k], b[k])]
        moved = any(not torch.equal(at3[k], b[k]) for k in at3)  # the control: steps 4-6 did change it
        resumed = any("from step 3" in line for line in said)
        row("resume", "fargan stop 3 + resume to 6 == straight 6", not differ and a.keys() == b.keys() and moved
            and resumed, f"{len(a)} tensors equal" if not differ else f"{len(differ)} differ, e.g. {differ[0]}")
    except Exception as exc:
        row("resume", "fargan stop 3 + resume to 6 == straight 6", False, reason(exc))
        return
    try:  # the resumed model steps on without a host sync (Adam's counters not on the GPU)
        cfg = image_job(device, not cuda, *base, "steps=6")
        model = build(cfg)
        stream = Stream(model.data, cfg.batch_size, cfg.seed, model.device)
        restore(model.method, stream, checkpoint.load(part / "ckpt" / "last.pt"))
        model.method.step(stream, log=True)
        ms = quiet_steps(model.method, stream, 3, cuda)
        row("resume", "quiet steps after a resume", True, f"{ms:.1f} ms/step" + (", no host sync" if cuda else ""))
    except Exception as exc:
        row("resume", "quiet steps after a resume", False, reason(exc))
    from ganzoo.use import eval_command, sample_command
    import numpy as np
    try:
        out = work / "samples.npz"
        sample_command(SampleConfig(run=str(part), n=50, out=str(out), device=device))
        with np.load(out) as z:
            good = z["samples"].shape == (50, 3, 32, 32) and z["samples"].dtype == np.uint8
        row("use", f"ganzoo sample from a {device} checkpoint", good, "50 x 3x32x32 uint8")
    except Exception as exc:
        row("use", f"ganzoo sample from a {device} checkpoint", False, reason(exc))
    try:
        eval_command(EvalConfig(run=str(part), device=device))
        record = json.loads((part / "metrics.jsonl").read_text().splitlines()[-1])
        row("use", f"ganzoo eval from a {device} checkpoint", record.get("source") == "eval",
            ", ".join(f"{k}={v:.4g}" for k, v in record.items() if isinstance(v, float) and k != "time") or
            "no metric")
    except Exception as exc:
        row("use", f"ganzoo eval from a {device} checkpoint", False, reason(exc))


# ---------------------------------------------------------------- torchrun
def check_torchrun(work: Path) -> None:
    """`torchrun -m ganzoo train` on every visible GPU (NCCL) against one process with the global batch:
    the same run to float rounding (bit for bit with one GPU, where the world is one process)."""
    import subprocess
    gpus = torch.cuda.device_count()
    ranks = 2 if gpus >= 2 else 1
    job = ["device=cuda", "dataset=cifar10", "synthetic_images=512", "arch=dcgan", "arch.g_width=32",
           "arch.d_width=32", "arch.g_batchnorm=false", "arch.d_batchnorm=false", "batch_size=64",
           "metrics.inception=false", "metrics.classifier=false", "method=aw", "loss.penalty=r1", "loss.k=1",
           "steps=6", "eval_every=0", "ckpt_every=0", "sample_every=0", "log_every=2", "deterministic=true",
           "tf32=false"]
    setting = f"{ranks} rank(s), aw + r1, vs one process"
    try:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}",
               "-m", "ganzoo", "train", *job, f"hydra.run.dir={work / 'torchrun'}"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            row("torchrun", setting, False, (proc.stderr.strip().splitlines() or ["no output"])[-1][:160])
            return
        train(compose_train(*job), work / "single")
        a = _method_tensors(work / "single" / "ckpt" / "last.pt")
        b = _method_tensors(work / "torchrun" / "ckpt" / "last.pt")
        worst = max((a[k].double() - b[k].double()).abs().max().item() for k in a if a[k].is_floating_point())
        ok = a.keys() == b.keys() and (worst == 0 if ranks == 1 else worst < 1e-4)
        row("torchrun", setting, ok, f"max |diff| {worst:.3g} over {len(a)} tensors")
    except Exception as exc:
        row("torchrun", setting, False, reason(exc))


# ---------------------------------------------------------------- fp16 penalty
def check_fp16_penalty() -> None:
    from ganzoo import losses
    try:
        cfg = image_job("cuda", False)
        _, make_d = build_nets(cfg.arch, (3, 32, 32))
        torch.manual_seed(0)
        D = make_d().cuda()
        real = (torch.rand(64, 3, 32, 32, device="cuda") * 2 - 1)

        def r1(dtype, scale=None):
            x = real.clone().requires_grad_(True)
            with torch.autocast("cuda", dtype=torch.float16, enabled=dtype == torch.float16):
                logits = D(x).float()
            return losses.r1(logits, x, scale).item()
        exact = r1(torch.float32)
        plain = r1(torch.float16)
        scaled = r1(torch.float16, torch.tensor(65536.0, device="cuda"))  # GradScaler's initial scale
        err_plain, err_scaled = abs(plain - exact) / exact, abs(scaled - exact) / exact
        row("fp16 r1", "dcgan D, batch 64: scaled fp16 vs fp32", err_scaled < 1e-2,
            f"fp32 {exact:.4g}; scaled fp16 rel. err {err_scaled:.2e}; unscaled {err_plain:.2e}")
    except Exception as exc:
        row("fp16 r1", "dcgan D, batch 64: scaled fp16 vs fp32", False, reason(exc))


# ---------------------------------------------------------------- throughput
def plain_loop_step(G, D, opt_g, opt_d, data, z_dim, z_uniform, batch, gen):
    """The ns-loss baseline written by hand: what ganzoo's loop is measured against."""
    idx = torch.randint(len(data), (batch,), device=data.device, generator=gen)
    real = data[idx].float().div_(127.5).sub_(1.0)

    def z():
        return (torch.rand(batch, z_dim, device=data.device, generator=gen) * 2 - 1 if z_uniform
                else torch.randn(batch, z_dim, device=data.device, generator=gen))
    with torch.no_grad():
        fake = G(z())
    loss_d = F.softplus(-D(real)).mean() + F.softplus(D(fake)).mean()
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    for p in D.parameters():
        p.requires_grad_(False)
    loss_g = F.softplus(-D(G(z()))).mean()
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    for p in D.parameters():
        p.requires_grad_(True)


def timed(fn, steps: int) -> float:
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t) / steps


def check_speed(steps: int) -> None:
    for arch in ("dcgan", "sngan_resnet"):
        for batch in (64, 128):
            setting = f"{arch} batch {batch}"
            try:
                cfg = compose_train("device=cuda", "dataset=cifar10", "synthetic_images=4096", f"arch={arch}",
                                    f"batch_size={batch}", "metrics.inception=false", "metrics.classifier=false")
                checkpoint.seed_everything(0)
                model = build(cfg)
                stream = Stream(model.data, cfg.batch_size, cfg.seed, model.device)
                ours = timed(lambda: model.method.step(stream, log=False), steps)
                make_g, make_d = build_nets(cfg.arch, model.data.shape)
                G, D = make_g().cuda(), make_d().cuda()
                opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999), fused=True)
                opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999), fused=True)
                data = model.data.finite.cuda()
                gen = torch.Generator(device="cuda").manual_seed(0)
                plain = timed(lambda: plain_loop_step(G, D, opt_g, opt_d, data, cfg.arch.z_dim,
                                                      cfg.arch.z_dist == "uniform", batch, gen), steps)
                row("speed", setting, True, f"ganzoo {batch / ours:.0f} img/s, plain loop {batch / plain:.0f} "
                                            f"img/s, ratio {plain / ours:.3f} (1 = as fast)")
            except Exception as exc:
                row("speed", setting, False, reason(exc))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, help="also write gpu_check.md and gpu_check.json here")
    ap.add_argument("--budget", type=float, default=300, help="seconds for the steps matrix (then skipped)")
    ap.add_argument("--speed-steps", type=int, default=30)
    args = ap.parse_args(argv)
    args.out = args.out.resolve() if args.out else None
    start = time.time()
    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    if cuda:
        print(f"CUDA device: {torch.cuda.get_device_name()}, torch {torch.__version__}", flush=True)
    else:
        print("no CUDA device: running the checks a CPU can (each method a few steps, exact resume, "
              "sample and eval from a checkpoint); the GPU checks need a GPU", flush=True)
    torch.set_num_threads(min(torch.get_num_threads(), 4))
    with tempfile.TemporaryDirectory(prefix="ganzoo-gpu-check-") as tmp:
        os.environ.setdefault("MPLBACKEND", "Agg")
        work = Path(tmp)
        os.chdir(work)  # ganzoo writes nothing outside this folder (classifier cache included)
        check_steps(device, start + args.budget)
        try:
            check_resume_and_use(device, work)
        except Exception:
            traceback.print_exc()
            row("resume", "setup", False, "see the traceback above")
        if cuda:
            check_torchrun(work)
            check_fp16_penalty()
            check_speed(args.speed_steps)
    failed = [r for r in rows if r["status"] == "FAIL"]
    table = ["| check | setting | status | detail |", "|---|---|---|---|"] + [
        f"| {r['check']} | {r['setting']} | {r['status']} | {r['detail']} |" for r in rows]
    summary = (f"{sum(r['status'] == 'ok' for r in rows)} passed, {len(failed)} failed "
               f"({sum(r['status'] == 'skipped' for r in rows)} skipped, "
               f"{sum(r['status'] == 'refused' for r in rows)} refused by design) in {time.time() - start:.0f} s")
    print("\n" + "\n".join(table) + "\n\n" + summary, flush=True)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "gpu_check.md").write_text("\n".join(table) + "\n\n" + summary + "\n")
        (args.out / "gpu_check.json").write_text(json.dumps({"device": device, "rows": rows}, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
