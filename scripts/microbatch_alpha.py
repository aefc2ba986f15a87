"""microbatchGAN's alpha test (supplement sec. B, Fig. 8), run for each reading of its objective.

    python scripts/microbatch_alpha.py                       # 2 readings x beta0 {-4, -1.8, 0} x 5 seeds
    python scripts/microbatch_alpha.py --steps 200 --seeds 1 # a pipeline check

Fig. 8 says: a low beta0 collapses "since only low alpha values are used throughout the whole training";
beta0 = 0 raises alpha steeply and gives "varied, but not realistic" samples; -2 <= beta0 <= -1.8 gives a
mild rise and diverse, realistic samples. Every run is experiment=microbatch_toy (K=8, sigmoid alpha) with
the reading and beta0 swept, into <out>/<reading>/beta<b>/seed_<s> (resumable as reproduce.py's arms).

Per reading and beta0 it prints alpha's course (mean over seeds), how far alpha strayed from the course a
data-blind Adam would give it (beta0 + lr * t: a gradient of one sign moves beta by ~lr a step, whatever
the data), the seeds' spread of the final alpha, each D_k's own-vs-other accuracy (0.5: chance), and the
final modes covered, high-quality share and MMD. An alpha whose course follows the data-blind one in
every seed does not depend on the data.
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
from pathlib import Path
from typing import Dict, List, Optional

from ganzoo.report import read_job

READINGS = ("additive", "mix")
BETA0 = (-4.0, -1.8, 0.0)
LR = 2e-4  # experiment=microbatch_toy's G learning rate, which trains beta


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def folder(out: Path, reading: str, beta0: float) -> Path:
    return out / reading / f"beta{beta0:g}"


def command(out: Path, reading: str, beta0: float, seeds: List[int], steps: int) -> List[str]:
    return ["ganzoo", "train", "-m", "experiment=microbatch_toy", f"method.reading={reading}",
            f"method.alpha_init={sigmoid(beta0):.17g}", f"steps={steps}", f"ckpt_every={steps}",
            f"eval_every={max(steps // 4, 1)}", f"log_every={max(steps // 50, 1)}", "sample_every=0", "device=cpu",
            "seed=" + ",".join(map(str, seeds)), f"hydra.sweep.dir={folder(out, reading, beta0)}",
            "hydra.sweep.subdir=seed_${seed}", "resume=auto"]


def finished(path: Path) -> bool:
    return read_job(path).status == "done"


def run(out: Path, reading: str, beta0: float, seeds: List[int], steps: int) -> Optional[str]:
    base = folder(out, reading, beta0)
    todo = [s for s in seeds if not finished(base / f"seed_{s}")]
    if not todo:
        return None
    base.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with open(base.with_suffix(".log"), "a") as fh:
        proc = subprocess.run(command(out, reading, beta0, todo, steps), stdout=fh, stderr=subprocess.STDOUT, env=env)
    return None if proc.returncode == 0 else f"{reading}/beta{beta0:g}: ganzoo train exited {proc.returncode}"


def scalars(run_dir: Path, tag: str) -> Dict[int, float]:
    """step -> a training scalar from the run's TensorBoard events."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    if tag not in acc.Tags().get("scalars", []):
        return {}
    return {e.step: e.value for e in acc.Scalars(tag)}


def _m(values: List[float]) -> str:
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return "—"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.3g} ± {sd:.2g}"


def summary(out: Path, seeds: List[int], steps: int) -> str:
    rows = ["| reading | beta0 | seeds | alpha at 25 / 50 / 75 / 100% of the steps | data-blind alpha at the end "
            "| largest gap to the data-blind course | own-vs-other accuracy (end) | modes_covered | high_quality "
            "| mmd |", "|" + "---|" * 10]
    for reading in READINGS:
        for beta0 in BETA0:
            runs = [folder(out, reading, beta0) / f"seed_{s}" for s in seeds]
            runs = [r for r in runs if finished(r)]
            if not runs:
                rows.append(f"| {reading} | {beta0:g} | 0 | not run | | | | | | |")
                continue
            alphas = [scalars(r, "microbatch/alpha") for r in runs]
            marks = [max(1, round(steps * q)) for q in (0.25, 0.5, 0.75, 1.0)]
            at = []
            for mark in marks:
                at.append(_m([a[min(a, key=lambda s: abs(s - mark))] for a in alphas if a]))
            gaps = [max(abs(v - sigmoid(beta0 + LR * s)) for s, v in a.items()) for a in alphas if a]
            acc = [scalars(r, "microbatch/own_vs_other_acc") for r in runs]
            acc_end = [a[max(a)] for a in acc if a]
            final = [read_job(r).final for r in runs]
            rows.append(f"| {reading} | {beta0:g} | {len(runs)} | {' / '.join(at)} | {sigmoid(beta0 + LR * steps):.3g} "
                        f"| {_m(gaps)} | {_m(acc_end)} | "
                        + " | ".join(_m([f.get(k, math.nan) for f in final]) for k in ("modes_covered", "high_quality", "mmd"))
                        + " |")
    return "\n".join(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--jobs", type=int, default=2, help="training processes at once, each one torch thread")
    ap.add_argument("--out", type=Path, default=Path("reproduce/microbatch_alpha"))
    args = ap.parse_args(argv)
    if args.seeds < 1 or args.steps < 4 or args.jobs < 1:
        print("microbatch_alpha: --seeds and --jobs must be >= 1, --steps >= 4", file=sys.stderr)
        return 2
    seeds = list(range(args.seeds))
    tasks = [(r, b, seeds[i::args.jobs]) for r in READINGS for b in BETA0 for i in range(args.jobs)
             if seeds[i::args.jobs]]
    with ThreadPoolExecutor(args.jobs) as pool:
        errors = [e for e in pool.map(lambda t: run(args.out, t[0], t[1], t[2], args.steps), tasks) if e]
    md = summary(args.out, seeds, args.steps)
    (args.out / "alpha.md").write_text(md + "\n")
    (args.out / "alpha.json").write_text(json.dumps({"steps": args.steps, "seeds": seeds}))
    print(md)
    for e in errors:
        print(f"microbatch_alpha: {e}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
