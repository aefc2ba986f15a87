"""`ganzoo report` on a real sweep: table shape and values against the jobs' own metrics files."""
import csv
import errno
import json
import os
import sys
import statistics

import pytest

from conftest import ganzoo_here, run_ganzoo

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("report")]  # one worker: one shared sweep

TINY = ["steps=20", "batch_size=32", "eval_every=10", "sample_every=null", "ckpt_every=0", "log_every=10",
        "metrics.num_samples=200", "device=cpu"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """loss x n_dis x seed = 8 jobs, with job seed=1, loss=hinge, n_dis=2 crashing at run time."""
    import ganzoo.train
    from ganzoo import cli
    from ganzoo.apps import train as train_app

    root = tmp_path_factory.mktemp("sweep")
    real_train = ganzoo.train.train

    def train_or_crash(cfg, run_dir):
        if cfg.seed == 1 and cfg.loss.name == "hinge" and cfg.n_dis == 2:
            raise RuntimeError("simulated crash")
        return real_train(cfg, run_dir)

    mp = pytest.MonkeyPatch()
    mp.setattr(ganzoo.train, "train", train_or_crash)
    mp.chdir(root)
    # what `ganzoo train -m ...` does, in this process so that the patch holds: check, then the Hydra app
    flags, overrides = cli.check_command("train", ["-m", "loss=ns,hinge", "n_dis=1,2", "seed=0,1", *TINY,
                                                   "hydra.sweep.dir=sw"])
    mp.setattr(sys, "argv", ["ganzoo-train", *flags, *overrides])
    with pytest.raises(SystemExit) as exit_info:
        train_app.main()
    assert exit_info.value.code == 1  # the summary's exit: one job failed
    mp.undo()
    return root / "sw"


def final_record(job):
    records = [json.loads(line) for line in (job / "metrics.jsonl").read_text().splitlines()]
    return records[-1]


def test_report_table_matches_the_jobs_metrics(sweep, tmp_path):
    proc = run_ganzoo("report", sweep, cwd=tmp_path)
    assert "swept: loss, n_dis, seed" in proc.stdout
    md = (sweep / "report.md").read_text()
    table = [line for line in md.split("## Best")[0].splitlines() if line.startswith("| ")]
    header = [c.strip() for c in table[0].strip("|").split("|")]
    assert header[:3] == ["loss", "n_dis", "jobs"] and "modes_covered" in header
    rows = {(r[0], r[1]): r for r in ([c.strip() for c in line.strip("|").split("|")] for line in table[1:])}
    assert set(rows) == {("ns", "1"), ("ns", "2"), ("hinge", "1"), ("hinge", "2")}  # 4 rows of 2 seeds
    col = header.index("high_quality")
    for (loss, n_dis), row in rows.items():
        jobs = [j for j in sweep.iterdir() if j.is_dir() and f"loss={loss}" in j.name and f"n_dis={n_dis}" in j.name]
        assert len(jobs) == 2
        finished = [j for j in jobs if json.loads((j / "status.json").read_text())["status"] == "done"]
        values = [final_record(j)["high_quality"] for j in finished]
        mean = statistics.fmean(values)
        if len(values) == 2:
            assert row[col] == f"{mean:.4g} ± {statistics.stdev(values):.2g} (n={len(values)})"  # the sample std
            assert row[2] == "2/2"
        else:  # the crashed seed is left out of the mean and the row is marked
            assert row[col] == f"{mean:.4g}" and row[2] == "1/2 ⚠"
    assert "## Not finished" in md and "failed" in md.split("## Not finished")[1] and "error.txt" in md

    with open(sweep / "report.csv") as fh:
        lines = list(csv.DictReader(fh))
    assert len(lines) == 8
    for line in lines:
        job = sweep / line["job"]
        if line["status"] == "done":
            assert float(line["final/modes_covered"]) == final_record(job)["modes_covered"]
        else:
            assert line["status"] == "failed" and line["final/modes_covered"] == ""
    # two swept knobs: a heatmap; every job's learning curve
    assert (sweep / "report_loss_x_n_dis.png").stat().st_size > 0
    assert (sweep / "report_curves.png").stat().st_size > 0


def test_report_on_a_missing_folder_is_one_line(tmp_path):
    proc = run_ganzoo("report", tmp_path / "nope", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and "no such folder" in proc.stderr


def test_report_reads_a_joblib_sweep(tmp_path, capsys):
    """hydra/launcher=joblib runs the jobs in parallel worker processes; the folders are the same. The
    command runs in this process (its workers are processes all the same); `ganzoo report` is the
    installed command in the test above."""
    from joblib.externals.loky import get_reusable_executor
    from ganzoo.report import report_command
    try:
        ganzoo_here("train", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "loss=ns,hinge", "seed=0,1",
                    *TINY, "hydra.sweep.dir=jl", cwd=tmp_path)
    finally:
        get_reusable_executor().shutdown(wait=True)  # joblib keeps its workers for a next call
    capsys.readouterr()
    report_command([str(tmp_path / "jl")])
    assert "swept: loss, seed" in capsys.readouterr().out
    with open(tmp_path / "jl" / "report.csv") as fh:
        lines = list(csv.DictReader(fh))
    assert len(lines) == 4 and {line["status"] for line in lines} == {"done"}
    for line in lines:
        assert float(line["final/mmd"]) == final_record(tmp_path / "jl" / line["job"])["mmd"]
    assert (tmp_path / "jl" / "report_loss.png").is_file()


def test_report_sets_the_papers_numbers_beside_ours(tmp_path):
    """Jobs of an experiment config that cites numbers get an "Against the paper" row per number:
    our final and best as mean +- std over seeds, from the jobs' own metrics files."""
    import yaml
    from ganzoo.report import write_report

    fids = {0: [40.0, 30.0, 35.0], 1: [50.0, 20.0, 25.0]}  # per seed, over evaluations
    for seed, values in fids.items():
        job = tmp_path / f"{seed}_seed={seed}"
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(["experiment=x", f"seed={seed}"]))
        (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump(
            {"seed": seed, "paper": {"source": "Paper, Table 1", "reports": {"fid": 12.32, "is_mean": 8.53}}}))
        (job / "status.json").write_text(json.dumps({"status": "done", "step": 3}))
        (job / "metrics.jsonl").write_text("".join(json.dumps({"step": i + 1, "fid": v, "is_mean": 2.0 + seed})
                                                   + "\n" for i, v in enumerate(values)))
    md = write_report(tmp_path)["md"].read_text()
    paper = md.split("## Against the paper")[1].split("\n## ")[0]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in paper.splitlines() if line.startswith("| ")]
    assert rows[0] == ["metric", "paper", "final", "best", "source"]
    final = statistics.fmean([35.0, 25.0]), statistics.stdev([35.0, 25.0])
    best = statistics.fmean([30.0, 20.0]), statistics.stdev([30.0, 20.0])
    assert rows[1] == ["fid", "12.32", f"{final[0]:.4g} ± {final[1]:.2g} (n=2)", f"{best[0]:.4g} ± {best[1]:.2g} (n=2)",
                       "Paper, Table 1"]
    assert rows[2][:4] == ["is_mean", "8.53", "2.5 ± 0.71 (n=2)", "2.5 ± 0.71 (n=2)"]  # 2 and 3: sample std
    assert len(rows) == 3


@pytest.mark.parametrize("code", [errno.EROFS, errno.ENOSPC])
def test_report_on_a_read_only_or_full_file_system_is_one_line(tmp_path, monkeypatch, code):
    from ganzoo import report as report_module
    from ganzoo.errors import GanzooError
    job = tmp_path / "sweep" / "0_seed=0"
    job.mkdir(parents=True)
    (job / "status.json").write_text(json.dumps({"status": "done", "step": 5}))
    (job / "metrics.jsonl").write_text(json.dumps({"step": 5, "mmd": 0.5}) + "\n")

    def refuse(path, write):
        raise OSError(code, os.strerror(code), str(path))
    monkeypatch.setattr(report_module, "atomic_write", refuse)
    with pytest.raises(GanzooError, match=r"cannot write the report: .*report\.(md|csv|png)"):
        report_module.report_command([str(tmp_path / "sweep")])
    assert not list((tmp_path / "sweep").glob("report*"))


def test_a_categorical_knob_is_drawn_without_lines_and_a_missing_curve_is_explained(tmp_path, monkeypatch):
    from ganzoo import report as report_module
    figures = {}
    real_save = report_module._save
    monkeypatch.setattr(report_module, "_save", lambda fig, path: figures.setdefault(path.name, fig) and
                        real_save(fig, path))
    for i, (method, seed, value) in enumerate([("gan", 0, 1.0), ("gan", 1, 2.0), ("aw", 0, 3.0), ("aw", 1, 5.0)]):
        job = tmp_path / f"{i}_method={method},seed={seed}"
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(f"- method={method}\n- seed={seed}\n")
        (job / "status.json").write_text(json.dumps({"status": "done", "step": 5}))
        (job / "metrics.jsonl").write_text(json.dumps({"step": 5, "mmd": value}) + "\n")  # one evaluation each
    md = report_module.write_report(tmp_path)["md"].read_text()
    assert "No learning curves: every job was evaluated once" in md and not (tmp_path / "report_curves.png").exists()
    line = figures["report_method.png"].axes[0].lines[0]
    assert line.get_linestyle() == "None"  # aw and gan are not points on a line
    assert "4 ± 1.4 (n=2)" in md  # 3 and 5: the sample std
