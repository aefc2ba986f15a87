"""The benchmark scripts still run and hand their options through (they time, they assert no speed),
and the GPU check runs its CPU part."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "scripts" / "bench.py"


def bench(*args):
    return subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=300)


@pytest.fixture
def script(monkeypatch, capsys):
    """A script's main() in this process (the process start alone costs ~4 s of CPU here; the scripts as
    commands are tested by test_bad_thread_count_is_one_clear_error and the reproduce tests): the cwd and
    torch's process-wide settings are restored after it. -> (returncode, stdout, stderr)."""
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()

    def run(name, *args, cwd=None):
        here = os.getcwd()
        capsys.readouterr()
        try:
            os.chdir(cwd or here)
            code = __import__(name).main(list(args)) or 0
        finally:
            os.chdir(here)  # gpu_check changes into its own temporary folder
            torch.set_num_threads(threads)
            if torch.are_deterministic_algorithms_enabled() != deterministic:
                torch.use_deterministic_algorithms(deterministic)
        out = capsys.readouterr()
        return subprocess.CompletedProcess([name, *args], code, out.out, out.err)
    return run


@pytest.mark.slow
def test_methods_bench_times_each_thread_count_and_best_vs_best(script):
    # --repeats/--steps must reach bench_methods, not be swallowed by bench.py's own options of that name
    out = script("bench", "--methods", "--only", "toys", "--repeats", "2", "--steps", "3", "--threads", "1,2")
    assert out.returncode == 0, out.stderr
    for players in ("stackelberg_toy", "microbatch_toy"):
        for t in (1, 2):
            assert f"{players}" in out.stdout and f"2 repeats x 3 steps, torch threads {t}" in out.stdout
    assert out.stdout.count("each at its faster thread count of [1, 2]:") == 2
    rows = [line.split() for line in out.stdout.splitlines() if line.startswith("stackelberg I=8 stack")]
    assert len(rows) == 3  # one per thread count, one best vs best
    assert all(float(r[3]) > 0 for r in rows)


def test_bad_thread_count_is_one_clear_error():
    out = bench("--methods", "--threads", "1,x")
    assert out.returncode == 2
    assert "thread counts are whole numbers >= 1 such as 1 or 1,2, got '1,x'" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.slow
def test_the_gpu_check_runs_its_cpu_checks_without_cuda(tmp_path, script):
    if torch.cuda.is_available():
        pytest.skip("on a GPU the check runs its GPU cases (minutes)")
    proc = script("gpu_check", "--out", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[0].startswith("no CUDA device:")
    table = (tmp_path / "gpu_check.md").read_text()
    for name in ("gan", "fargan", "aw", "stackelberg", "microbatch", "sgan"):
        assert f"| steps | {name} amp=off compile=false | ok |" in table
    assert "| resume | fargan stop 3 + resume to 6 == straight 6 | ok |" in table
    assert "ganzoo eval from a cpu checkpoint | ok" in table and " 0 failed" in table
    assert json.loads((tmp_path / "gpu_check.json").read_text())["device"] == "cpu"


# ---------------------------------------------------------------- scripts/reproduce.py
sys.path.insert(0, str(ROOT / "scripts"))
import reproduce  # noqa: E402


def test_reproduce_verdicts_on_hand_values():
    assert reproduce.verdict([8, 8, 8, 7], [6, 8, 7, 6], higher=True) == (3, 0, "reproduced")
    assert reproduce.verdict([8, 8, 8, 8], [6, 8, 8, 8], higher=True) == (1, 0, "partly")  # mostly ties
    assert reproduce.verdict([8, 8, 1, 1], [6, 6, 8, 8], higher=True) == (2, 2, "not reproduced")  # mean worse
    assert reproduce.verdict([8, 8, 7, 1], [6, 6, 8, 1], higher=True) == (2, 1, "partly")
    assert reproduce.verdict([2, 2, 2], [1, 3, 3], higher=True) == (1, 2, "not reproduced")
    assert reproduce.verdict([0.1, 0.2], [0.3, 0.4], higher=False) == (2, 0, "reproduced")  # lower is better
    assert reproduce.verdict([5, 5], [5, 5], higher=True) == (0, 0, "not reproduced")  # a tie is no win


def test_reproduce_lists_both_arms_of_every_claim_and_shares_a_baseline():
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "reproduce.py"), "--list", "--seeds", "3"],
                         capture_output=True, text=True, timeout=60)
    lines = out.stdout.splitlines()
    assert out.returncode == 0 and len(lines) == 2 * len(reproduce.CLAIMS)
    assert all(line.startswith("ganzoo train -m ") and "seed=0,1,2" in line for line in lines
               if "fashion_mnist" not in line)
    assert "reproduce/sgan_ring/baseline" in lines[-1]  # sgan_ring_v1's baseline is sgan_ring's runs
    bad = subprocess.run([sys.executable, str(ROOT / "scripts" / "reproduce.py"), "--only", "nope"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "no claim matches --only nope" in bad.stderr



def test_reproduce_deals_an_arms_unfinished_seeds_over_the_job_slots(tmp_path):
    claim = next(c for c in reproduce.CLAIMS if c.id == "microbatch_toy")
    assert [(p[2], p[3]) for p in reproduce.parts(claim, "method", list(range(5)), tmp_path, 2)] == \
        [([0, 2, 4], 0), ([1, 3], 1)]
    done = tmp_path / "microbatch_toy" / "method" / "seed_2"  # a finished job is not run again
    done.mkdir(parents=True)
    (done / "status.json").write_text(json.dumps({"status": "done", "step": 5}))
    (done / "metrics.jsonl").write_text(json.dumps({"step": 5, "modes_covered": 3}) + "\n")
    assert [p[2] for p in reproduce.parts(claim, "method", list(range(5)), tmp_path, 2)] == [[0, 3], [1, 4]]
    assert [p[2] for p in reproduce.parts(claim, "method", [2, 3], tmp_path, 4)] == [[3]]  # no empty part
    assert reproduce.parts(claim, "method", [2], tmp_path, 2) == []

@pytest.mark.slow
def test_reproduce_runs_a_claim_and_resumes_without_rerunning(tmp_path):
    args = [sys.executable, str(ROOT / "scripts" / "reproduce.py"), "--only", "fargan_ring", "--seeds", "1",
            "--steps", "5", "--out", str(tmp_path)]
    first = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    assert "| **fargan_ring**" in first.stdout and "| modes_covered |" in first.stdout
    records = json.loads((tmp_path / "claims.json").read_text())
    assert [r["seeds"] for r in records] == [[0], [0]]
    for arm in ("method", "baseline"):
        for seed in (0,):
            status = json.loads((tmp_path / "fargan_ring" / arm / f"seed_{seed}" / "status.json").read_text())
            assert (status["status"], status["step"]) == ("done", 5)
        assert (tmp_path / "fargan_ring" / arm / "report.md").is_file()
    log = (tmp_path / "fargan_ring" / "method.log").read_text()
    again = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and again.stdout == first.stdout
    assert (tmp_path / "fargan_ring" / "method.log").read_text() == log  # nothing ran a second time
