"""How much slower is ganzoo's training loop than a plain PyTorch loop doing the same work?

Prints, for each configuration (batch 256 and batch 64 by default), the median time
per training step of ``ganzoo.train.train`` and of a hand-written loop, and the median
of the per-repeat ratios ganzoo / plain.

Both sides run the same computation: the default 2-D MLP pair of conf/arch/mlp.yaml
(z_dim 2, G 2-128-128-128-2, D 2-128-128-128-1, ReLU), the 8-mode ring
(randint mode + 0.02 * randn), normal noise, the ns loss, Adam 2e-4 (0.5, 0.999),
n_dis=1.  D step: fake = G(z) under no_grad, loss softplus(-D(real)).mean() +
softplus(D(fake)).mean().  G step with D's params requires_grad False, loss
softplus(-D(G(z))).mean().  The plain loop even uses the same seeds and draw order
as ganzoo, so after N steps its weights equal ganzoo's checkpoint bit for bit on
CPU; the script checks this first (``max |diff|`` line), so the ratio compares
like with like.

How per-step time is measured (both sides alike)
-----------------------------------------------
``train()`` does fixed work besides the loop: building the model, opening the
TensorBoard writer, and at the end a checkpoint, a 2,500-sample evaluation, a
matplotlib picture and the hparams record.  None of that is per-step cost, and
timing only the loop would mean patching or copying ganzoo's code.  So each side
is run twice per repeat, with S1 and S2 = S1 + steps steps, and

    per-step time = (time(S2 steps) - time(S1 steps)) / (S2 - S1)

which cancels every fixed cost, first-step warm-up included, without touching
ganzoo.  The plain side is timed the same way (its setup -- building nets,
optimisers, generators -- is inside its timed call too).  Everything ganzoo does
*every step* or *every log_every steps* (the dicts of detached scalars, the two
LambdaLR schedulers, the frozen() requires_grad toggles, the logging step with gradient norms and
TensorBoard scalars) is therefore counted, which is the point.  ganzoo runs
in-process on a temporary run folder, with eval_every=ckpt_every=sample_every=0
and the default log_every (50).  S1 and S2 are multiples of log_every by default
so both contain whole logging periods.

stdout is redirected to a non-terminal while ganzoo trains, so its logger takes
the plain-lines path (no tqdm bar) whatever terminal this runs in; pass --tty to
time it with the tqdm bar instead (what an interactive user gets).

The sides are interleaved: each repeat runs ganzoo S1, plain S1, ganzoo S2, plain
S2 (plain first in odd repeats), so bursts of load on a shared machine hit both
sides alike as far as possible; each reported number is a median over repeats (the
table also gives the range of the per-repeat ratios and the ratio from the fastest
runs, the least disturbed estimate on a noisy machine; the 1-minute load average
is printed per repeat).  One warm-up round of each side runs first (imports of
matplotlib / tensorboard, first-call costs of the torch kernels: about 1 s).  Torch
threads are left at torch's default unless --threads is given, and are printed.

On a shared machine prefer --threads 1: with torch's default of one thread per core,
any other busy process stalls the intra-op thread barrier, and a step can take 20x
its quiet time (seen on a 2-core VM: 3.5 ms -> 88 ms per step), while one thread
only loses its share of the CPU (repeat-to-repeat spread about 4%).  Both sides
always run with the same thread count, so the ratio stays a like-for-like
comparison either way.

Usage:  python scripts/bench.py [--repeats 7] [--steps 1000] [--base-steps 100] [--batches 256 64]
                               [--threads N] [--tty] [--quick]
        python scripts/bench.py --methods [--repeats 5] [--steps 200] [--only 2d|toys|images]
        python scripts/bench.py --images
        python scripts/bench.py --input      (images/s of each input path against a step's needs)
        python scripts/bench.py --distributed [--repeats 5] [--steps 100]
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import io
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

SEED = 0


# ----------------------------------------------------------------------------- ganzoo side
def ganzoo_config(batch: int, steps: int, device: str, extra=()):
    from ganzoo.config import compose_train

    # the configuration the plain loop reproduces, named (the default job is another: fargan on its own nets)
    return compose_train("method=gan", "arch=mlp", "optim=adam", "dataset=ring", "loss=ns",
                         f"batch_size={batch}", f"steps={steps}", "eval_every=0", "ckpt_every=0",
                         "sample_every=0", f"device={device}", f"seed={SEED}", *extra)


class _TTY(io.StringIO):
    def isatty(self) -> bool:  # makes ganzoo's RunLogger show its tqdm bar (into this buffer)
        return True


def run_ganzoo(cfg, tty: bool = False):
    """Seconds for one whole ganzoo.train.train(cfg) call, and the run folder's checkpoint path."""
    from ganzoo.train import train

    with tempfile.TemporaryDirectory(prefix="ganzoo-bench-") as tmp:
        sink = _TTY() if tty else io.StringIO()
        gc.collect()
        with contextlib.redirect_stdout(sink):
            t0, c0 = time.perf_counter(), time.process_time()
            train(cfg, Path(tmp))
            dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        state = torch.load(Path(tmp) / "ckpt" / "last.pt", map_location="cpu", weights_only=True)
    return (dt, cpu), state["method"]


# ----------------------------------------------------------------------------- plain side
def _mlp(d_in: int, d_out: int, width: int = 128, depth: int = 3) -> nn.Sequential:
    layers, w = [], d_in
    for _ in range(depth):
        layers += [nn.Linear(w, width), nn.ReLU()]
        w = width
    layers.append(nn.Linear(w, d_out))
    return nn.Sequential(*layers)


def plain_train(steps: int, batch: int, device: torch.device, seed: int = SEED):
    """The same GAN as ganzoo's default job, written out by hand. Returns (G, D)."""
    torch.manual_seed(seed)
    G = _mlp(2, 2).to(device)
    D = _mlp(2, 1).to(device)
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    d_params = list(D.parameters())
    z_gen = torch.Generator(device=device).manual_seed(seed * 1_000_003 + 17)  # ganzoo's noise seed
    x_gen = torch.Generator(device=device).manual_seed(seed + 7919)            # ganzoo's data seed
    angle = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    modes = torch.stack([2.0 * angle.cos(), 2.0 * angle.sin()], 1).float().to(device)

    for _ in range(steps):
        # D step
        real = modes[torch.randint(8, (batch,), generator=x_gen, device=device)] \
            + 0.02 * torch.randn(batch, 2, generator=x_gen, device=device)
        with torch.no_grad():
            fake = G(torch.randn(batch, 2, generator=z_gen, device=device))
        loss_d = F.softplus(-D(real).squeeze(1)).mean() + F.softplus(D(fake).squeeze(1)).mean()
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        # G step
        for p in d_params:
            p.requires_grad_(False)
        loss_g = F.softplus(-D(G(torch.randn(batch, 2, generator=z_gen, device=device))).squeeze(1)).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        for p in d_params:
            p.requires_grad_(True)
        opt_g.step()
    return G, D


def run_plain(steps: int, batch: int, device: torch.device):
    """(wall seconds, CPU seconds of this process) for one plain run."""
    gc.collect()
    t0, c0 = time.perf_counter(), time.process_time()
    plain_train(steps, batch, device)
    return time.perf_counter() - t0, time.process_time() - c0


# ----------------------------------------------------------------------------- main
def check_same(batch: int, steps: int, device: str) -> float:
    """Max |ganzoo weight - plain weight| after `steps` steps (0.0: the two loops agree exactly)."""
    _, state = run_ganzoo(ganzoo_config(batch, steps, device))
    G, D = plain_train(steps, batch, torch.device(device))
    diff = 0.0
    for net, saved in ((G, state["G"]), (D, state["D"])):
        mine = net.state_dict()
        for k, v in saved.items():
            ours = mine[k.removeprefix("net.")]
            diff = max(diff, (ours.cpu() - v.cpu()).abs().max().item())
    return diff


# bench.py --<mode>: the benchmark that mode runs (each a script of its own)
MODES = {"--methods": "bench_methods", "--images": "bench_images", "--distributed": "bench_distributed",
         "--input": "bench_input", "--augment": "bench_augment"}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--write" in argv:  # --write PATH: also write what this benchmark prints into PATH (benchdoc.py)
        at = argv.index("--write")
        if at + 1 >= len(argv):
            raise SystemExit("bench.py: --write needs a file, e.g. --write docs/BENCHMARKS.md")
        path, rest = argv[at + 1], argv[:at] + argv[at + 2:]
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from benchdoc import run_and_write
        name = next((flag[2:] for flag in MODES if flag in rest), "loop")
        return run_and_write(name, main, rest, path, " ".join(["python scripts/bench.py", *argv]))
    # the other benches take their own --repeats/--steps/--threads: hand them every argument untouched
    for flag, other in MODES.items():
        if flag in argv:
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            return __import__(other).main([a for a in argv if a != flag])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7, help="interleaved repeats per configuration (default 7)")
    ap.add_argument("--steps", type=int, default=1000,
                    help="steps timed per repeat: S2 - S1, the difference of the two run lengths (default 1000)")
    ap.add_argument("--base-steps", type=int, default=100, help="S1, the short run's length (default 100)")
    ap.add_argument("--batches", type=int, nargs="+", default=[256, 64], help="batch sizes (default 256 64)")
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    ap.add_argument("--threads", type=int, default=0,
                    help="torch.set_num_threads for both sides (default 0: leave torch's default)")
    ap.add_argument("--tty", action="store_true", help="let ganzoo draw its tqdm bar (as in a terminal)")
    ap.add_argument("--quick", action="store_true", help="fast run: 5 repeats, 200 steps, S1=50 (noisier)")
    ap.add_argument("--images", action="store_true",
                    help="instead: the image figures of scripts/bench_images.py (images/s of DCGAN and "
                         "ResNet-32 steps, compile on/off, first vs second FID evaluation)")
    ap.add_argument("--input", action="store_true",
                    help="instead: images/s of each input path (in memory, image folder at workers 0/2) "
                         "against what a training step consumes (scripts/bench_input.py)")
    ap.add_argument("--distributed", action="store_true",
                    help="instead: 2 gloo ranks vs 1 process step time and bytes all-reduced per method "
                         "(scripts/bench_distributed.py)")
    ap.add_argument("--methods", action="store_true",
                    help="instead: every method's step time over the baseline's (scripts/bench_methods.py; "
                         "2-D MLP, the papers' toy players, Fashion-MNIST DCGAN)")
    ap.add_argument("--augment", action="store_true",
                    help="instead: each augmentation's and D-loss regulariser's step time over augment=none's "
                         "(scripts/bench_augment.py; DCGAN, 32x32, batch 64)")
    ap.add_argument("--write", metavar="FILE", help="with any mode: also write the printed table into FILE "
                    "(e.g. docs/BENCHMARKS.md) as that benchmark's section, with the machine and date")
    args = ap.parse_args(argv)
    if args.quick:
        args.repeats, args.steps, args.base_steps = 5, 200, 50
    if args.repeats < 1 or args.steps < 1 or args.base_steps < 1:
        ap.error("--repeats, --steps and --base-steps must be >= 1")
    s1, s2 = args.base_steps, args.base_steps + args.steps
    device = torch.device(args.device)
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    print(f"torch {torch.__version__}  threads={torch.get_num_threads()}  "
          f"interop={torch.get_num_interop_threads()}  device={device}  python {sys.version.split()[0]}")
    print(f"per-step time = (t[S2={s2}] - t[S1={s1}]) / {args.steps}; {args.repeats} repeats, "
          f"sides interleaved; ganzoo stdout {'tty (tqdm bar)' if args.tty else 'not a tty (log lines)'}")

    diff = check_same(args.batches[0], 60, args.device)
    print(f"same computation check (batch {args.batches[0]}, 60 steps): max |G,D weight diff| = {diff:.3g}"
          + ("  (bit-identical)" if diff == 0 else ""))

    rows = []
    for batch in args.batches:
        cfg1, cfg2 = ganzoo_config(batch, s1, args.device), ganzoo_config(batch, s2, args.device)
        run_ganzoo(cfg1, args.tty)  # warm-up
        run_plain(s1, batch, device)
        g_ms, p_ms, ratios, cpu_ratios = [], [], [], []
        times = {}  # (side, steps) -> [seconds per repeat]
        for r in range(args.repeats):
            load = os.getloadavg()[0]
            # short runs, then long runs; within each length the side that goes first alternates
            t = {}
            for n, cfg in ((s1, cfg1), (s2, cfg2)):
                order = ("ganzoo", "plain") if r % 2 == 0 else ("plain", "ganzoo")
                for side in order:
                    if side == "ganzoo":
                        t[side, n] = run_ganzoo(cfg, args.tty)[0]  # (wall, cpu)
                    else:
                        t[side, n] = run_plain(n, batch, device)
            for key, v in t.items():
                times.setdefault(key, []).append(v[0])
            g = (t["ganzoo", s2][0] - t["ganzoo", s1][0]) / args.steps * 1e3
            p = (t["plain", s2][0] - t["plain", s1][0]) / args.steps * 1e3
            # CPU time of the process: time spent waiting for a core another program holds is not
            # counted, so on a shared machine this ratio is the steadier one (most with --threads 1)
            cpu = ((t["ganzoo", s2][1] - t["ganzoo", s1][1]) / (t["plain", s2][1] - t["plain", s1][1]))
            g_ms.append(g)
            p_ms.append(p)
            ratios.append(g / p)
            cpu_ratios.append(cpu)
            print(f"  batch {batch:4d} repeat {r + 1}/{args.repeats}: ganzoo {g:7.3f} ms/step  "
                  f"plain {p:7.3f} ms/step  ratio {g / p:6.3f}  cpu ratio {cpu:6.3f}   (load avg {load:.1f})",
                  flush=True)
        # least-disturbed estimate: load only ever adds time, so the fastest run of each kind is the
        # cleanest; (min t[S2] - min t[S1]) per side (a min of differences would reward a slowed S1 run)
        best = {side: (min(times[side, s2]) - min(times[side, s1])) / args.steps * 1e3 for side in ("ganzoo", "plain")}
        rows.append((batch, statistics.median(g_ms), statistics.median(p_ms), statistics.median(ratios),
                     min(ratios), max(ratios), best["ganzoo"] / best["plain"], statistics.median(cpu_ratios)))

    print()
    print("ms/step: median over repeats.  ratio: median of the per-repeat ratios ganzoo/plain; range: their min-max;")
    print("best: the same ratio from the fastest run of each kind, (min t[S2] - min t[S1]) ganzoo / plain;")
    print("cpu: median ratio of per-step process CPU time (insensitive to other programs on the machine)")
    head = (f"{'batch':>5}  {'ganzoo ms/step':>14}  {'plain ms/step':>13}  {'ratio':>6}  {'range':>13}  "
            f"{'best':>6}  {'cpu':>6}")
    print(head)
    print("-" * len(head))
    for batch, g, p, ratio, lo, hi, mm, cpu in rows:
        print(f"{batch:>5}  {g:>14.3f}  {p:>13.3f}  {ratio:>6.3f}  {lo:>6.3f}-{hi:<6.3f}  {mm:>6.3f}  {cpu:>6.3f}")
    if any(row[5] - row[4] > 0.1 for row in rows):
        print("note: the per-repeat ratios spread by more than 0.1: the machine was busy during the run "
              "(see the load averages); trust 'best' and the median only as far as they agree, or rerun")


if __name__ == "__main__":
    raise SystemExit(main())
