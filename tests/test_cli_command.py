"""The installed `ganzoo` command end to end: help, a few config errors as the user sees them (exit code,
one line, nothing written), a tiny run, sample, eval, sweeps."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ganzoo_here, only_run_dir, run_ganzoo

pytestmark = pytest.mark.slow


def test_help_lists_subcommands(tmp_path):
    out = run_ganzoo("--help", cwd=tmp_path).stdout
    for command in ("train", "sample", "eval"):
        assert f"  {command}" in out


@pytest.mark.parametrize("args, code, expected", [
    (["train", "stepz=10"], 2, "unknown config key 'stepz'; did you mean 'steps'?"),
    (["train", "dataset=cifar10", "arch=mlp"], 2, "arch=mlp is a 2-D net but dataset cifar10 holds images"),
    (["train", "method=fargan", "method.f=2,3"], 2, "method.f=2,3 gives several values, a sweep: add -m"),
    (["eval", "run=myrun", "bogus=1"], 2, "unknown config key 'bogus'"),
    (["train", "resume=/nonexistent/run"], 2, "resume=/nonexistent/run"),  # the command names no run: 2
])
def test_the_installed_command_refuses_in_one_line_and_writes_nothing(tmp_path, args, code, expected):
    proc = run_ganzoo(*args, cwd=tmp_path, check=False)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == code and len(lines) == 1, proc.stderr
    assert lines[0].startswith("ganzoo: error: ") and expected in lines[0], lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout and list(tmp_path.iterdir()) == []


def test_a_three_trial_optuna_search_runs_end_to_end(tmp_path):
    # in this process (test_two_job_sweep_has_readable_folders runs a sweep through the installed command)
    proc = ganzoo_here("train", "-m", "hparams_search=fargan_ring", "hydra.sweeper.n_trials=3", "steps=30",
                       "metrics.num_samples=200", "device=cpu", "hydra.sweep.dir=search", cwd=tmp_path)
    import yaml
    trials = sorted(p for p in (tmp_path / "search").iterdir() if p.is_dir())
    assert len(trials) == 3
    scores = [json.loads((t / "status.json").read_text())["metrics"]["modes_covered"] for t in trials]
    best = yaml.safe_load((tmp_path / "search" / "optimization_results.yaml").read_text())
    assert best["best_value"] == max(scores) and set(best["best_params"]) == {"method.f", "method.N0"}
    assert "Best value" in proc.stdout + proc.stderr


def test_sweep_with_a_bad_job_fails_before_any_job_runs(tmp_path):
    proc = run_ganzoo("train", "-m", "batch_size=64,0", cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert "job [batch_size=0]: batch_size must be > 0" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_cfg_job_prints_config_without_running(tmp_path):
    proc = run_ganzoo("train", "loss=hinge", "--cfg", "job", cwd=tmp_path)
    assert "name: hinge" in proc.stdout and "batch_size:" in proc.stdout
    assert not (tmp_path / "outputs").exists()
    # printing a config needs no data files, Inception weights or GPU; a bad value still fails
    offline = {"TORCH_HOME": str(tmp_path / "torch"), "GANZOO_DATA": str(tmp_path / "data")}
    # (in this process: the installed command's own start is the first call's)
    proc = ganzoo_here("train", "dataset=cifar10", "device=cuda", "--cfg", "job", cwd=tmp_path, env=offline)
    assert "name: dcgan" in proc.stdout and "name: cifar10" in proc.stdout
    proc = ganzoo_here("train", "dataset=cifar10", "stepz=1", "--cfg", "job", cwd=tmp_path, check=False, env=offline)
    assert proc.returncode == 2 and "did you mean 'steps'" in proc.stderr


def test_tiny_run_writes_everything_a_researcher_reads(tmp_path, tiny):
    proc = run_ganzoo("train", *tiny, "sample_every=20", cwd=tmp_path)
    run = only_run_dir(tmp_path)
    assert run.name.endswith("_fargan_ring_ns")  # the default job: FARGAN (conf/train.yaml)
    assert f"outputs: {run}" in proc.stdout and "final metrics: modes_covered=" in proc.stdout

    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [20, 40]
    for r in records:
        assert set(r) >= {"modes_covered", "high_quality", "reverse_kl", "mmd"}
        assert 0 <= r["modes_covered"] <= 8 and 0 <= r["high_quality"] <= 1
    assert json.loads((run / "status.json").read_text())["status"] == "done"
    assert (run / "ckpt" / "last.pt").is_file()
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["samples_00000020.png", "samples_00000040.png"]
    assert (run / ".hydra" / "config.yaml").is_file() and (run / "train.log").is_file()
    umask = os.umask(0o022)
    os.umask(umask)  # the command's, inherited: its files are as readable as a plain write's
    for f in ("status.json", "environment.json", "metrics.jsonl", "ckpt/last.pt", "samples/samples_00000040.png"):
        assert (run / f).stat().st_mode & 0o777 == 0o666 & ~umask, f

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(run), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    scalars = set(acc.Tags()["scalars"])
    for tag in ("loss/d", "loss/g", "d/real_logit", "d/fake_logit", "grad_norm/d", "grad_norm/g",
                "lr/g", "lr/d", "speed/steps_per_s", "metrics/modes_covered", "metrics/mmd",
                "final/modes_covered"):
        assert tag in scalars, (tag, sorted(scalars))
    assert [e.step for e in acc.Scalars("loss/d")] == [10, 20, 30, 40]
    assert "samples" in acc.Tags()["images"]
    assert acc.PluginTagToContent("hparams")  # the HPARAMS tab entry written at the end


def test_sample_and_eval_use_the_saved_run(tmp_path, tiny):
    ganzoo_here("train", *tiny, "seed=3", cwd=tmp_path)
    run = only_run_dir(tmp_path)
    final = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])

    ganzoo_here("sample", f"run={run}", "n=300", "out=s.npz", "seed=5", cwd=tmp_path)
    with np.load(tmp_path / "s.npz") as z:
        assert z["samples"].shape == (300, 2) and z["samples"].dtype == np.float32
        assert z["generator"].shape == (300,) and np.issubdtype(z["generator"].dtype, np.integer)
        assert (z["generator"] == 0).all()
        first = z["samples"].copy()
    ganzoo_here("sample", f"run={run}", "n=300", "out=again.npz", "seed=5", cwd=tmp_path)
    with np.load(tmp_path / "again.npz") as z:
        np.testing.assert_array_equal(z["samples"], first)  # same seed, same samples

    ganzoo_here("sample", f"run={run}", "n=200", "out=pic.png", cwd=tmp_path)
    assert (tmp_path / "pic.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    proc = ganzoo_here("eval", f"run={run}", cwd=tmp_path)
    assert "step 40 (last, seed 3)" in proc.stdout  # the run's own seed
    again = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert again["source"] == "eval" and again["step"] == 40 and again["seed"] == 3
    # eval with the run's seed reproduces the run's own final evaluation exactly
    for key in ("modes_covered", "high_quality", "reverse_kl", "mmd"):
        assert again[key] == final[key], key
    # another seed draws other samples (the record says which)
    proc = ganzoo_here("eval", f"run={run}", "seed=5", cwd=tmp_path)
    other = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert "step 40 (last, seed 5)" in proc.stdout and other["seed"] == 5 and other["mmd"] != again["mmd"]

    # a 2-D run scores neither fid nor cfid, so it keeps no best checkpoint: say so, and what to use
    proc = ganzoo_here("eval", f"run={run}", "ckpt=best", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().endswith("none of this run's did (2-D runs never do); use ckpt=last"), proc.stderr

    # sampling builds the model without optimisers: neither torch's compiler stack (which an optimiser's
    # constructor imports) nor TensorBoard is loaded, so `sample` and `eval` start in about torch's import
    code = (f"import sys; from ganzoo.use import sample_command; from ganzoo.config import SampleConfig; "
            f"sample_command(SampleConfig(run={str(run)!r}, n=10, out='fast.npz')); "
            f"print(sorted(m for m in ('torch._dynamo', 'torch.utils.tensorboard') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr
    with np.load(tmp_path / "fast.npz") as z:
        assert z["samples"].shape == (10, 2)


def test_a_large_sample_is_drawn_and_written_a_block_at_a_time(tmp_path, tiny, monkeypatch):
    """Above STREAM_ROWS an .npz is streamed to the file block by block (memory holds one block); for a
    one-generator method the file is the one drawn in a single pass, bit for bit."""
    from ganzoo import use
    from ganzoo.methods.gan import GAN
    ganzoo_here("train", *tiny, "method=gan", cwd=tmp_path)
    run = only_run_dir(tmp_path)
    ganzoo_here("sample", f"run={run}", "n=10000", "out=whole.npz", cwd=tmp_path)
    drawn, real = [], GAN.sample
    monkeypatch.setattr(GAN, "sample", lambda self, n, generator=None, chunk=4096, y=None: drawn.append(n) or
                        real(self, n, generator, chunk, y))
    monkeypatch.setattr(use, "STREAM_ROWS", 2 * 4096)
    ganzoo_here("sample", f"run={run}", "n=10000", "out=streamed.npz", cwd=tmp_path)
    assert drawn == [8192, 1808]  # never more than a block at once
    with np.load(tmp_path / "whole.npz") as a, np.load(tmp_path / "streamed.npz") as b:
        assert b["samples"].shape == (10000, 2) and b["samples"].dtype == np.float32
        assert b["generator"].dtype == np.int64 and (b["generator"] == 0).all()
        np.testing.assert_array_equal(a["samples"], b["samples"])
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_sample_rejects_unknown_format_and_missing_run(tmp_path):
    proc = ganzoo_here("sample", "run=nowhere", "out=x.npz", cwd=tmp_path, check=False)
    assert proc.returncode != 0 and "run=nowhere: no such folder" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = ganzoo_here("sample", "run=.", "out=x.txt", cwd=tmp_path, check=False)
    assert proc.returncode != 0 and "must end in .npz" in proc.stderr


def test_corrupt_checkpoint_gives_one_clear_message(tmp_path, tiny):
    ganzoo_here("train", *tiny, cwd=tmp_path)
    run = only_run_dir(tmp_path)
    ckpt = run / "ckpt" / "last.pt"
    ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])  # truncated, as by a full disk
    for args in (["sample", f"run={run}", "out=x.npz"], ["train", f"resume={run}", "steps=60"]):
        proc = ganzoo_here(*args, cwd=tmp_path, check=False)
        assert proc.returncode != 0
        lines = [line for line in proc.stderr.splitlines() if line.strip() and "HYDRA" not in line]
        assert lines[-1].startswith("ganzoo: error: checkpoint") and "corrupt or truncated" in lines[-1]
        assert "Traceback" not in proc.stderr
    assert not (tmp_path / "x.npz").exists()


def test_two_job_sweep_has_readable_folders(tmp_path):
    # in this process: the installed command's -m is run by test_report's joblib sweep
    proc = ganzoo_here("train", "-m", "loss=ns,hinge", "steps=20", "batch_size=32", "eval_every=0",
                       "sample_every=0", "ckpt_every=0", "metrics.num_samples=300", "device=cpu", cwd=tmp_path)
    sweeps = list((tmp_path / "outputs" / "multirun").iterdir())
    assert len(sweeps) == 1
    jobs = sorted(p.name for p in sweeps[0].iterdir() if p.is_dir())
    assert jobs == ["0_loss=ns", "1_loss=hinge"]
    for job in jobs:
        status = json.loads((sweeps[0] / job / "status.json").read_text())
        assert status["status"] == "done" and "modes_covered" in status["metrics"]
    assert "0_loss=ns" in proc.stdout and "1_loss=hinge" in proc.stdout  # the end-of-sweep summary


def test_a_failing_sweep_job_is_reported_and_the_others_still_run(tmp_path):
    # batchnorm cannot train on a batch of one: job 1 crashes inside torch, as a real bug would (method=gan:
    # the default fargan_ring would refuse batch_size=1 at the config check, before torch)
    # in this process, as test_a_three_trial_optuna_search_runs_end_to_end
    proc = ganzoo_here("train", "-m", "batch_size=32,1,32", "method=gan", "arch.d.batchnorm=true", "steps=10",
                       "eval_every=0", "sample_every=0", "ckpt_every=0", "metrics.num_samples=200", "device=cpu",
                       cwd=tmp_path, check=False)
    assert proc.returncode == 1, proc.stderr
    sweep = next((tmp_path / "outputs" / "multirun").iterdir())
    statuses = {p.name: json.loads((p / "status.json").read_text())["status"]
                for p in sweep.iterdir() if p.is_dir()}
    assert statuses == {"0_batch_size=32": "done", "1_batch_size=1": "failed", "2_batch_size=32": "done"}
    assert "Expected more than 1 value per channel" in (sweep / "1_batch_size=1" / "error.txt").read_text()
    assert "1 job(s) of the sweep failed" in proc.stderr and "1_batch_size=1" in proc.stderr
    assert "1_batch_size=1" in proc.stdout and "failed" in proc.stdout  # the end-of-sweep summary line


def test_multi_generator_runs_sample_and_score_each_generator(tmp_path, tiny):
    ganzoo_here("train", "method=stackelberg", "method.I=4", *tiny, "hydra.run.dir=st", cwd=tmp_path)
    ganzoo_here("sample", "run=st", "n=400", "out=st.npz", cwd=tmp_path)
    with np.load(tmp_path / "st.npz") as z:
        assert z["samples"].shape == (400, 2) and sorted(set(z["generator"].tolist())) == [0, 1, 2, 3]
    ganzoo_here("train", "method=sgan", "method.N=2", *tiny, "hydra.run.dir=sg", cwd=tmp_path)
    proc = ganzoo_here("eval", "run=sg", cwd=tmp_path)
    assert "local1/modes_covered=" in proc.stdout and "local2/reverse_kl=" in proc.stdout
    record = json.loads((tmp_path / "sg" / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["source"] == "eval" and {"modes_covered", "local1/modes_covered"} <= set(record)
    with np.load(_sample(tmp_path, "sg")) as z:
        assert (z["generator"] == 0).all()  # sgan's output is the global generator alone


def _sample(cwd, run):
    ganzoo_here("sample", f"run={run}", "n=50", f"out={run}.npz", cwd=cwd)
    return cwd / f"{run}.npz"


def test_path_values_that_need_quoting_are_quoted_for_hydra():
    from ganzoo.cli import quote_paths
    assert quote_paths("train", ["resume=/runs/my run=a,b é", "steps=5", "hydra.run.dir=/x/y z"]) == \
        ["resume='/runs/my run=a,b é'", "steps=5", "hydra.run.dir='/x/y z'"]
    plain = ["resume=outputs/train/2026-12-07_10-00-00_gan_ring_ns", "resume=auto", "run='/a b'",
             "hydra.run.dir=outputs/${now:%H}"]
    assert quote_paths("train", plain) == plain  # nothing to quote, already quoted, or Hydra's own syntax
    assert quote_paths("eval", ["run=/a b", "seed=1,2"]) == ["run='/a b'", "seed=1,2"]  # other keys: untouched
    assert quote_paths("train", ["resume=/it's"]) == ["resume='/it\\'s'"]


@pytest.mark.slow  # a tiny run, its resume and an eval
def test_a_run_folder_whose_name_needs_quoting_trains_resumes_and_evaluates(tmp_path, tiny):
    run = tmp_path / "my run=a,b é"
    ganzoo_here("train", *tiny, f"hydra.run.dir={run}", cwd=tmp_path)
    ganzoo_here("train", f"resume={run}", "steps=50", cwd=tmp_path)
    assert json.loads((run / "status.json").read_text())["step"] == 50
    proc = ganzoo_here("eval", f"run={run}", cwd=tmp_path)
    assert "step 50 (last, seed" in proc.stdout


def test_the_sweep_summary_shows_each_jobs_numbers_only(tmp_path, capsys):
    from omegaconf import OmegaConf
    from ganzoo.sweep import SweepSummary
    (tmp_path / "0_seed=0").mkdir()
    (tmp_path / "0_seed=0" / "status.json").write_text(json.dumps({"status": "done", "metrics": {
        "cfid": 12.345, "classes_covered": 9, "class_acc_per_class": [0.5, 1.0], "protocol": {"classifier": {}}}}))
    SweepSummary().on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}}))
    line = capsys.readouterr().out.splitlines()[-1]
    assert "cfid=12.3" in line and "classes_covered=9" in line
    assert "class_acc_per_class" not in line and "protocol" not in line
