"""Run the default job (`ganzoo train`, no arguments but the seed) over seeds x torch threads, and the
baseline (`ganzoo train method=gan`) on a few seeds: does the default learn the ring robustly, in under a
minute, where the baseline drops modes?

    python scripts/default_job.py                              # seeds 0-9 at 1 and 2 threads, then the baseline
    python scripts/default_job.py --seeds 0,1 --threads 2 --baseline-seeds 0
    python scripts/default_job.py --jobs 2                     # two runs at a time: quicker, wall times worse

Each run is the whole command (start-up, training, evaluations, pictures), timed from outside, with
OMP_NUM_THREADS / MKL_NUM_THREADS set to the thread count (torch's thread count follows them). Runs go
to --out (default outputs/default_job/<time>/), one folder per run. The verdict: every run of the default
covers at least --min-modes modes with more than --min-hq of its samples high quality, in under --max-wall
seconds; the baseline check: method=gan covers fewer modes than the default on most of its seeds.
docs/DEFAULT_JOB.md has a full run's table.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def ints(text: str) -> list[int]:
    """'0-9' or '0,1,2' (or a mix: '0-3,7')."""
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi) + 1) if hi else [int(lo)])
    return out


def run(out: Path, name: str, seed: int, threads: int, overrides: list[str]) -> dict:
    folder = out / name
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    cmd = ["ganzoo", "train", *overrides, f"seed={seed}", f"hydra.run.dir={folder}"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    (out / f"{name}.log").write_text(proc.stdout + proc.stderr)
    row = {"run": name, "seed": seed, "threads": threads, "wall": wall, "rc": proc.returncode,
           "command": " ".join(cmd[:2] + overrides + [f"seed={seed}"]), "folder": str(folder)}
    try:
        metrics = json.loads((folder / "status.json").read_text())["metrics"]
        row.update(modes=metrics["modes_covered"], hq=metrics["high_quality"])
    except (OSError, KeyError, ValueError, TypeError):
        row.update(modes=None, hq=None)
    return row


def table(rows: list[dict]) -> str:
    lines = ["| seed | threads | modes | high_quality | wall s |", "|---:|---:|---:|---:|---:|"]
    for r in rows:
        modes = "failed (rc %d)" % r["rc"] if r["modes"] is None else r["modes"]
        hq = "" if r["hq"] is None else f"{r['hq']:.3f}"
        lines.append(f"| {r['seed']} | {r['threads']} | {modes} | {hq} | {r['wall']:.1f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=ints, default=ints("0-9"), help="e.g. 0-9 or 0,1,2 (default 0-9)")
    ap.add_argument("--threads", type=ints, default=[1, 2], help="torch thread counts, e.g. 1,2 (default)")
    ap.add_argument("--jobs", type=int, default=1, help="runs at a time (default 1: honest wall times)")
    ap.add_argument("--baseline-seeds", type=ints, default=ints("0-4"),
                    help="seeds of `ganzoo train method=gan`, at the first thread count (default 0-4)")
    ap.add_argument("--baseline", default="method=gan", help="the baseline's overrides (default method=gan)")
    ap.add_argument("--min-modes", type=int, default=6)
    ap.add_argument("--min-hq", type=float, default=0.5)
    ap.add_argument("--max-wall", type=float, default=60.0)
    ap.add_argument("--out", type=Path, default=None, help="default outputs/default_job/<time>")
    ap.add_argument("overrides", nargs="*", help="overrides for both arms (none: the default job as it is)")
    args = ap.parse_args(argv)
    out = args.out or Path("outputs/default_job") / time.strftime("%Y-%m-%d_%H-%M-%S")
    out.mkdir(parents=True, exist_ok=True)

    jobs = [("default", f"s{s}_t{t}", s, t, list(args.overrides)) for s in args.seeds for t in args.threads]
    jobs += [("baseline", f"baseline_s{s}_t{args.threads[0]}", s, args.threads[0],
              args.baseline.split() + list(args.overrides)) for s in args.baseline_seeds]
    print(f"{len(jobs)} runs, {args.jobs} at a time, into {out}", flush=True)

    def one(job):
        arm, name, seed, threads, overrides = job
        row = {"arm": arm, **run(out, name, seed, threads, overrides)}
        print(f"  {arm:8} seed={seed} threads={threads}  modes={row['modes']}  high_quality={row['hq']}  "
              f"{row['wall']:.1f} s", flush=True)
        return row

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        rows = list(pool.map(one, jobs))
    (out / "results.json").write_text(json.dumps(rows, indent=1))
    default = [r for r in rows if r["arm"] == "default"]
    baseline = [r for r in rows if r["arm"] == "baseline"]

    print(f"\nThe default job (`ganzoo train {' '.join(args.overrides)}`), {len(default)} runs:\n")
    print(table(default))
    walls = [r["wall"] for r in default]
    good = [r for r in default if r["modes"] is not None and r["modes"] >= args.min_modes
            and r["hq"] > args.min_hq and r["wall"] < args.max_wall]
    learnt = [r for r in default if r["modes"] is not None and r["modes"] >= args.min_modes and r["hq"] > args.min_hq]
    print(f"\nwall time: median {statistics.median(walls):.1f} s, max {max(walls):.1f} s")
    verdict = "PASS" if len(good) == len(default) else "FAIL"
    print(f"verdict: {verdict}: {len(learnt)} of {len(default)} runs learn the ring (>= {args.min_modes} modes, "
          f"high_quality > {args.min_hq}); {sum(w < args.max_wall for w in walls)} of {len(default)} "
          f"finish in under {args.max_wall:.0f} s")

    ok = verdict == "PASS"
    if baseline:
        by_seed = {(r["seed"], r["threads"]): r for r in default}
        print(f"\nThe baseline (`ganzoo train {args.baseline}`) against the default, same seed and threads:\n")
        print("| seed | threads | baseline modes | baseline high_quality | default modes | wall s |")
        print("|---:|---:|---:|---:|---:|---:|")
        fewer = 0
        for r in baseline:
            d = by_seed.get((r["seed"], r["threads"]))
            dm = None if d is None else d["modes"]
            hq = "" if r["hq"] is None else f"{r['hq']:.3f}"
            print(f"| {r['seed']} | {r['threads']} | {r['modes']} | {hq} | {dm if dm is not None else '-'} | "
                  f"{r['wall']:.1f} |")
            fewer += r["modes"] is not None and dm is not None and r["modes"] < dm
        modes = [r["modes"] for r in baseline if r["modes"] is not None]
        mean = f"{statistics.mean(modes):.1f}" if modes else "-"
        collapses = fewer > len(baseline) / 2
        print(f"\nbaseline check: {'PASS' if collapses else 'FAIL'}: the baseline covers fewer modes than the "
              f"default in {fewer} of {len(baseline)} seeds (baseline mean {mean} modes)")
        ok = ok and collapses
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
