"""`ganzoo report <dir>`: one table and plots for a sweep (or any folder of runs).

Each job folder (one with .hydra/ or status.json) gives its overrides, its status, and its
metrics.jsonl. The keys whose values differ between jobs are the table's columns; jobs that
differ only in `seed` are one row, reported as mean +- std over the seeds that finished.
Failed and unfinished jobs are listed and marked, never fatal. Writes report.md, report.csv and
plots (metric vs knob for one swept key, a heatmap for two, learning curves per job) into the
folder, each file atomically.
"""
from __future__ import annotations

import csv
import io
import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from .rundir import atomic_write
from .errors import ConfigError
from .metrics.registry import higher_is_better

PREFERRED = ("fid", "cfid", "classes_covered", "class_kl", "is_mean", "modes_covered", "high_quality",
             "reverse_kl", "mmd")


@dataclass
class Job:
    path: Path
    overrides: Dict[str, str]
    status: str
    final: Dict[str, float] = field(default_factory=dict)
    best: Dict[str, float] = field(default_factory=dict)
    curves: Dict[str, List[tuple]] = field(default_factory=dict)
    step: Optional[int] = None
    paper: Dict[str, float] = field(default_factory=dict)  # what its experiment config says the paper reports
    source: str = ""
    error: str = ""  # status.json's one line for a failed or diverged job


def _scalars(record: dict) -> Dict[str, float]:
    return {k: float(v) for k, v in record.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ("step", "time")
            and math.isfinite(float(v))}


def _text(file: Path) -> Optional[str]:
    """A job file's text; bytes that are not UTF-8 become U+FFFD (damage costs that value, not the report)."""
    try:
        return file.read_bytes().decode("utf-8", errors="replace")
    except OSError:
        return None


def read_job(path: Path) -> Job:
    """What a job folder holds. A damaged file (unparsable, the wrong shape, a YAML tag that would build a
    Python object, bytes that are not UTF-8) makes the job "unreadable" with the reason, never an error:
    the rest of the report is still written."""
    import yaml
    overrides: Dict[str, str] = {}
    problems: List[str] = []
    text = _text(path / ".hydra" / "overrides.yaml") if (path / ".hydra" / "overrides.yaml").is_file() else None
    if text is not None:
        try:
            items = yaml.safe_load(text) or []  # safe_load: a !!python tag is refused, never built
            if not isinstance(items, list):
                raise ValueError("not a list of key=value")
            for item in items:
                key, _, value = str(item).partition("=")
                overrides[key.lstrip("+~")] = value
        except (yaml.YAMLError, ValueError) as exc:
            problems.append(f".hydra/overrides.yaml: {str(exc).splitlines()[0]}")
    status, error = "unknown", ""
    step = None
    text = _text(path / "status.json") if (path / "status.json").is_file() else None
    if text is not None:
        try:
            record = json.loads(text)
            if not isinstance(record, dict):
                raise ValueError(f"a JSON {type(record).__name__}, not a record")
            status, step = str(record.get("status", "unknown")), record.get("step")
            if step is not None and (isinstance(step, bool) or not isinstance(step, int)):
                raise ValueError(f"step {step!r} is not a whole number")
            error = str(record.get("error") or "")
        except ValueError as exc:  # JSONDecodeError is a ValueError
            problems.append(f"status.json: {exc}")
            status, step = "unreadable", None
    if problems:
        status, error = "unreadable", "; ".join(problems)
    job = Job(path, overrides, status, step=step, error=error)
    composed = path / ".hydra" / "config.yaml"
    text = _text(composed) if composed.is_file() else None
    if text is not None:
        try:
            paper = (yaml.safe_load(text) or {}).get("paper") or {}
            job.paper = {k: float(v) for k, v in (paper.get("reports") or {}).items()}
            job.source = str(paper.get("source") or "")
        except (yaml.YAMLError, AttributeError, TypeError, ValueError):
            pass  # a config we cannot read costs its paper column, not the report
    records = []
    text = _text(path / "metrics.jsonl") if (path / "metrics.jsonl").is_file() else None
    if text is not None:
        for line in text.splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # a line cut by a kill
                continue
            step = record.get("step", 0) if isinstance(record, dict) else None
            # damage can leave valid JSON that is no record, or a record whose step is no number
            if isinstance(step, (int, float)) and not isinstance(step, bool) and math.isfinite(step):
                records.append(record)
    training = [r for r in records if r.get("source") != "eval"]
    for r in training:
        for k, v in _scalars(r).items():
            job.curves.setdefault(k, []).append((int(r.get("step", 0)), v))
    if training and status == "done":
        job.final = _scalars(training[-1])
    for k, points in job.curves.items():
        values = [v for _, v in points]
        job.best[k] = max(values) if higher_is_better(k) else min(values)
    return job


def find_jobs(root: Path) -> List[Job]:
    dirs = sorted({p.parent.parent for p in root.rglob(".hydra/overrides.yaml")}
                  | {p.parent for p in root.rglob("status.json")}, key=lambda p: str(p))
    return [read_job(d) for d in dirs]


def swept_keys(jobs: List[Job]) -> List[str]:
    keys = sorted({k for j in jobs for k in j.overrides})
    return [k for k in keys if len({j.overrides.get(k) for j in jobs}) > 1]


def _number(value: Optional[str]):
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


@dataclass
class Row:
    keys: Dict[str, str]
    jobs: List[Job]

    def values(self, metric: str, which: str = "final") -> List[float]:
        return [getattr(j, which)[metric] for j in self.jobs if metric in getattr(j, which)]


def group(jobs: List[Job], knobs: List[str]) -> List[Row]:
    rows: Dict[tuple, Row] = {}
    for j in jobs:
        key = tuple(j.overrides.get(k, "") for k in knobs)
        rows.setdefault(key, Row(dict(zip(knobs, key)), [])).jobs.append(j)
    return sorted(rows.values(), key=lambda r: tuple(_sort(v) for v in r.keys.values()))


def metric_names(jobs: List[Job]) -> List[str]:
    names = sorted({k for j in jobs for k in j.final} | {k for j in jobs for k in j.best})
    first = [m for m in PREFERRED if m in names]
    return first + [m for m in names if m not in first]


def _row(cells: List[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _head(header: List[str]) -> List[str]:
    return [_row(header), "|" + "---|" * len(header)]


def _cell(values: List[float], seeded: bool) -> str:
    if not values:
        return "—"
    mean = statistics.fmean(values)
    if seeded and len(values) > 1:  # the sample std (n - 1), and n: 6 and 8 are 7 ± 1.4 (n=2)
        return f"{mean:.4g} ± {statistics.stdev(values):.2g} (n={len(values)})"
    return f"{mean:.4g}"


def write_report(root: Path, out: Optional[Path] = None) -> Dict[str, Path]:
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ConfigError(f"{root}: no such folder; pass a sweep folder (outputs/multirun/<date>) or a folder of runs")
    jobs = find_jobs(root)
    if not jobs:
        raise ConfigError(f"{root}: no runs found (no job folder with .hydra/overrides.yaml or status.json)")
    out = Path(out or root)
    swept = swept_keys(jobs)
    seeded = "seed" in swept
    knobs = [k for k in swept if k != "seed"]
    rows = group(jobs, knobs)
    metrics = metric_names(jobs)
    written = {"md": out / "report.md", "csv": out / "report.csv"}

    lines = [f"# Report: {root}", "",
             f"{len(jobs)} jobs; swept: {', '.join(swept) or 'nothing'}; "
             + ("mean ± std over seeds (finished jobs only)." if seeded else "one job per row."), ""]
    header = [*knobs, "jobs", *metrics]
    lines += ["## Final metrics", "", *_head(header)]
    for r in rows:
        done = sum(j.status == "done" for j in r.jobs)
        diverged = sum(j.status == "diverged" for j in r.jobs)
        note = f"{done}/{len(r.jobs)}" + ("" if done == len(r.jobs) else " ⚠") + \
            (f" {diverged} diverged" if diverged else "")
        lines.append(_row([*r.keys.values(), note, *(_cell(r.values(m), seeded) for m in metrics)]))
    lines += ["", "## Best over evaluations", "", *_head(header)]
    for r in rows:
        lines.append(_row([*r.keys.values(), str(len(r.jobs)), *(_cell(r.values(m, "best"), seeded) for m in metrics)]))
    lines += _against_paper(rows, knobs, seeded)
    unfinished = [j for j in jobs if j.status != "done"]
    if unfinished:
        lines += ["", "## Not finished", ""]
        for j in unfinished:
            extra = f": {j.error}" if j.error else ""
            extra += " (see error.txt)" if (j.path / "error.txt").is_file() else ""
            lines.append(f"- `{j.path.relative_to(root)}`: **{j.status}**, step {j.step}{extra}")

    plots = _plots(out, jobs, rows, knobs, metrics, seeded)
    no_curves = "no_curves" in plots
    plots = {k: v for k, v in plots.items() if v is not None}
    written.update(plots)
    if plots or no_curves:
        lines += ["", "## Plots", ""] + [f"![{name}]({p.name})" for name, p in plots.items()]
    if no_curves:
        lines += ["", "No learning curves: every job was evaluated once (at its end); set eval_every to draw them."]
    atomic_write(written["md"], lambda fh: fh.write(("\n".join(lines) + "\n").encode()))

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["job", *swept, "status", "step", *(f"final/{m}" for m in metrics), *(f"best/{m}" for m in metrics)])
    for j in jobs:
        w.writerow([str(j.path.relative_to(root)), *(j.overrides.get(k, "") for k in swept), j.status, j.step,
                    *(j.final.get(m, "") for m in metrics), *(j.best.get(m, "") for m in metrics)])
    atomic_write(written["csv"], lambda fh: fh.write(buf.getvalue().encode()))
    return written


def _against_paper(rows: List[Row], knobs: List[str], seeded: bool) -> List[str]:
    """Rows from experiment configs that carry the paper's numbers, set beside ours."""
    cited = [r for r in rows if r.jobs[0].paper]
    if not cited:
        return []
    lines = ["", "## Against the paper", "", *_head([*knobs, "metric", "paper", "final", "best", "source"])]
    for r in cited:
        for metric, value in r.jobs[0].paper.items():
            lines.append(_row([*r.keys.values(), metric, f"{value:g}", _cell(r.values(metric), seeded),
                               _cell(r.values(metric, "best"), seeded), r.jobs[0].source]))
    return lines


def _save(fig, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    import matplotlib.pyplot as plt
    plt.close(fig)
    atomic_write(path, lambda fh: fh.write(buf.getvalue()))
    return path


def _plots(out: Path, jobs: List[Job], rows: List[Row], knobs: List[str], metrics: List[str],
           seeded: bool) -> Dict[str, Path]:
    import matplotlib
    matplotlib.use("Agg")  # as ganzoo.plots does; not imported here, it imports torch
    import matplotlib.pyplot as plt
    import numpy as np

    written: Dict[str, Path] = {}
    top = [m for m in metrics if "/" not in m]  # players scored on their own stay in the tables
    shown = [m for m in top if any(r.values(m) for r in rows)][:6]
    if len(knobs) == 1 and shown:
        fig, axes = plt.subplots(1, len(shown), figsize=(4 * len(shown), 3.2), squeeze=False)
        xs = [r.keys[knobs[0]] for r in rows]
        numeric = all(isinstance(_number(x), float) for x in xs)
        pos = [_number(x) for x in xs] if numeric else list(range(len(xs)))
        for ax, m in zip(axes[0], shown):
            means = [statistics.fmean(r.values(m)) if r.values(m) else np.nan for r in rows]
            stds = [statistics.stdev(r.values(m)) if len(r.values(m)) > 1 else 0.0 for r in rows]
            # a categorical knob (methods, losses) has no order between its values: points, no line
            ax.errorbar(pos, means, yerr=stds if seeded else None, marker="o", capsize=3,
                        ls="-" if numeric else "none")
            if not numeric:
                ax.set_xticks(pos, xs, rotation=30, fontsize=7)
            ax.set_xlabel(knobs[0])
            ax.set_title(m, fontsize=9)
        fig.tight_layout()
        written["metric_vs_" + knobs[0]] = _save(fig, out / f"report_{_safe(knobs[0])}.png")
    if len(knobs) == 2 and shown:
        a, b = knobs
        xa = sorted({r.keys[a] for r in rows}, key=_sort)
        xb = sorted({r.keys[b] for r in rows}, key=_sort)
        fig, axes = plt.subplots(1, len(shown), figsize=(4 * len(shown), 3.6), squeeze=False)
        for ax, m in zip(axes[0], shown):
            grid = np.full((len(xa), len(xb)), np.nan)
            for r in rows:
                if r.values(m):
                    grid[xa.index(r.keys[a]), xb.index(r.keys[b])] = statistics.fmean(r.values(m))
            im = ax.imshow(grid, cmap="viridis" if higher_is_better(m) else "viridis_r", aspect="auto")
            for i in range(len(xa)):
                for k in range(len(xb)):
                    if np.isfinite(grid[i, k]):
                        ax.text(k, i, f"{grid[i, k]:.3g}", ha="center", va="center", fontsize=7, color="w")
            ax.set_xticks(range(len(xb)), xb, fontsize=7)
            ax.set_yticks(range(len(xa)), xa, fontsize=7)
            ax.set_xlabel(b)
            ax.set_ylabel(a)
            ax.set_title(m, fontsize=9)
            fig.colorbar(im, ax=ax, fraction=0.046)
        fig.tight_layout()
        written[f"heatmap_{a}_x_{b}"] = _save(fig, out / f"report_{_safe(a)}_x_{_safe(b)}.png")
    curves = [m for m in top if any(len(j.curves.get(m, [])) > 1 for j in jobs)][:6]
    if not curves:
        written["no_curves"] = None  # write_report says why in the markdown
    if curves:
        fig, axes = plt.subplots(1, len(curves), figsize=(4 * len(curves), 3.2), squeeze=False)
        for ax, m in zip(axes[0], curves):
            for j in jobs:
                if j.curves.get(m):
                    steps, values = zip(*j.curves[m])
                    label = ",".join(f"{k}={v}" for k, v in j.overrides.items() if k in knobs + ["seed"]) or j.path.name
                    ax.plot(steps, values, marker=".", lw=1, label=label, ls="-" if j.status == "done" else ":")
            ax.set_xlabel("step")
            ax.set_title(m, fontsize=9)
        if len(jobs) <= 12:  # beyond that a legend hides the curves
            axes[0][0].legend(fontsize=6)
        fig.tight_layout()
        written["learning_curves"] = _save(fig, out / "report_curves.png")
    return written


def _sort(v: str):
    n = _number(v)
    return (0, n, "") if isinstance(n, float) else (1, 0.0, str(v))


def _safe(key: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in key)


def report_command(args: List[str]) -> None:
    if len(args) != 1 or args[0].startswith("-"):
        raise ConfigError("usage: ganzoo report <sweep folder or folder of runs>")
    try:
        written = write_report(Path(args[0]))
    except OSError as exc:  # a read-only or full file system: one line, and no half-written report
        from .errors import GanzooError, os_error_message
        raise GanzooError(os_error_message(exc, "cannot write the report:")) from None
    print(Path(written["md"]).read_text().split("\n## Best")[0].rstrip())
    print("\nwrote " + ", ".join(str(p) for p in written.values()))
