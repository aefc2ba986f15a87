"""The claims table of docs/RESULTS.md: each paper claim a CPU can check, run against its baseline at the
same budget over several seeds, with a paired test and a verdict.

    python scripts/reproduce.py                      # every claim, 10 seeds (3 on Fashion-MNIST), two jobs at a time
    python scripts/reproduce.py --only aw_ring
    python scripts/reproduce.py --list               # the claims and their commands, nothing run
    python scripts/reproduce.py --table              # the table of the runs already there, nothing run
    python scripts/reproduce.py --steps 20 --seeds 2 # a pipeline check: the same table, no verdicts

Each claim has two arms (the method, the baseline) run by `ganzoo train -m ... seed=0,..,S-1` into
<out>/<claim>/<arm>/seed_<s>; then each arm gets the report.md `ganzoo report` writes. Stopped and run again,
it runs only the seeds whose job is not `done` (resume=auto: a job cut short continues its checkpoint).
It prints the table (and writes <out>/claims.md and claims.json).

The verdict rule (ganzoo/stats.py), stated above the table:
  both arms failed  the claim counts modes and both arms' median modes covered is <= 1, whatever else;
  reproduced        the method better on the mean and p < 0.05 (Wilcoxon signed-rank over the seeds, two-sided);
  not reproduced    the baseline better on the mean and p < 0.05;
  inconclusive      p >= 0.05.
A run with fewer steps or seeds than its claim's (--steps, --seeds) is a pipeline check: every row says so and
none gets a verdict. Claims evaluated more than once also print the metric's mean at every evaluation.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from ganzoo.errors import GanzooError
from ganzoo.metrics.registry import higher_is_better
from ganzoo.report import Job, read_job, write_report
from ganzoo.stats import ALPHA, compare

PIPELINE = "pipeline check, not a result"


@dataclass
class Claim:
    id: str
    method: str
    source: str            # paper, figure or section
    quote: str             # the claim in the paper's words
    common: List[str]      # overrides both arms share (the setting and budget)
    arm: List[str]         # the method's own overrides
    baseline: List[str]    # the baseline's own overrides
    budget: str            # our setting and budget against the paper's
    steps: int             # our budget for the claim (a run with fewer steps is a pipeline check)
    baseline_from: Optional[str] = None  # another claim whose baseline arm is this one's (the same runs)
    method_from: Optional[str] = None    # another claim whose method arm is this one's
    seeds: int = 10                      # the seeds the claim needs (a run with fewer is a pipeline check)
    max_seeds: Optional[int] = None      # image runs: at most this many seeds, whatever --seeds says
    evals: int = 1                       # evaluations spread over the run (the last one is the result)
    metric: str = "modes_covered"
    also: List[str] = field(default_factory=lambda: ["high_quality"])
    own: List[str] = field(default_factory=list)  # the method arm's own numbers (no baseline counterpart)
    collapse: bool = True                # "both arms failed" applies (metrics of mode coverage)


QUIET = ["sample_every=0", "device=cpu"]


def budget(steps: int, evals: int = 1) -> List[str]:
    """`steps`, a checkpoint at the end and `evals` evaluations spread over the run."""
    return [f"steps={steps}", f"ckpt_every={steps}", f"eval_every={steps // evals if evals > 1 else 0}", *QUIET]


SGAN_READING = ("tests ganzoo's reading of SGAN (message copies of local pairs; the main paper's Algorithm 1 "
                "could not be read, and no authors' code exists)")
FARGAN_31 = "SGD 3e-3 and data scale of [31]'s released code"
D2GAN = "D2GAN's released toy (std 0.141 ring, N(0, 0.01) init, softplus D)"

CLAIMS = [
    Claim("fargan_ring", "fargan", "FARGAN (CVPR 2020) sec. 5.1, Fig. 2 (8-Gaussian ring)",
          "FARGAN only covers 3 modes at the beginning, it can cover other modes gradually ... FARGAN has the "
          "ability to find the uncovered modes",
          ["experiment=fargan_ring"], ["method.N0=16"], ["method.N0=0"],
          f"{FARGAN_31}; 20,000 of the figure's 500,000 iterations ([31]'s own run length; course over 5 "
          "evaluations); baseline NSGAN-0GP (N0=0, the same penalty)", 20_000, evals=5,
          also=["high_quality", "mmd"]),
    Claim("fargan_ring_adam", "fargan", "FARGAN (CVPR 2020) sec. 5.1, Fig. 2, ganzoo's Adam variant",
          "FARGAN has the ability to find the uncovered modes",
          ["experiment=fargan_ring_adam"], ["method.N0=16"], ["method.N0=0"],
          "v1-v2's setting (Adam 3e-3, ganzoo's radius-2 ring), 5,000 iterations; baseline NSGAN-0GP", 5_000),
    Claim("fargan_gaussian", "fargan", "FARGAN (CVPR 2020) sec. 3, Fig. 1 (200 samples of a 2-D Gaussian)",
          "See the results with fake-as-real consideration applied in Fig. 1d, 1h. A faithful distribution is "
          "generated even for a long time training",
          ["experiment=fargan_gaussian"], ["method.N0=16"], ["method.N0=0"],
          f"{FARGAN_31}; 20,000 of the figure's 200,000 iterations; baseline NSGAN-0GP-sample (N0=0); MMD to fresh "
          "Gaussian samples (lower is better) and nn_train_gap (below 0: nearer the 200 training points than "
          "fresh samples are, i.e. memorised)", 20_000, metric="mmd", also=["nn_train_gap"], collapse=False,
          evals=5),
    Claim("fargan_grid", "fargan", "FARGAN (CVPR 2020) appendix E, Fig. 9 (25-Gaussian grid)",
          "Generation of our method on a mixture of 25 Gaussians dataset (one picture; the ring's text: "
          "\"FARGAN has the ability to find the uncovered modes\")",
          ["experiment=fargan_grid"], ["method.N0=16"], ["method.N0=0"],
          f"{FARGAN_31}; 20,000 iterations (the picture gives none; [31]'s own run length); baseline NSGAN-0GP (N0=0)",
          20_000, evals=5, also=["high_quality", "mmd"]),
    Claim("aw_ring", "aw", "aw (CVPR 2021) sec. 5.3, Fig. 6 (8 Gaussians on the unit circle)",
          "the generator gradually converges to all eight classes and the discriminator scores stay high for "
          "all eight classes",
          ["experiment=aw_ring"], ["method=aw"], ["method=gan"],
          "Unrolled GAN's toy nets and Adam 1e-4 (as the aw paper points to them), 25,000 iterations (the "
          "figure's last panel); baseline the plain GAN; D's mean real logit per mode (min over modes, spread)",
          25_000, also=["high_quality", "d_mode_score_min", "d_mode_score_spread"], evals=5),
    Claim("stackelberg_toy", "stackelberg", "Stackelberg GAN (ICLR 2019 subm.) sec. 5.1, Fig. 1 (8-Gaussian ring)",
          "each generator automatically learns balanced number of modes without any mode being dropped",
          ["experiment=stackelberg_toy"], ["method.I=8"], ["method.I=1"],
          "5,000 of 25,000 iterations (our reading of its 200 epochs); baseline I=1 of the same 2-16-2 net",
          5_000, own=["modes_per_generator", "modes_per_generator_max", "generators_per_mode"]),
    Claim("stackelberg_toy_wide", "stackelberg", "Stackelberg GAN sec. 5.1, Fig. 3a: one wider generator",
          "each generator automatically learns balanced number of modes without any mode being dropped",
          ["experiment=stackelberg_toy"], ["method.I=8"],
          ["method.I=1", "arch=stackelberg_toy_wide"],
          "as stackelberg_toy; baseline the paper's single 2-128-2 generator", 5_000,
          method_from="stackelberg_toy"),
    Claim("stackelberg_toy_deep", "stackelberg", "Stackelberg GAN sec. 5.1, Fig. 3b: one deeper generator",
          "each generator automatically learns balanced number of modes without any mode being dropped",
          ["experiment=stackelberg_toy"], ["method.I=8"],
          ["method.I=1", "arch=stackelberg_toy_deep"],
          "as stackelberg_toy; baseline the paper's single 2-128-256-512-1024-2 generator", 5_000,
          method_from="stackelberg_toy"),
    Claim("microbatch_toy", "microbatch", "microbatchGAN (WACV 2020) supp. C, Fig. 9 (toy mixture), Table 4",
          "We observe bigger sample diversity with our method, while still approximating the real data "
          "distribution",
          ["experiment=microbatch_toy"], ["method.K=8"], ["method.K=1"],
          f"{D2GAN}, K=8, batch 512, self-learned sigmoid alpha (additive reading), 10,000 of Table 4's 25,000 "
          "iterations; baseline K=1 (the standard GAN)", 10_000, also=["high_quality", "mmd"], evals=4),
    Claim("microbatch_ring", "microbatch", "microbatchGAN (WACV 2020) supp. C, Fig. 9, at ganzoo's 2-D nets",
          "We observe bigger sample diversity with our method, while still approximating the real data "
          "distribution",
          ["dataset=ring", "arch=mlp", "optim=adam", "batch_size=512"],
          ["method=microbatch", "method.K=8"], ["method=microbatch", "method.K=1"],
          "the paper's K=8 and batch 512 on ganzoo's mlp nets (3 x 128), 2,000 iterations; baseline K=1", 2_000),
    Claim("stackelberg_fashion_mnist", "stackelberg",
          "Stackelberg GAN (ICLR 2019 subm.) sec. 5.2, Fig. 1 (right) / Fig. 7, Fashion-MNIST",
          "each generator automatically learns balanced number of modes without any mode being dropped",
          ["experiment=stackelberg_fashion_mnist", "metrics.num_samples=5000"],
          ["method.I=10"], ["method.I=1"],
          "1,500 of our reading's 300,000 iterations (batch 100); baseline I=1, the same nets; the offline "
          "classifier's metrics", 1_500, metric="classes_covered", also=["class_kl", "cfid"], seeds=6, max_seeds=6,
          collapse=False),
    Claim("sgan_ring", "sgan", "SGAN (CVPR 2018) abstract; supp. Fig. 1 (toy mixtures)",
          "this approach outperforms standard training in terms of better mitigating mode collapse",
          ["dataset=ring", "arch=mlp", "optim=adam"], ["method=sgan"], ["method=gan"],
          f"{SGAN_READING}; 2,000 iterations on ganzoo's mlp nets and Adam 2e-4; output G_0 against one "
          "baseline GAN", 2_000),
    Claim("sgan_ring_refresh100", "sgan",
          "SGAN (CVPR 2018) abstract: message copies kept 100 updates (method.refresh=100)",
          "this approach outperforms standard training in terms of better mitigating mode collapse",
          ["dataset=ring", "arch=mlp", "optim=adam"], ["method=sgan", "method.refresh=100"],
          ["method=gan"], f"{SGAN_READING}; as sgan_ring, with D^msg and G^msg copied from locals every 100 "
          "global updates", 2_000, baseline_from="sgan_ring"),
    Claim("sgan_ring_v1", "sgan", "SGAN (CVPR 2018) abstract: v1's reading (opponent=live) for comparison",
          "this approach outperforms standard training in terms of better mitigating mode collapse",
          ["dataset=ring", "arch=mlp", "optim=adam"], ["method=sgan", "method.opponent=live"],
          ["method=gan"], f"{SGAN_READING}; as sgan_ring, with G_0 against the live local Ds (v1)", 2_000,
          baseline_from="sgan_ring"),
    Claim("sgan_toy", "sgan", "SGAN (CVPR 2018) supp. sec. 1, Fig. 1: its own toy",
          "this approach outperforms standard training in terms of better mitigating mode collapse",
          ["experiment=sgan_toy"], ["method=sgan"], ["method=gan", "~method.N"],
          f"{SGAN_READING}; the supplement's toy (10-mode ring, 5 separate WGAN-GP pairs, 4x512 LeakyReLU nets, "
          "Adam 1e-5), 1,000 of our reading's 100,000 iterations", 1_000),
]

# Stacked Fashion-MNIST (1,000 modes; the benchmark the methods' mode-collapse claims are usually read on):
# every method against one shared plain-GAN baseline, PacGAN's net at a quarter of its widths, 1,000
# iterations at batch 64 (PacGAN trains its nets for 50 epochs of 128,000 images), 6 seeds (the fewest at
# which the two-sided Wilcoxon test can reach p < 0.05), 26,000 samples.
STACKED = ["dataset=stacked_fashion_mnist", "arch=pacgan_dcgan", "arch.g_width=16", "arch.d_width=16", "optim=adam",
           "batch_size=64", "metrics.num_samples=26000", "metrics.inception=false"]
STACKED_BUDGET = ("Stacked Fashion-MNIST, PacGAN's DCGAN at widths 16 (1/4), Adam, batch 64, 1,000 iterations, "
                  "6 seeds; baseline the plain GAN on the same nets; modes by Fashion-MNIST's classifier per channel. "
                  "PacGAN's protocol (benchmark=stacked_pacgan) trains widths 64 for 100,000 iterations with G "
                  "stepped twice, on 128,000 images pooled from train and test: this is 1% of its iterations")
STACKED_CLAIMS = [
    ("fargan", "FARGAN (CVPR 2020) abstract", "In order to alleviate the notorious mode collapse phenomenon in "
     "generative adversarial networks (GANs), we propose a novel training method", ["method=fargan"]),
    ("aw", "aw (CVPR 2021) sec. 1", "we focus on the discriminative model to rectify the issues of instability and "
     "mode collapse in training GAN", ["method=aw"]),
    ("stackelberg", "Stackelberg GAN sec. 5", "Naively increasing capacity of one-generator architecture does not "
     "alleviate mode collapse (multiple generators do)", ["method=stackelberg", "method.I=5"]),
    ("microbatch", "microbatchGAN (WACV 2020) supp. B", "using lower beta_sigm values lead the model to mode "
     "collapse (a learned diversity alpha avoids it)", ["method=microbatch", "method.K=4"]),
    ("sgan", "SGAN (CVPR 2018) abstract", "this approach outperforms standard training in terms of better "
     "mitigating mode collapse", ["method=sgan", "method.N=2"]),
]
CLAIMS += [Claim(f"{m}_stacked", m, source, quote, STACKED, arm, ["method=gan"], STACKED_BUDGET, 1_000,
                 metric="stacked_modes", also=["stacked_kl", "ccoverage"], seeds=6, max_seeds=6, collapse=False,
                 baseline_from=None if i == 0 else "fargan_stacked")
           for i, (m, source, quote, arm) in enumerate(STACKED_CLAIMS)]

# Class conditioning on Fashion-MNIST (the aw paper's Tables 4 and 6 are conditional; CIFAR does not fit a CPU
# session): a small DCGAN, equal budgets, the offline classifier's scores; 6 seeds, the fewest at which the
# two-sided Wilcoxon test can reach p < 0.05 (3 seeds cannot go below p = 0.25).
CONDITIONAL = ["dataset=fashion_mnist", "arch=dcgan", "arch.g_width=16", "arch.d_width=16", "optim=adam",
               "batch_size=64", "metrics.num_samples=5000", "metrics.inception=false"]
CONDITIONAL_BUDGET = ("Fashion-MNIST, DCGAN at widths 16 (1/4), Adam 2e-4 (0.5, 0.999), batch 64, 3,000 "
                      "iterations, 6 seeds; class batchnorm in G, projection D; the offline classifier's scores")
CLAIMS += [
    Claim("conditional_fashion_mnist", "gan",
          "Miyato and Koyama (ICLR 2018), cGANs with projection discriminator; the cGAN rows of aw's Table 4",
          "the projection discriminator (class-conditional G and D) improves on unconditional generation",
          CONDITIONAL, ["conditional=true"], [], CONDITIONAL_BUDGET + "; baseline: the same run unconditional",
          3_000, metric="cfid", also=["class_kl", "classes_covered"], own=["class_acc", "intra_cfid"], seeds=6,
          max_seeds=6, collapse=False),
    Claim("aw_conditional_fashion_mnist", "aw", "aw (CVPR 2021) sec. 4, Tables 4 and 6 (conditional GANs)",
          "The aw-method significantly improves the SN-GAN and BigGAN baselines",
          CONDITIONAL + ["conditional=true"], ["method=aw"], ["method=gan"],
          CONDITIONAL_BUDGET + "; both arms conditional, the baseline the plain GAN loss", 3_000, metric="cfid",
          also=["class_acc", "intra_cfid", "class_kl"], seeds=6, max_seeds=6, collapse=False),
]

# Augmentation with limited data (DiffAugment's and ADA's setting): 10% of Fashion-MNIST's training images
# (dataset.fraction, seeded), the conditional claims' nets and budget, scored against the test split; the
# baseline and aw, each with and without. 3 seeds, as the issue asks: the paired test cannot reach p < 0.05
# at 3 seeds, so these rows report the direction and size only.
LIMITED = CONDITIONAL + ["dataset.fraction=0.1", "metrics.reference_split=test"]
LIMITED_BUDGET = ("10% of Fashion-MNIST (6,000 images, dataset.fraction=0.1), DCGAN at widths 16 (1/4), Adam 2e-4, "
                  "batch 64, 3,000 iterations, 3 seeds; scores against the test split")
AUGMENT_CLAIMS = [
    ("diffaugment", "DiffAugment (Zhao et al., NeurIPS 2020) sec. 4", "DiffAugment ... improves the data efficiency "
     "of GANs", ["augment=diffaugment"]),
    ("ada", "ADA (Karras et al., NeurIPS 2020) sec. 4", "the adaptive discriminator augmentation ... significantly "
     "stabilizes training in limited data regimes", ["augment=ada"]),
]
for base in ("gan", "aw"):
    for i, (kind, source, quote, arm) in enumerate(AUGMENT_CLAIMS):
        first = f"{base}_{AUGMENT_CLAIMS[0][0]}_limited"
        CLAIMS.append(Claim(f"{base}_{kind}_limited", base, source, quote, LIMITED + [f"method={base}"], arm, [],
                            f"{LIMITED_BUDGET}; baseline: method={base} without augmentation", 3_000, metric="cfid",
                            also=["classes_covered", "class_kl"], seeds=3, max_seeds=3, collapse=False,
                            baseline_from=None if i == 0 else first))


def arm_dir(out: Path, claim: Claim, arm: str) -> Path:
    shared = claim.baseline_from if arm == "baseline" else claim.method_from
    return out / (shared or claim.id) / arm


STEPS: List[int] = []  # --steps N: every claim's budget replaced (a pipeline check, not a result)


def command(claim: Claim, arm: str, seeds: List[int], out: Path) -> List[str]:
    own = claim.arm if arm == "method" else claim.baseline
    steps = STEPS[0] if STEPS else claim.steps
    return ["ganzoo", "train", "-m", *claim.common, *own, *budget(steps, claim.evals if steps >= claim.evals else 1),
            "seed=" + ",".join(map(str, seeds)), f"hydra.sweep.dir={arm_dir(out, claim, arm)}",
            "hydra.sweep.subdir=seed_${seed}", "resume=auto"]


def done_seeds(folder: Path) -> Dict[int, Job]:
    """seed -> every finished job in an arm's folder."""
    found: Dict[int, Job] = {}
    if folder.is_dir():
        for job in folder.glob("seed_*"):
            j = read_job(job)
            if j.status == "done" and j.final:
                found[int(job.name.split("_", 1)[1])] = j
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


def _g(v: float) -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3g}"


def _stats(values: List[float]) -> str:
    """mean ± sample std (n - 1), and each seed's value in seed order."""
    if not values or any(math.isnan(v) for v in values):
        return "—" if not values or all(math.isnan(v) for v in values) else ", ".join(_g(v) for v in values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{_g(statistics.fmean(values))} ± {std:.2g} ({', '.join(_g(v) for v in values)})"


def pipeline_check(claim: Claim, seeds: List[int]) -> bool:
    """Fewer steps or seeds than the claim's own: the table checks the pipeline, it is no result."""
    return bool(STEPS and STEPS[0] < claim.steps) or len(seeds) < claim.seeds


def course(jobs: Dict[int, Job], metric: str, seeds: List[int]) -> Dict[int, float]:
    """step -> the metric's mean over `seeds` at every evaluation all of them reached."""
    steps: Dict[int, List[float]] = {}
    for s in seeds:
        for step, value in jobs[s].curves.get(metric, []):
            steps.setdefault(step, []).append(value)
    return {step: statistics.fmean(v) for step, v in sorted(steps.items()) if len(v) == len(seeds)}


def values(jobs: Dict[int, Job], seeds: List[int], metric: str) -> List[float]:
    return [float(jobs[s].final.get(metric, math.nan)) for s in seeds]


HEAD = ("| claim | paper | our setting | metric | method | baseline (same budget) | seeds better / worse "
        "| mean difference [95% CI] | p (Wilcoxon; sign) | verdict | command |")


def table(claims: List[Claim], seeds: List[int], out: Path) -> tuple:
    rows, records, courses = [HEAD, "|" + "---|" * 11], [], []
    for c in claims:
        mine_all, base_all = done_seeds(arm_dir(out, c, "method")), done_seeds(arm_dir(out, c, "baseline"))
        both = [s for s in seeds_of(c, seeds) if s in mine_all and s in base_all]
        check = bool(both) and pipeline_check(c, both)
        cmd = " ".join(command(c, "method", seeds_of(c, seeds), out)[:-3])  # without reproduce's own folders
        collapsed = None
        if c.collapse and both:
            collapsed = (values(mine_all, both, "modes_covered"), values(base_all, both, "modes_covered"), 1)
        for metric in [c.metric, *c.also]:
            mine, base = values(mine_all, both, metric), values(base_all, both, metric)
            first = metric == c.metric
            if both and not any(math.isnan(v) for v in mine + base):
                cmp = compare(mine, base, higher_is_better(metric), collapsed)
                word = PIPELINE if check else cmp.verdict
                diff = f"{_g(cmp.mean_diff)} [{_g(cmp.ci[0])}, {_g(cmp.ci[1])}]"
                p = f"{cmp.p:.2g}; {cmp.p_sign:.2g}"
                counts = f"{cmp.better} / {cmp.worse} of {cmp.n}"
            else:
                cmp, word, diff, p, counts = None, PIPELINE if check and both else "not run", "—", "—", f"0 / 0 of {len(both)}"
            setting = (f"**{PIPELINE}** ({STEPS[0] if STEPS else c.steps} steps, {len(both)} seeds); " if check
                       else "") + c.budget
            rows.append("| " + " | ".join([
                f"**{c.id}**: \"{c.quote}\"" if first else "", c.source if first else "", setting if first else "",
                metric, _stats(mine), _stats(base), counts, diff, p,
                word if first or word == PIPELINE else f"({word})", f"`{cmd}`" if first else ""]) + " |")
            records.append({"claim": c.id, "metric": metric, "seeds": both, "method": mine, "baseline": base,
                            "better": cmp.better if cmp else 0, "worse": cmp.worse if cmp else 0,
                            "mean_diff": cmp.mean_diff if cmp else None, "ci": list(cmp.ci) if cmp else None,
                            "p": cmp.p if cmp else None, "p_sign": cmp.p_sign if cmp else None,
                            "verdict": word, "pipeline_check": check})
        for metric in c.own:
            mine = values(mine_all, both, metric)
            rows.append("| " + " | ".join(["", "", "", metric, _stats(mine), "—", "", "", "", "(method only)", ""]) + " |")
            records.append({"claim": c.id, "metric": metric, "seeds": both, "method": mine, "verdict": "method only"})
        if c.evals > 1 and both:
            for metric in [c.metric, *c.also]:
                m, b = course(mine_all, metric, both), course(base_all, metric, both)
                steps = [s for s in m if s in b]
                if len(steps) > 1:
                    courses.append(f"- **{c.id}**, {metric} (mean over {len(both)} seeds, method / baseline): " +
                                   ", ".join(f"step {s}: {_g(m[s])} / {_g(b[s])}" for s in steps))
    rule = (f"Verdicts (ganzoo/stats.py): *both arms failed* when the claim counts modes and both arms' median "
            f"modes covered is <= 1; otherwise *reproduced* when the method is better on the mean and the "
            f"two-sided Wilcoxon signed-rank test over the paired seeds gives p < {ALPHA}, *not reproduced* when "
            f"the baseline is better with p < {ALPHA}, *inconclusive* when p >= {ALPHA}. The first metric decides; "
            f"the others' verdicts are in brackets. Cells: mean ± sample std (each seed's value, in seed order); "
            f"the mean difference is the method's minus the baseline's in the metric's better direction "
            f"(> 0: the method did better), with a bootstrap 95% interval over the seeds.")
    md = rule + "\n\n" + "\n".join(rows)
    if courses:
        md += "\n\nThe metric's course over the run:\n\n" + "\n".join(courses)
    return md, records


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="", help="comma-separated claim ids or method names")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--jobs", type=int, default=2,
                    help="training processes at once, each one torch thread; an arm's seeds are split across them")
    ap.add_argument("--out", type=Path, default=Path("reproduce"))
    ap.add_argument("--steps", type=int, help="replace every budget with this many steps (a pipeline check)")
    ap.add_argument("--list", action="store_true", help="print the claims and commands, run nothing")
    ap.add_argument("--table", action="store_true",
                    help="print the table from the runs already in --out, run nothing (claims without runs: 'not run')")
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
        if args.steps < 1:
            print("reproduce: --steps must be >= 1", file=sys.stderr)
            return 2
        STEPS[:] = [args.steps]
    if args.list:
        for c in claims:
            for arm in ("method", "baseline"):
                print(" ".join(command(c, arm, seeds_of(c, seeds), args.out)))
        return 0
    ids = {c.id for c in claims}  # a shared arm runs once, under the claim that owns it
    arms = [(c, a) for c in claims for a in ("method", "baseline")
            if (c.method_from if a == "method" else c.baseline_from) not in ids]
    tasks = [] if args.table else [p for c, a in arms for p in parts(c, a, seeds, args.out, args.jobs)]
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda t: run_part(t[0], t[1], t[2], t[3], args.out), tasks))
    failed = {(t[0].id, t[1]) for t, error in zip(tasks, results) if error}
    errors = [e for e in results if e]
    for claim, arm in arms:  # after the threads: matplotlib's pyplot is not thread-safe
        if (claim.id, arm) not in failed and not args.table:
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
