"""The claims table of docs/RESULTS.md: each paper claim a CPU can check, run against the baseline
at the same budget over several seeds, with a verdict.

    python scripts/reproduce.py                      # every claim, 10 seeds, two jobs at a time
    python scripts/reproduce.py --only sgan --seeds 3
    python scripts/reproduce.py --list               # the claims and their commands, nothing run

Each claim has two arms (the method, the baseline) run by `ganzoo train -m ... seed=0,..,S-1` into
<out>/<claim>/<arm>/seed_<s>; then each arm gets the report.md `ganzoo report` writes. Stopped and run again,
it runs only the seeds whose job is not `done` (resume=auto: a job cut short continues its checkpoint).
It prints the table
(and writes <out>/claims.md and claims.json): the metric's mean +- population std and per-seed
values per arm, in how many seeds the method was better and worse than the baseline run with the same
seed (the rest tie), and a verdict:

  reproduced      better on the mean and in at least 70% of the seeds
  partly          better on the mean and in more seeds than it was worse, short of the above
  not reproduced  otherwise

Most budgets are far below the papers' (each row says how far; microbatch_toy(_static) and aw_ring run at theirs);
a verdict holds for that budget.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from ganzoo.metrics.registry import higher_is_better
from ganzoo.errors import GanzooError
from ganzoo.report import read_job, write_report


@dataclass
class Claim:
    id: str
    method: str
    source: str            # paper, figure or section
    quote: str             # the claim in the paper's words
    common: List[str]      # overrides both arms share (the setting and budget)
    arm: List[str]         # the method's own overrides
    baseline: List[str]    # the baseline's own overrides
    budget: str            # our budget against the paper's
    baseline_from: Optional[str] = None  # another claim whose baseline arm is this one's (the same runs)
    max_seeds: Optional[int] = None      # image runs: at most this many seeds, whatever --seeds says
    metric: str = "modes_covered"
    also: List[str] = field(default_factory=lambda: ["high_quality"])


QUIET = ["eval_every=0", "sample_every=0", "device=cpu"]

CLAIMS = [
    Claim("fargan_ring", "fargan", "FARGAN (CVPR 2020) sec. 5.1, Fig. 2 (8-Gaussian ring)",
          "FARGAN only covers 3 modes at the beginning, it can cover other modes gradually ... FARGAN has the "
          "ability to find the uncovered modes",
          ["experiment=fargan_ring", "steps=5000", "ckpt_every=5000", *QUIET],
          ["method.N0=16"], ["method.N0=0"],
          "5,000 of the figure's 500,000 iterations; baseline NSGAN-0GP (N0=0, the same penalty)"),
    Claim("fargan_gaussian", "fargan", "FARGAN (CVPR 2020) sec. 3, Fig. 1 (200 samples of a 2-D Gaussian)",
          "See the results with fake-as-real consideration applied in Fig. 1d, 1h. A faithful distribution is "
          "generated even for a long time training",
          ["experiment=fargan_gaussian", "steps=5000", "ckpt_every=5000", *QUIET],
          ["method.N0=16"], ["method.N0=0"],
          "5,000 of the figure's 200,000 iterations; baseline NSGAN-0GP-sample (N0=0); MMD to fresh Gaussian "
          "samples (lower is better) and the mean distance to the nearest training point (small: memorised)",
          metric="mmd", also=["nn_train"]),
    Claim("fargan_grid", "fargan", "FARGAN (CVPR 2020) appendix E, Fig. 9 (25-Gaussian grid)",
          "Generation of our method on a mixture of 25 Gaussians dataset (one picture; the ring's text: "
          "\"FARGAN has the ability to find the uncovered modes\")",
          ["experiment=fargan_grid", "steps=5000", "ckpt_every=5000", *QUIET],
          ["method.N0=16"], ["method.N0=0"],
          "5,000 iterations (the picture gives none); baseline NSGAN-0GP (N0=0)"),
    Claim("aw_ring", "aw", "aw (CVPR 2021) sec. 5.3, Fig. 6 (8 Gaussians on the unit circle)",
          "the generator gradually converges to all eight classes and the discriminator scores stay high for "
          "all eight classes",
          ["experiment=aw_ring", "steps=25000", "ckpt_every=5000", *QUIET],
          ["method=aw"], ["method=gan"],
          "25,000 iterations, the figure's last panel (it shows 5,000-25,000); baseline the plain GAN of the "
          "same nets", also=["high_quality", "mmd"]),
    Claim("aw_ring_mlp", "aw", "aw (CVPR 2021) sec. 5.3, Fig. 6, at ganzoo's 2-D nets",
          "the generator gradually converges to all eight classes and the discriminator scores stay high for "
          "all eight classes",
          ["experiment=aw_ring", "arch=mlp", "steps=5000", "ckpt_every=5000", *QUIET],
          ["method=aw"], ["method=gan"],
          "the paper's unit-circle ring, NS loss and batch 512 on ganzoo's mlp nets (3 x 128), 5,000 "
          "iterations; baseline the plain GAN of the same nets"),
    Claim("stackelberg_toy", "stackelberg", "Stackelberg GAN (ICLR 2019 subm.) sec. 5.1, Fig. 1 (8-Gaussian ring)",
          "each generator automatically learns balanced number of modes without any mode being dropped",
          ["experiment=stackelberg_toy", "steps=5000", "ckpt_every=5000", *QUIET],
          ["method.I=8"], ["method.I=1"],
          "5,000 of 25,000 iterations (our reading of its epochs); baseline I=1, the same nets"),
    Claim("microbatch_toy", "microbatch", "microbatchGAN (WACV 2020) supp. C, Fig. 9 (toy mixture), Table 4",
          "We observe bigger sample diversity with our method, while still approximating the real data "
          "distribution",
          ["experiment=microbatch_toy", "steps=25000", "ckpt_every=5000", *QUIET],
          ["method.K=8"], ["method.K=1"],
          "Table 4's own budget: 25,000 iterations at batch 512; baseline K=1 (the standard GAN)",
          also=["high_quality", "mmd"]),
    Claim("microbatch_toy_static", "microbatch",
          "microbatchGAN (WACV 2020) supp. C, Fig. 9, Table 4, with alpha held at its start",
          "We observe bigger sample diversity with our method, while still approximating the real data "
          "distribution",
          ["experiment=microbatch_toy", "steps=25000", "ckpt_every=5000", *QUIET],
          ["method.K=8", "method.alpha=0.14185"], ["method.K=1"],
          "as microbatch_toy, with a static alpha at the learned one's start, sigmoid(-1.8) = 0.14185: whether "
          "the learned alpha's rise to 0.95 is what starves G", baseline_from="microbatch_toy",
          also=["high_quality", "mmd"]),
    Claim("microbatch_ring", "microbatch", "microbatchGAN (WACV 2020) supp. C, Fig. 9, at ganzoo's 2-D nets",
          "We observe bigger sample diversity with our method, while still approximating the real data "
          "distribution",
          ["dataset=ring", "arch=mlp", "optim=adam", "batch_size=512", "steps=2000", "ckpt_every=2000", *QUIET],
          ["method=microbatch", "method.K=8"], ["method=microbatch", "method.K=1"],
          "the paper's K=8 and batch 512 on ganzoo's mlp nets (3 x 128), 2,000 iterations; baseline K=1"),
    Claim("stackelberg_fashion_mnist", "stackelberg",
          "Stackelberg GAN (ICLR 2019 subm.) sec. 5.2, Fig. 1 (right) / Fig. 7, Fashion-MNIST",
          "each generator automatically learns balanced number of modes without any mode being dropped",
          ["experiment=stackelberg_fashion_mnist", "steps=1500", "ckpt_every=1500", "metrics.num_samples=5000",
           *QUIET],
          ["method.I=10"], ["method.I=1"],
          "1,500 of our reading's 300,000 iterations (batch 100); baseline I=1, the same nets; the offline "
          "classifier's metrics", metric="classes_covered", also=["class_kl", "cfid"], max_seeds=3),
    Claim("sgan_ring", "sgan", "SGAN (CVPR 2018) abstract; supp. Fig. 1 (toy mixtures)",
          "this approach outperforms standard training in terms of better mitigating mode collapse",
          ["dataset=ring", "arch=mlp", "optim=adam", "steps=2000", "ckpt_every=2000", *QUIET],
          ["method=sgan"], ["method=gan"],
          "2,000 iterations on ganzoo's mlp nets and Adam 2e-4 (the paper's 4x512 WGAN-GP nets at lr 1e-5 "
          "take 0.6 s an iteration here, 100,000 iterations); output G_0 against one baseline GAN"),
    Claim("sgan_ring_refresh100", "sgan",
          "SGAN (CVPR 2018) abstract: message copies kept 100 updates (method.refresh=100)",
          "this approach outperforms standard training in terms of better mitigating mode collapse",
          ["dataset=ring", "arch=mlp", "optim=adam", "steps=2000", "ckpt_every=2000", *QUIET],
          ["method=sgan", "method.refresh=100"], ["method=gan"],
          "as sgan_ring, with D^msg and G^msg copied from locals every 100 global updates and trained against the "
          "global pair in between", baseline_from="sgan_ring"),
    Claim("sgan_ring_v1", "sgan", "SGAN (CVPR 2018) abstract: v1's reading (opponent=live) for comparison",
          "this approach outperforms standard training in terms of better mitigating mode collapse",
          ["dataset=ring", "arch=mlp", "optim=adam", "steps=2000", "ckpt_every=2000", *QUIET],
          ["method=sgan", "method.opponent=live"], ["method=gan"],
          "as sgan_ring, with G_0 against the live local Ds (v1)", baseline_from="sgan_ring"),
]


def arm_dir(out: Path, claim: Claim, arm: str) -> Path:
    if arm == "baseline" and claim.baseline_from:
        return out / claim.baseline_from / arm
    return out / claim.id / arm


STEPS: List[str] = []  # --steps N: every claim's budget replaced (a quick check of the pipeline, not a result)


def command(claim: Claim, arm: str, seeds: List[int], out: Path) -> List[str]:
    own = claim.arm if arm == "method" else claim.baseline
    return ["ganzoo", "train", "-m", *claim.common, *own, *STEPS, "seed=" + ",".join(map(str, seeds)),
            f"hydra.sweep.dir={arm_dir(out, claim, arm)}", "hydra.sweep.subdir=seed_${seed}", "resume=auto"]


def done_seeds(folder: Path) -> Dict[int, dict]:
    """seed -> the final metrics of every finished job in an arm's folder."""
    found: Dict[int, dict] = {}
    if folder.is_dir():
        for job in folder.glob("seed_*"):
            j = read_job(job)
            if j.status == "done" and j.final:
                found[int(job.name.split("_", 1)[1])] = j.final
    return found


def seeds_of(claim: Claim, seeds: List[int]) -> List[int]:
    return seeds[:claim.max_seeds] if claim.max_seeds else seeds


def run_part(claim: Claim, arm: str, seeds: List[int], part: int, out: Path) -> Optional[str]:
    """One `ganzoo train -m` over some of an arm's seeds (its own log: <arm>.log, <arm>.<part>.log)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # one core per job
    folder = arm_dir(out, claim, arm)
    log = folder.with_suffix(".log") if part == 0 else folder.with_suffix(f".{part}.log")
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as fh:
        proc = subprocess.run(command(claim, arm, seeds, out), stdout=fh, stderr=subprocess.STDOUT, env=env)
    if proc.returncode != 0:
        return f"{claim.id}/{arm}: ganzoo train exited {proc.returncode} (see {log})"
    return None


def parts(claim: Claim, arm: str, seeds: List[int], out: Path, jobs: int) -> List[tuple]:
    """An arm's seeds without a finished job, dealt round-robin into up to `jobs` parts: two long arms
    of unequal cost (K=8 against K=1) keep every job slot busy instead of waiting on the slower one.
    Parts of one arm share its sweep folder; each job locks its own seed_<s> folder."""
    missing = [s for s in seeds_of(claim, seeds) if s not in done_seeds(arm_dir(out, claim, arm))]
    return [(claim, arm, missing[i::jobs], i) for i in range(min(jobs, len(missing)))]


def report_arm(folder: Path) -> None:
    """`ganzoo report <folder>`, in this process (a command would start an interpreter per arm)."""
    try:
        write_report(folder)
    except (GanzooError, OSError) as exc:  # the claims table does not need it
        print(f"reproduce: no report.md for {folder}: {exc}", file=sys.stderr)


def _stats(values: List[float]) -> str:
    if not values:
        return "—"
    mean, std = statistics.fmean(values), statistics.pstdev(values)
    return f"{mean:.3g} ± {std:.2g} ({', '.join(f'{v:.3g}' for v in values)})"


def verdict(mine: List[float], base: List[float], higher: bool) -> tuple:
    """(seeds better, seeds worse, the verdict) of the method against the baseline run with the same seed."""
    sign = 1 if higher else -1
    wins = sum(sign * (m - b) > 0 for m, b in zip(mine, base))
    losses = sum(sign * (m - b) < 0 for m, b in zip(mine, base))
    mean_better = sign * (statistics.fmean(mine) - statistics.fmean(base)) > 0
    if mean_better and wins >= 0.7 * len(mine):
        word = "reproduced"
    elif mean_better and wins > losses:
        word = "partly"
    else:
        word = "not reproduced"
    return wins, losses, word


def table(claims: List[Claim], seeds: List[int], out: Path) -> tuple:
    rows, records = [], []
    head = ("| claim | paper | our setting | metric | method | baseline (same budget) | seeds better / worse "
            "| verdict | command |")
    rows += [head, "|" + "---|" * 9]
    for c in claims:
        mine_all, base_all = done_seeds(arm_dir(out, c, "method")), done_seeds(arm_dir(out, c, "baseline"))
        both = [s for s in seeds_of(c, seeds) if s in mine_all and s in base_all]
        for metric in [c.metric, *c.also]:
            mine = [mine_all[s].get(metric, float("nan")) for s in both]
            base = [base_all[s].get(metric, float("nan")) for s in both]
            if not both:
                wins, losses, word = 0, 0, "not run"
            else:
                wins, losses, word = verdict(mine, base, higher_is_better(metric))
            cmd = " ".join(command(c, "method", seeds_of(c, seeds), out)[:-3])  # without reproduce's own folders
            first = metric == c.metric
            rows.append("| " + " | ".join([
                f"**{c.id}**: \"{c.quote}\"" if first else "", c.source if first else "", c.budget if first else "",
                metric, _stats(mine), _stats(base), f"{wins} / {losses} of {len(both)}", word if first else f"({word})",
                f"`{cmd}`" if first else ""]) + " |")
            records.append({"claim": c.id, "metric": metric, "seeds": both, "method": mine, "baseline": base,
                            "better": wins, "worse": losses, "verdict": word})
    return "\n".join(rows), records


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="", help="comma-separated claim ids or method names")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--jobs", type=int, default=2,
                    help="training processes at once, each one torch thread; an arm's seeds are split across them")
    ap.add_argument("--out", type=Path, default=Path("reproduce"))
    ap.add_argument("--steps", type=int, help="replace every budget with this many steps (a pipeline check)")
    ap.add_argument("--list", action="store_true", help="print the claims and commands, run nothing")
    args = ap.parse_args(argv)
    wanted = {w for w in args.only.split(",") if w}
    claims = [c for c in CLAIMS if not wanted or c.id in wanted or c.method in wanted]
    if not claims:
        print(f"reproduce: no claim matches --only {args.only}; ids: {', '.join(c.id for c in CLAIMS)}",
              file=sys.stderr)
        return 2
    if args.seeds < 1 or args.jobs < 1:
        print("reproduce: --seeds and --jobs must be >= 1", file=sys.stderr)
        return 2
    seeds = list(range(args.seeds))
    if args.steps is not None:
        STEPS[:] = [f"steps={args.steps}", f"ckpt_every={args.steps}"]
    if args.list:
        for c in claims:
            for arm in ("method", "baseline"):
                print(" ".join(command(c, arm, seeds_of(c, seeds), args.out)))
        return 0
    ids = {c.id for c in claims}  # a shared baseline runs once, under the claim that owns it
    arms = [(c, a) for c in claims for a in ("method", "baseline") if a == "method" or c.baseline_from not in ids]
    tasks = [p for c, a in arms for p in parts(c, a, seeds, args.out, args.jobs)]
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda t: run_part(t[0], t[1], t[2], t[3], args.out), tasks))
    failed = {(t[0].id, t[1]) for t, error in zip(tasks, results) if error}
    errors = [e for e in results if e]
    for claim, arm in arms:  # after the threads: matplotlib's pyplot is not thread-safe
        if (claim.id, arm) not in failed:
            report_arm(arm_dir(args.out, claim, arm))
    md, records = table(claims, seeds, args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "claims.md").write_text(md + "\n")
    (args.out / "claims.json").write_text(json.dumps(records, indent=1))
    print(md)
    for e in errors:
        print(f"reproduce: {e}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
