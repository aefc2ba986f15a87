"""Mean and spread over seeds of the final metrics of a sweep's jobs, as a markdown table.

Reads every job folder under the given sweep folders (its .hydra/overrides.yaml and the last
training record of metrics.jsonl), groups jobs by their overrides without `seed`, and prints
one row per group: mean +- sample std of each metric, and the per-seed values.

Usage: python scripts/summarize.py outputs/multirun/<sweep> [...] [--metrics modes_covered high_quality reverse_kl]
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import yaml


def jobs(sweep: Path):
    for job in sorted(sweep.iterdir(), key=lambda p: p.name):
        overrides = job / ".hydra" / "overrides.yaml"
        metrics = job / "metrics.jsonl"
        if not overrides.is_file():
            continue
        keys = dict(o.split("=", 1) for o in yaml.safe_load(overrides.read_text()))
        records = [json.loads(line) for line in metrics.read_text().splitlines()] if metrics.is_file() else []
        final = next((r for r in reversed(records) if r.get("source") != "eval"), None)
        yield keys, final


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sweeps", nargs="+", type=Path)
    ap.add_argument("--metrics", nargs="+", default=["modes_covered", "high_quality", "reverse_kl"])
    ap.add_argument("--by", nargs="+", default=None, help="keys to group by (default: every swept key but seed)")
    args = ap.parse_args(argv)
    groups: dict = {}
    for sweep in args.sweeps:
        for keys, final in jobs(sweep):
            by = args.by or [k for k in keys if k != "seed"]
            name = ", ".join(f"{k}={keys.get(k, '-')}" for k in by)
            groups.setdefault(name, []).append((keys.get("seed", "?"), final))
    print("| job | seeds | " + " | ".join(args.metrics) + " |")
    print("|---|---|" + "---|" * len(args.metrics))
    for name, runs in groups.items():
        cells = []
        for m in args.metrics:
            values = [r[m] for _, r in runs if r is not None and isinstance(r.get(m), (int, float))]
            if not values:
                cells.append("—")
                continue
            mean = statistics.fmean(values)
            std = statistics.stdev(values) if len(values) > 1 else 0.0  # the sample std
            each = ", ".join(f"{v:.3g}" for v in values)
            cells.append(f"{mean:.3g} ± {std:.2g} ({each})")
        missing = sum(r is None for _, r in runs)
        seeds = f"{len(runs) - missing}" + (f" (+{missing} unfinished)" if missing else "")
        print(f"| {name} | {seeds} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
