"""Several ranks train one run, the same as one process with the global batch (gloo on this CPU).

tests/distributed_cases.py trains every method x penalty {none, r1, gp} a few steps under
`torchrun --standalone --nproc-per-node=2` (each rank B/2) and here in one process (B); the ranks
must be exactly equal and within 1e-6 of the one process, and the negative controls must not.
The end-to-end tests run the installed command under torchrun: resume across world sizes, the
metrics of rank 0's evaluation, a signal to one rank.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch


sys.path.insert(0, str(Path(__file__).parent))
import distributed_cases as cases  # noqa: E402

from conftest import ganzoo_exe  # noqa: E402
from ganzoo.config import compose_train  # noqa: E402
from ganzoo.distributed import Shard  # noqa: E402
from ganzoo.errors import ConfigError  # noqa: E402
from ganzoo.ranks import first_host, launcher_environment, slurm_environment  # noqa: E402

TOL = 1e-6
# aw/angle = arccos(cos): near cos = +-1 its slope is unbounded, so a 1e-8 difference in cos (summation
# order) shows as ~1e-5 degrees; the dot products it comes from are compared through w_r, w_f, the weights
LOOSE = {"aw/angle": 1e-3}


def torchrun(*args, cwd, timeout=300, check=True, popen=False):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", *map(str, args)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if popen:
        return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"torchrun {' '.join(map(str, args))} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """Each rank's results, started first so the one-process reference runs meanwhile."""
    from ganzoo.metrics.fidelity import write_random_inception_weights
    out = tmp_path_factory.mktemp("ranks")
    weights = write_random_inception_weights(out / "random-inception.pth")  # no network here
    configs = cases.write_configs(str(out), str(weights))
    proc = torchrun(Path(cases.__file__), out, cwd=out, popen=True)
    torch.set_num_threads(1)
    single = cases.run_cases(Shard(), configs, str(out / "single-cache"))
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-5000:]
    return single, torch.load(out / "rank0.pt"), torch.load(out / "rank1.pt")


def max_diff(a: dict, b: dict) -> tuple:
    worst = (0.0, "")
    for key in a:
        x, y = a[key], b[key]
        if x.dtype == torch.uint8:  # a generator's state: the same, or not
            d = 0.0 if torch.equal(x, y) else float("inf")
        else:
            d = (x.double() - y.double()).abs().max().item() if x.numel() else 0.0
        tol = next((t for k, t in LOOSE.items() if key.endswith(k)), TOL)
        if d / tol > worst[0] / TOL:
            worst = (d * TOL / tol, key)  # in units of the default tolerance
    return worst


@pytest.mark.slow  # a torchrun of 2 processes
@pytest.mark.xdist_group("distributed_ranks")  # one worker builds the `ranks` fixture, once
def test_two_ranks_train_as_one_process_for_every_method_and_penalty(ranks):
    single, r0, r1 = ranks
    assert len(cases.CASES) >= 26
    for case in cases.CASES:
        assert set(r0[case]) == set(single[case]), case
        assert all(torch.equal(r0[case][k], r1[case][k]) for k in r0[case]), f"{case}: the ranks differ"
        worst, key = max_diff(single[case], r0[case])
        assert worst <= TOL, f"{case}: {key} differs from one process by {worst:.3g}"
    # what was compared: parameters, optimiser moments, EMA, microbatch's beta, the stream's position
    keys = set(r0["microbatch/none"])
    assert any(k.startswith("method.ema.") for k in keys) and "method.beta" in keys
    assert "stream.pos" in keys or "stream.sampler" in keys
    assert any(".exp_avg_sq" in k for k in keys) and any(k.startswith("log3.loss/d") for k in keys)


@pytest.mark.slow  # a torchrun of 2 processes
@pytest.mark.xdist_group("distributed_ranks")  # one worker builds the `ranks` fixture, once
def test_negative_controls_differ_from_one_process(ranks):
    """aw with its gradients averaged only at the step (as DDP or a plain all-reduce would), and a
    batchnorm D whose ranks normalise their own rows: neither is one process's training."""
    single, r0, r1 = ranks
    for case in cases.CONTROLS:
        worst, key = max_diff(single[case], r0[case])
        assert worst > 1e-3, f"{case} matches one process ({key}: {worst:.3g}): the control cannot fail"


@pytest.mark.slow  # a torchrun of 2 processes
@pytest.mark.xdist_group("distributed_ranks")  # one worker builds the `ranks` fixture, once
def test_image_scores_of_two_ranks_are_one_process_scores(ranks):
    """Each rank extracts the Inception features of its share of the seeded samples; rank 0 scores
    the gathered features: FID, IS and KID exactly as one process computes them."""
    single, r0, r1 = ranks
    assert {"fid", "is_mean", "kid_mean"} <= set(single["image_scores"])
    assert {k: v.item() for k, v in r0["image_scores"].items()} == \
        {k: v.item() for k, v in single["image_scores"].items()}
    assert r1["image_scores"] == {}  # rank 1 extracted, rank 0 scored


@pytest.mark.slow  # a torchrun of 2 processes
@pytest.mark.xdist_group("distributed_ranks")  # one worker builds the `ranks` fixture, once
def test_ranks_holding_different_weights_refuse_to_checkpoint(ranks):
    _, r0, r1 = ranks
    assert r0["checksum"]["raised"].item() == 1.0 and r1["checksum"]["raised"].item() == 1.0
    assert r0["traffic_bytes"]["bytes"].item() > 0


# ------------------------------------------------------------------ in one process
def test_a_rank_keeps_its_share_of_every_block():
    t = torch.arange(8)
    assert Shard(1, 2).local(t).tolist() == [4, 5, 6, 7]
    assert Shard(1, 2, groups=2).local(t).tolist() == [2, 3, 6, 7]     # microbatch's K=2 blocks
    assert Shard(0, 2).local(t, groups=4).tolist() == [0, 2, 4, 6]
    with pytest.raises(ValueError):
        Shard(0, 2).local(torch.arange(6), groups=2)
    assert Shard().local(t) is t


@pytest.mark.parametrize("overrides, message", [
    (["batch_size=33"], "batch_size = 33 does not split equally over 2 ranks"),
    (["method=fargan", "method.N0=7", "loss.penalty=none"], "method.N0 = 7"),
    (["method=microbatch", "method.K=16", "batch_size=48"], "batch_size / method.K (a microbatch) = 3 "),
    (["method=microbatch", "method.K=5", "batch_size=64"], "= 12.8 does not split"),
    (["method=sgan", "method.N=5", "method.opponent=live", "batch_size=64"], "share) = 13 "),
])
def test_batches_that_do_not_split_over_the_ranks_are_refused(overrides, message):
    cfg = compose_train("device=cpu", "dataset=ring", "arch=mlp", "optim=adam", *overrides)
    cfg.check_world(1)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        cfg.check_world(2)
    # batch 64 splits over 2 ranks with these methods' defaults
    compose_train("device=cpu", "dataset=ring", "arch=mlp", "optim=adam", "batch_size=64").check_world(2)


def test_a_sweep_under_torchrun_is_refused_in_one_line(monkeypatch):
    from ganzoo import cli
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(ConfigError, match="-m starts a sweep, and under torchrun"):
        cli.check_command("train", ["-m", "seed=0,1"])
    with pytest.raises(ConfigError, match="ganzoo eval runs in one process"):
        cli.check_command("eval", ["run=x"])


def test_batchnorm_on_cpu_ranks_is_refused_and_converted_on_cuda():
    from ganzoo.model import build, sync_batchnorm
    cfg = compose_train("device=cpu", "dataset=ring", "arch=mlp", "optim=adam", "method=gan", "arch.d.batchnorm=true",
                        "loss.penalty=none")
    with pytest.raises(ConfigError, match="SyncBatchNorm needs CUDA"):
        build(cfg, shard=Shard(0, 2))
    model = build(cfg)  # one process: plain batchnorm
    params = [id(p) for p in model.method.D.parameters()]
    keys = list(model.method.D.state_dict())
    sync_batchnorm(cfg, model.method, torch.device("cuda"))  # conversion only: no forward here
    assert any(isinstance(m, torch.nn.SyncBatchNorm) for m in model.method.D.modules())
    assert [id(p) for p in model.method.D.parameters()] == params  # the optimiser still holds them
    assert list(model.method.D.state_dict()) == keys  # checkpoints load either way
    penalised = compose_train("device=cpu", "dataset=ring", "arch=mlp", "optim=adam", "method=gan",
                              "arch.d.batchnorm=true",
                              "loss.penalty=r1", "loss.k=1")
    with pytest.raises(ConfigError, match="no double backward"):
        sync_batchnorm(penalised, build(penalised).method, torch.device("cuda"))


def test_slurm_and_submitit_tasks_become_ranks():
    env = {"SLURM_STEP_NUM_TASKS": "16", "SLURM_NTASKS": "16", "SLURM_PROCID": "9", "SLURM_LOCALID": "1",
           "SLURM_JOB_ID": "123456", "SLURM_JOB_NODELIST": "gpu[003-004,9]"}
    assert slurm_environment(env) == {"RANK": "9", "WORLD_SIZE": "16", "LOCAL_RANK": "1",
                                      "MASTER_ADDR": "gpu003", "MASTER_PORT": str(20000 + 123456 % 20000)}
    assert slurm_environment({**env, "RANK": "0"}) == {}          # torchrun inside the job decides
    assert slurm_environment({**env, "SLURM_STEP_NUM_TASKS": "1"}) == {}  # one task: one process
    batch_script = {k: v for k, v in env.items() if k != "SLURM_STEP_NUM_TASKS"}
    assert slurm_environment(batch_script) == {}  # a job's batch script is one process, whatever --ntasks
    assert first_host("node1,node2") == "node1" and first_host("a[7]") == "a7"
    local = {"SUBMITIT_LOCAL_NTASKS": "2", "SUBMITIT_LOCAL_GLOBALID": "1", "SUBMITIT_LOCAL_LOCALID": "1",
             "SUBMITIT_LOCAL_JOB_ID": "777"}
    assert launcher_environment(local) == {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1",
                                           "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "20777"}
    assert launcher_environment(env)["RANK"] == "9"


# ------------------------------------------------------------------ the installed command
COMMON = ["dataset=ring", "arch=mlp", "optim=adam", "method=fargan", "method.f=2", "method.N0=8",
          "loss.penalty=none", "batch_size=64", "eval_every=0", "ckpt_every=10", "log_every=5",
          "sample_every=null", "metrics.num_samples=500", "device=cpu"]


def method_state(run: Path) -> dict:
    state = torch.load(run / "ckpt" / "last.pt", weights_only=False)
    out: dict = {}
    cases.flatten("method", state["method"], out)
    cases.flatten("stream", state["data"], out)
    return out


def _children(pid: int) -> list:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def slurm_step(*args, cwd):
    """`srun --ntasks=2 ganzoo <args>` as SLURM starts it: two processes that only SLURM's variables tell
    apart (no torchrun)."""
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    procs = []
    for task in range(2):
        env = {**os.environ, "SLURM_STEP_NUM_TASKS": "2", "SLURM_NTASKS": "2", "SLURM_PROCID": str(task),
               "SLURM_LOCALID": str(task), "SLURM_JOB_ID": "4242", "SLURM_STEP_NODELIST": "localhost",
               "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1"}
        for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR"):
            env.pop(key, None)
        procs.append(subprocess.Popen([ganzoo_exe(), *map(str, args)], cwd=cwd, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    outs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs


@pytest.mark.slow
def test_a_signal_to_one_rank_stops_both_and_a_run_moves_between_world_sizes(tmp_path):
    """2 ranks under torchrun (stopped by a signal to rank 1) -> 1 process -> 2 tasks of a SLURM step
    (`srun --ntasks=2 ganzoo train resume=...`: no torchrun, only SLURM's variables tell them apart),
    against one uninterrupted process; rank 0's scores against one process's evaluation of the same
    checkpoint."""
    # Adam's eps of 1e-3: how many steps run before the signal depends on the machine's speed, and over
    # ~60 steps a ReLU input within float noise of 0 turns a unit on in one summation order and not in
    # the other; Adam's default eps (1e-8) scales that ~1e-9 gradient up to a full lr-sized step (measured:
    # 1.6e-3 apart at step 71, 2 ranks vs 1 process). At eps 1e-3 it stays a 1e-9 step: 1.2e-7 after
    # 300 steps. The 3-step cases above compare the default optimiser.
    common = [*COMMON, "optim.g.eps=1e-3", "optim.d.eps=1e-3"]
    from ganzoo import use
    from ganzoo.cli import compose_jobs
    from ganzoo.config import LOADERS
    from ganzoo.train import train
    run = tmp_path / "run"
    command = ["-m", "ganzoo", "train", *common, "steps=100000", f"hydra.run.dir={run}"]
    proc = torchrun(*command, cwd=tmp_path, popen=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (run / "status.json").exists():
            time.sleep(0.1)
        status = json.loads((run / "status.json").read_text())
        time.sleep(0.3)  # some steps on 2 ranks
        follower = [p for p in _children(proc.pid) if p != status["pid"]]
        assert len(follower) == 1, (status, _children(proc.pid))
        os.kill(follower[0], signal.SIGUSR1)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert "preempted (SIGUSR1)" in stderr, stderr[-3000:]
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "preempted" and status["signal"] == signal.SIGUSR1
    stopped = status["step"]
    assert stopped > 0 and torch.load(run / "ckpt" / "last.pt", weights_only=False)["step"] == stopped
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # rank 1 wrote nothing anywhere
    assert json.loads((run / "environment.json").read_text())["world"] == 2

    train(compose_train(*common, f"steps={stopped + 5}", f"resume={run}"), run)  # 2 ranks -> 1 process
    slurm_step("train", f"resume={run}", f"steps={stopped + 10}", cwd=tmp_path)  # 1 process -> 2 SLURM tasks
    assert json.loads((run / "status.json").read_text())["status"] == "done"
    assert json.loads((run / "environment.json").read_text())["world"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # task 1 wrote nothing anywhere
    straight = tmp_path / "straight"
    train(compose_train(*common, f"steps={stopped + 10}"), straight)
    worst, key = max_diff(method_state(straight), method_state(run))
    assert worst <= TOL, f"{key}: the run differs from one uninterrupted process by {worst:.3g}"
    # rank 0's final scores are those of one process on the same checkpoint
    trained = json.loads((run / "status.json").read_text())["metrics"]
    use.eval_command(LOADERS["eval"](compose_jobs("eval", [f"run={run}", "device=cpu"], False)[0][1]))
    scored = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert scored["source"] == "eval" and {k: scored[k] for k in trained} == trained


@pytest.mark.slow
def test_a_sweep_job_of_two_submitit_tasks_is_one_distributed_run(tmp_path):
    """hydra/launcher=submitit_local with tasks_per_node=2, the local stand-in of hydra/launcher=slurm
    with several tasks: Hydra starts the job in each task and ganzoo makes them one run of 2 ranks."""
    from conftest import run_ganzoo
    sweep = tmp_path / "sweep"
    run_ganzoo("train", "-m", "hydra/launcher=submitit_local", "hydra.launcher.tasks_per_node=2", *COMMON,
               "steps=10", "seed=0", f"hydra.sweep.dir={sweep}", cwd=tmp_path, env={"OMP_NUM_THREADS": "1"})
    job = next(p for p in sweep.iterdir() if p.name.startswith("0_"))
    assert json.loads((job / "status.json").read_text())["status"] == "done"
    assert json.loads((job / "environment.json").read_text())["world"] == 2
    straight = tmp_path / "straight"
    from ganzoo.train import train
    train(compose_train(*COMMON, "steps=10"), straight)
    worst, key = max_diff(method_state(straight), method_state(job))
    assert worst <= TOL, f"{key}: differs from one process by {worst:.3g}"
