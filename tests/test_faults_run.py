"""Runs that survive the cluster: signals, divergence, refused resumes, locks, resume=auto, requeues.

Every case asserts the exit code, the one line the user reads (no traceback) and what the run
folder holds afterwards (byte for byte where nothing may change)."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import ganzoo_exe, ganzoo_here
from ganzoo import checkpoint
from test_resume import assert_same_tree

# every test here runs the train command (in this process or as one), seconds each
pytestmark = pytest.mark.slow

RUN = ["method=gan", "arch=mlp", "optim=adam", "steps=40", "batch_size=32", "log_every=5", "eval_every=20", "ckpt_every=20", "sample_every=null",
       "metrics.num_samples=200", "device=cpu", "arch.g.hidden=[32,32]", "arch.d.hidden=[32,32]"]


def snapshot(folder: Path) -> dict:
    """Every file's bytes under `folder` (the lock file is the lock's, not the run's)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != ".lock"}


def status(run: Path) -> dict:
    return json.loads((run / "status.json").read_text())


def one_line(proc) -> str:
    err = proc.stderr.strip()
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    assert len(err.splitlines()) == 1, err
    return err


def same_run(a: Path, b: Path) -> None:
    x, y = checkpoint.load(a / "ckpt" / "last.pt"), checkpoint.load(b / "ckpt" / "last.pt")
    assert x["step"] == y["step"]
    assert_same_tree(x["method"], y["method"])
    assert_same_tree(x["data"], y["data"], "data")
    assert_same_tree(x["rng"], y["rng"], "rng")


def signal_at(monkeypatch, step: int, signum: int, times: int = 1) -> None:
    """Deliver `signum` to this process while the loop reports `step` (a deterministic preemption)."""
    from ganzoo.logger import RunLogger
    original = RunLogger.progress

    def progress(self, at, values):
        original(self, at, values)
        if at == step:
            for _ in range(times):
                os.kill(os.getpid(), signum)
    monkeypatch.setattr(RunLogger, "progress", progress)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """One uninterrupted run every stopped-and-resumed run must equal."""
    root = tmp_path_factory.mktemp("straight")
    ganzoo_here("train", *RUN, "hydra.run.dir=run", cwd=root)
    return root / "run"


# ------------------------------------------------------------------ signals
@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT", "SIGHUP", "SIGUSR1", "SIGUSR2"])
def test_a_signal_saves_the_step_and_stops_then_resume_is_exact(tmp_path, monkeypatch, straight, signame):
    signum = getattr(signal, signame)
    signal_at(monkeypatch, 13, signum)
    proc = ganzoo_here("train", *RUN, "hydra.run.dir=run", cwd=tmp_path, check=False)
    run = tmp_path / "run"
    assert proc.returncode == 128 + signum
    line = one_line(proc)
    word = "interrupted" if signame == "SIGINT" else f"preempted ({signame})"
    assert f"{word} at step 13" in line and "resume=" in line
    assert status(run)["status"] == ("interrupted" if signame == "SIGINT" else "preempted")
    assert status(run)["step"] == 13 and checkpoint.load(run / "ckpt" / "last.pt")["step"] == 13
    assert signal.getsignal(signum) is not None  # our handler is gone again
    monkeypatch.undo()

    ganzoo_here("train", f"resume={run}", cwd=tmp_path)
    assert status(run)["status"] == "done"
    same_run(straight, run)
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in lines] == [20, 40]


def test_a_second_signal_stops_at_once_and_keeps_the_last_checkpoint(tmp_path, monkeypatch, straight):
    """The second signal lands while ckpt/last.pt of step 25 is being written: that write is
    abandoned, no temp file stays, and the step-20 checkpoint is intact and resumes exactly."""
    signal_at(monkeypatch, 25, signal.SIGTERM)
    original = checkpoint.atomic_write

    def write_then_signal(path, write):
        def interrupted(fh):
            fh.write(b"half a checkpoint")
            os.kill(os.getpid(), signal.SIGTERM)
            write(fh)
        armed = Path(path).name == "last.pt" and signal.getsignal(signal.SIGTERM).__self__.requested
        original(path, interrupted if armed else write)
    monkeypatch.setattr(checkpoint, "atomic_write", write_then_signal)
    proc = ganzoo_here("train", *RUN, "hydra.run.dir=run", cwd=tmp_path, check=False)
    monkeypatch.undo()
    run = tmp_path / "run"
    assert proc.returncode == 143
    assert "second SIGTERM" in one_line(proc)
    assert status(run) | {"time": 0} == {"status": "preempted", "step": 20, "signal": 15, "time": 0}
    assert not [p for p in (run / "ckpt").iterdir() if p.name not in ("last.pt", "best.pt")]
    assert checkpoint.load(run / "ckpt" / "last.pt")["step"] == 20
    ganzoo_here("train", f"resume={run}", cwd=tmp_path)
    same_run(straight, run)


def test_the_installed_command_stops_on_sigterm_with_one_line(tmp_path):
    """A real process, a real signal from outside; status.json's step follows the checkpoints."""
    proc = subprocess.Popen([ganzoo_exe(), "train", "steps=100000", "ckpt_every=10", "eval_every=0",
                             "log_every=10", "device=cpu", "hydra.run.dir=run"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run = tmp_path / "run"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if status(run).get("step", 0) >= 20:
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("ganzoo: preempted (SIGTERM) at step")
    stopped = status(run)
    assert stopped["status"] == "preempted"
    assert checkpoint.load(run / "ckpt" / "last.pt")["step"] == stopped["step"] >= 20


# ------------------------------------------------------------------ refused resumes change nothing
@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    root = tmp_path_factory.mktemp("finished")
    ganzoo_here("train", *RUN, "steps=20", "hydra.run.dir=run", cwd=root)
    return root / "run"


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 16] = bytes(b ^ 0xFF for b in data[middle:middle + 16])
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("case", ["changed_config", "damaged_bytes", "truncated", "foreign", "no_checkpoint",
                                  "folder_in_use"])
def test_a_refused_resume_changes_nothing_in_the_run(tmp_path, finished, case):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    ckpt = run / "ckpt" / "last.pt"
    extra = ["steps=30"]
    lock = None
    if case == "changed_config":
        extra.append("loss=hinge")
    elif case == "damaged_bytes":
        _flip(ckpt)
    elif case == "truncated":
        ckpt.write_bytes(ckpt.read_bytes()[:1000])
    elif case == "foreign":
        torch.save({"weights": torch.zeros(3)}, ckpt)
    elif case == "no_checkpoint":
        ckpt.unlink()
    else:
        from ganzoo.rundir import RunLock
        lock = RunLock(run).acquire()
    before = snapshot(run)
    try:
        proc = ganzoo_here("train", f"resume={run}", *extra, cwd=tmp_path, check=False)
    finally:
        if lock is not None:
            lock.release()
    assert proc.returncode != 0
    line = one_line(proc)
    assert {"changed_config": "loss.name: 'ns' -> 'hinge'", "damaged_bytes": "CRC",
            "truncated": str(ckpt), "foreign": "not a ganzoo checkpoint", "no_checkpoint": "no checkpoint",
            "folder_in_use": "in use by another ganzoo process"}[case] in line
    assert snapshot(run) == before


def test_a_new_run_never_overwrites_a_folder_holding_one(tmp_path, finished):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    before = snapshot(run)
    proc = ganzoo_here("train", *RUN, f"hydra.run.dir={run}", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "already holds a run (done" in one_line(proc)
    assert snapshot(run) == before


# ------------------------------------------------------------------ divergence
def test_non_finite_weights_stop_the_run_before_any_checkpoint(tmp_path, monkeypatch):
    """NaN weights from step 23 on: the next log step (25) stops the run as diverged, names the
    player, and ckpt/last.pt stays the finite one of step 20."""
    from ganzoo.methods.gan import GAN
    original = GAN.step

    def poisoned(self, draw_real, log=False):
        out = original(self, draw_real, log)
        if self.iteration == 23:
            with torch.no_grad():
                next(self.D.parameters()).fill_(float("nan"))
        return out
    monkeypatch.setattr(GAN, "step", poisoned)
    proc = ganzoo_here("train", *RUN, "hydra.run.dir=run", cwd=tmp_path, check=False)
    run = tmp_path / "run"
    assert proc.returncode == 3
    line = one_line(proc)
    assert "diverged at step 25" in line and "player D" in line and "loss/" in line
    assert status(run)["status"] == "diverged" and status(run)["step"] == 25
    state = checkpoint.load(run / "ckpt" / "last.pt")
    assert state["step"] == 20
    assert all(t.isfinite().all() for t in state["method"]["D"].values())
    assert [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()] == [20]


def test_exploding_learning_rates_end_as_diverged_not_done(tmp_path):
    proc = ganzoo_here("train", *RUN, "steps=200", "optim.g.lr=1e6", "optim.d.lr=1e6", "hydra.run.dir=run",
                       cwd=tmp_path, check=False)
    run = tmp_path / "run"
    assert proc.returncode == 3 and "diverged at step" in one_line(proc)
    assert status(run)["status"] == "diverged"
    if (run / "ckpt" / "last.pt").exists():
        state = checkpoint.load(run / "ckpt" / "last.pt")
        assert all(t.isfinite().all() for t in state["method"]["G"].values())


def test_the_loss_bound_stops_a_loss_that_explodes_without_nan(tmp_path):
    proc = ganzoo_here("train", *RUN, "watchdog.max_loss=0.01", "hydra.run.dir=run", cwd=tmp_path, check=False)
    assert proc.returncode == 3
    assert "diverged at step 5: |loss/" in one_line(proc) and "watchdog.max_loss=0.01" in proc.stderr
    assert not (tmp_path / "run" / "ckpt").exists()


def test_the_checks_sync_only_on_log_checkpoint_and_evaluation_steps(tmp_path, monkeypatch):
    from ganzoo import train as train_module
    checked = []
    original = train_module.check_state
    monkeypatch.setattr(train_module, "check_state",
                        lambda step, method, losses=None: (checked.append(step), original(step, method, losses)))
    ganzoo_here("train", *RUN, "log_every=7", "hydra.run.dir=run", cwd=tmp_path)
    # log steps 7..35, evaluations and checkpoints at 20 and 40 (each checks before writing)
    assert sorted(set(checked)) == [7, 14, 20, 21, 28, 35, 40]


def test_report_marks_a_diverged_job(tmp_path):
    ganzoo_here("train", "-m", *RUN, "watchdog.max_loss=0.01,1e9", "hydra.sweep.dir=sweep", cwd=tmp_path,
                check=False)
    from ganzoo.report import report_command
    report_command([str(tmp_path / "sweep")])
    text = (tmp_path / "sweep" / "report.md").read_text()
    assert "**diverged**, step 5: diverged at step 5" in text and "0/1 ⚠ 1 diverged" in text


# ------------------------------------------------------------------ folders: claims and locks
def test_default_folders_started_in_the_same_second_differ(tmp_path, monkeypatch):
    from ganzoo import cli
    from ganzoo.rundir import claim_new
    base = tmp_path / "outputs" / "train" / "2026-01-01_00-00-00_gan_ring_ns"
    assert [claim_new(base), claim_new(base), claim_new(base)] == [
        base, base.with_name(base.name + "_2"), base.with_name(base.name + "_3")]
    monkeypatch.chdir(tmp_path)
    overrides, lock = cli.claim_run("train", [], ["seed=1"])
    lock.release()
    folder = Path(overrides[-1].split("=", 1)[1].strip("'"))
    assert overrides[-1].startswith("hydra.run.dir=") and folder.is_dir() and folder.name.endswith("_ring_ns")


def test_a_second_process_on_a_running_folder_refuses(tmp_path):
    from ganzoo.rundir import RunLock
    run = tmp_path / "run"
    lock = RunLock(run).acquire()
    script = (f"from ganzoo.rundir import RunLock\nRunLock({str(run)!r}).acquire()")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    lock.release()
    assert proc.returncode != 0 and "in use by another ganzoo process (pid" in proc.stderr
    subprocess.run([sys.executable, "-c", script], check=True)  # free once released


# ------------------------------------------------------------------ resume=auto
def test_resume_auto_starts_continues_and_skips(tmp_path, monkeypatch, straight):
    run = tmp_path / "run"
    signal_at(monkeypatch, 13, signal.SIGTERM)
    assert ganzoo_here("train", *RUN, "resume=auto", f"hydra.run.dir={run}", cwd=tmp_path,
                       check=False).returncode == 143
    monkeypatch.undo()
    ganzoo_here("train", *RUN, "resume=auto", f"hydra.run.dir={run}", cwd=tmp_path)  # continues step 13
    same_run(straight, run)
    ckpt = (run / "ckpt" / "last.pt").read_bytes()
    proc = ganzoo_here("train", *RUN, "resume=auto", f"hydra.run.dir={run}", cwd=tmp_path)  # done: skipped
    assert "is done at step 40; nothing to do" in proc.stderr + proc.stdout
    assert (run / "ckpt" / "last.pt").read_bytes() == ckpt
    before = snapshot(run)  # a done folder holding another experiment is refused, not skipped
    proc = ganzoo_here("train", *RUN, "loss=hinge", "resume=auto", f"hydra.run.dir={run}", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "loss.name: 'ns' -> 'hinge'" in one_line(proc)
    assert snapshot(run) == before


def test_a_sweep_rerun_with_resume_auto_skips_done_jobs_and_resumes_the_rest(tmp_path, monkeypatch, straight):
    from ganzoo.methods.gan import GAN
    sweep = ["-m", *RUN, "loss=hinge,ns", "resume=auto", "hydra.sweep.dir=sweep"]
    calls = {"n": 0}
    from ganzoo.logger import RunLogger
    original = RunLogger.progress

    def preempt_second_job(self, at, values):  # the sweep is stopped in its second job, at step 13
        original(self, at, values)
        calls["n"] += at == 1
        if calls["n"] == 2 and at == 13:
            os.kill(os.getpid(), signal.SIGTERM)
    monkeypatch.setattr(RunLogger, "progress", preempt_second_job)
    assert ganzoo_here("train", *sweep, cwd=tmp_path, check=False).returncode == 143
    monkeypatch.undo()
    first, second = sorted((tmp_path / "sweep").glob("*_loss=*"))
    assert status(first)["status"] == "done" and status(second)["status"] == "preempted"
    done_before = snapshot(first)

    steps_run = []
    monkeypatch.setattr(GAN, "step", lambda self, d, log=False, _s=GAN.step: (steps_run.append(1), _s(self, d, log))[1])
    ganzoo_here("train", *sweep, cwd=tmp_path)
    assert len(steps_run) == 40 - 13  # only the preempted job trained, from its checkpoint
    assert status(second)["status"] == "done"
    for name, data in done_before.items():
        if not name.startswith((".hydra", "train.log")):  # Hydra rewrites its record of the job
            assert (first / name).read_bytes() == data, name
    same_run(straight, second)


def test_a_submitit_requeue_continues_the_checkpoint_bit_for_bit(tmp_path, straight):
    """hydra/launcher=submitit_local: SIGUSR2 (submitit's requeue signal) mid-run; ganzoo saves the
    step, submitit requeues the job with the same overrides, and resume=auto (which ganzoo train sets
    under a submitit launcher) continues it to the end, equal to the uninterrupted run."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    slow = [o for o in RUN if not o.startswith(("steps=", "ckpt_every="))] + ["steps=200", "ckpt_every=10"]
    proc = subprocess.Popen([ganzoo_exe(), "train", "-m", "hydra/launcher=submitit_local", *slow,
                             "hydra.sweep.dir=sweep"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 180
    signalled = None
    while time.time() < deadline and signalled is None:
        for path in (tmp_path / "sweep").glob("*/status.json"):
            try:
                record = json.loads(path.read_text())
            except ValueError:
                continue
            if record.get("step", 0) >= 20 and record.get("status") == "running":
                os.kill(record["pid"], signal.SIGUSR2)
                signalled = record["pid"]
        time.sleep(0.1)
    out, err = proc.communicate(timeout=240)
    assert signalled and proc.returncode == 0, err
    job = next((tmp_path / "sweep").glob("*/status.json")).parent
    assert status(job)["status"] == "done"
    logs = "".join(p.read_text() for p in (tmp_path / "sweep" / ".submitit").rglob("*_log.*"))
    assert "Caught signal SIGUSR2" in logs
    assert len(list(job.glob("events.out.tfevents.*"))) == 2  # two processes trained: the job was requeued
    uninterrupted = tmp_path / "straight"
    ganzoo_here("train", *slow, f"hydra.run.dir={uninterrupted}", cwd=tmp_path)
    same_run(uninterrupted, job)


def test_a_full_disk_at_a_checkpoint_is_one_line_and_leaves_no_partial_file(tmp_path, monkeypatch):
    """ENOSPC while ckpt/last.pt of step 20 is written (simulated in this process: no disk is
    filled): one line naming the file and the reason, exit 1, no temp file, status failed."""
    import errno

    def full_disk(obj, fh):
        fh.write(b"\0" * 4096)
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(checkpoint, "torch_save", full_disk)
    proc = ganzoo_here("train", *RUN, "hydra.run.dir=run", cwd=tmp_path, check=False)
    run = tmp_path / "run"
    assert proc.returncode == 1
    line = one_line(proc)
    assert str(run / "ckpt" / "last.pt") in line and "No space left on device (ENOSPC)" in line
    assert [p.name for p in (run / "ckpt").iterdir()] == []
    assert status(run)["status"] == "failed" and "ENOSPC" in status(run)["error"]


def test_the_thread_count_is_a_key_and_is_recorded(tmp_path, monkeypatch):
    monkeypatch.setattr(torch, "set_num_threads", lambda n: calls.append(n))
    calls = []
    ganzoo_here("train", *RUN, "steps=5", "threads=3", "hydra.run.dir=run", cwd=tmp_path)
    env = json.loads((tmp_path / "run" / "environment.json").read_text())
    assert calls == [3] and set(env) >= {"threads", "torch", "numpy", "python", "ganzoo"}
    proc = ganzoo_here("train", *RUN, "threads=0", "hydra.run.dir=bad", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "threads must be > 0, got 0" in one_line(proc)


def test_a_submitit_sweep_gets_resume_auto_unless_the_command_sets_resume(tmp_path, monkeypatch):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    from ganzoo.cli import check_command
    monkeypatch.chdir(tmp_path)
    assert "resume=auto" in check_command("train", ["-m", "hydra/launcher=slurm", "seed=0,1"])[1]
    opted_out = check_command("train", ["-m", "hydra/launcher=submitit_local", "seed=0,1", "resume=null"])[1]
    assert "resume=auto" not in opted_out and "resume=null" in opted_out
    assert "resume=auto" not in check_command("train", ["-m", "seed=0,1"])[1]  # the basic launcher never requeues


@pytest.mark.parametrize("records", [["metrics.jsonl"], ["status.json", "samples/step_5.png"],
                                     ["events.out.tfevents.1.host.1.0"]])
def test_a_new_run_never_overwrites_a_run_record_without_a_checkpoint(tmp_path, records):
    """A run saved with no checkpoint (cut short under ckpt_every=0, or its ckpt/ deleted) is refused like one
    with a checkpoint, before anything in the folder changes: .hydra/ and train.log stay byte-identical."""
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").write_text("the old run's config\n")
    (run / "train.log").write_text("the old run's log\n")
    for name in records:
        (run / name).parent.mkdir(parents=True, exist_ok=True)
        (run / name).write_text("{}\n")
    before = snapshot(run)
    proc = ganzoo_here("train", *RUN, f"hydra.run.dir={run}", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "and no checkpoint to continue: a new run would write over them" in one_line(proc)
    assert snapshot(run) == before


def test_a_folder_of_other_files_is_written_beside_never_over(tmp_path):
    run = tmp_path / "mine"
    run.mkdir()
    (run / "notes.txt").write_text("keep me")
    ganzoo_here("train", *RUN, f"hydra.run.dir={run}", cwd=tmp_path)
    assert (run / "notes.txt").read_text() == "keep me" and (run / "ckpt" / "last.pt").is_file()


def test_a_swept_value_cannot_name_a_folder_outside_the_sweep():
    from ganzoo.config import safe_dirname
    assert safe_dirname("paper.source=../../x") == "paper.source=.._.._x"  # one name, no path in it
    assert safe_dirname("dataset.root=/data/x,seed=1") == "dataset.root=_data_x,seed=1"
    assert safe_dirname("seed=3,method.K=8") == "seed=3,method.K=8"  # plain values stay as Hydra writes them
    long = safe_dirname("paper.source=" + "x" * 300)
    assert len(long.encode()) <= 200 and long != safe_dirname("paper.source=" + "x" * 299)


@pytest.mark.slow  # one two-job sweep, a few seconds
def test_a_sweep_keeps_every_job_inside_it_and_the_report_sees_them(tmp_path):
    from ganzoo.report import find_jobs
    ganzoo_here("train", "-m", "paper.source=../../escape,a/b", *RUN, "steps=2", "hydra.sweep.dir=sweeps/s",
                cwd=tmp_path)
    jobs = sorted(p.name for p in (tmp_path / "sweeps" / "s").iterdir() if p.is_dir())
    assert jobs == ["0_paper.source=.._.._escape", "1_paper.source=a_b"]
    assert not (tmp_path / "escape").exists() and not (tmp_path / "sweeps" / "escape").exists()
    assert len(find_jobs(tmp_path / "sweeps" / "s")) == 2


@pytest.mark.slow  # one tiny run
def test_a_default_folder_name_that_exists_gets_the_next_suffix(tmp_path, finished):
    """A clock that went back (or a run started in the same second) finds its dated default folder taken by
    a finished run: the new run takes name_2, and the old folder is left as it was."""
    import datetime
    now = datetime.datetime.now()
    taken = []
    for s in range(-1, 8):  # the seconds this test may start its run in
        name = (now + datetime.timedelta(seconds=s)).strftime("%Y-%m-%d_%H-%M-%S") + "_gan_ring_ns"
        taken.append(tmp_path / "outputs" / "train" / name)
        shutil.copytree(finished, taken[-1])
    before = [snapshot(t) for t in taken]
    proc = ganzoo_here("train", *RUN, "steps=2", cwd=tmp_path, check=False)
    assert proc.returncode == 0, one_line(proc)
    assert [snapshot(t) for t in taken] == before
    made = [p for p in (tmp_path / "outputs" / "train").iterdir() if p.name.endswith("_2")]
    assert len(made) == 1 and (made[0] / "ckpt" / "last.pt").is_file()


@pytest.mark.parametrize("damage, words", [
    (lambda s: s.update(step="abc"), "its 'step' is str 'abc', not a step count"),
    (lambda s: s.pop("rng"), "its 'rng' is missing, not a dict"),
    (lambda s: s.update(method=[1, 2]), "its 'method' is list [1, 2], not a dict"),
])
def test_an_intact_checkpoint_of_the_wrong_contents_is_refused_before_the_folder_changes(tmp_path, finished,
                                                                                          damage, words):
    """Valid CRCs, wrong contents: refused by the command's checks, so .hydra/ and train.log stay as they were."""
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    state = checkpoint.load(run / "ckpt" / "last.pt")
    damage(state)
    checkpoint.save(run / "ckpt" / "last.pt", state)
    before = snapshot(run)
    proc = ganzoo_here("train", f"resume={run}", "steps=40", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and words in one_line(proc)
    assert snapshot(run) == before


def test_a_tensor_of_the_wrong_shape_is_refused_in_one_line(tmp_path, finished):
    """The command's checks load the checkpoint into the nets the config builds: a tensor of another shape is
    refused before the job starts, so nothing in the folder changes (.hydra/ and train.log included)."""
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    state = checkpoint.load(run / "ckpt" / "last.pt")
    key = next(iter(state["method"]["G"]))
    state["method"]["G"][key] = torch.zeros(3, 3, 3)
    checkpoint.save(run / "ckpt" / "last.pt", state)
    before = snapshot(run)
    proc = ganzoo_here("train", f"resume={run}", "steps=40", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "contents do not fit this run's nets and state (Error(s) in loading" \
        in one_line(proc)
    assert snapshot(run) == before


@pytest.mark.parametrize("content, why", [
    (b'- !!python/object/apply:os.system ["touch PWNED"]\n', "could not determine a constructor for the tag"),
    (b"- [unclosed\n", "while parsing"),
    (b"key: value\n", "not a list of key=value overrides"),
    (b"\xff\xfe\n", "can't decode byte 0xff"),
])
def test_resume_refuses_damaged_overrides_in_one_line_and_runs_nothing(tmp_path, finished, content, why):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    (run / ".hydra" / "overrides.yaml").write_bytes(content)
    before = snapshot(run)
    proc = ganzoo_here("train", f"resume={run}", "steps=40", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and why in one_line(proc) and "is damaged" in one_line(proc)
    assert snapshot(run) == before and not (tmp_path / "PWNED").exists()
