"""The benchmark scripts still run and hand their options through (they time, they assert no speed),
and the GPU check runs its CPU part."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ganzoo.methods.schemas import METHODS

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
    for name in METHODS:
        assert f"| steps | {name} amp=off compile=false | ok |" in table
    assert "| resume | fargan stop 3 + resume to 6 == straight 6 | ok |" in table
    assert "ganzoo eval from a cpu checkpoint | ok" in table and " 0 failed" in table
    assert json.loads((tmp_path / "gpu_check.json").read_text())["device"] == "cpu"


# ---------------------------------------------------------------- scripts/reproduce.py
sys.path.insert(0, str(ROOT / "scripts"))
import reproduce  # noqa: E402


def _fake_arm(out, claim_id, arm, finals, step=5):
    for seed, final in enumerate(finals):
        job = out / claim_id / arm / f"seed_{seed}"
        job.mkdir(parents=True)
        (job / "status.json").write_text(json.dumps({"status": "done", "step": step}))
        (job / "metrics.jsonl").write_text(json.dumps({"step": step, **final}) + "\n")


def test_reproduce_table_gives_verdicts_only_at_the_claims_budget(tmp_path, monkeypatch):
    claim = next(c for c in reproduce.CLAIMS if c.id == "stackelberg_toy")
    _fake_arm(tmp_path, "stackelberg_toy", "method", [{"modes_covered": 7, "high_quality": 0.7}] * 10)
    _fake_arm(tmp_path, "stackelberg_toy", "baseline", [{"modes_covered": 3, "high_quality": 0.2}] * 10)
    md, records = reproduce.table([claim], list(range(10)), tmp_path)
    assert "*inconclusive* when p >= 0.05" in md  # the rule is stated above the table
    first = records[0]
    assert (first["verdict"], first["better"], first["pipeline_check"]) == ("reproduced", 10, False)
    assert first["p"] == pytest.approx(2 / 1024)
    # fewer seeds than the claim's 10: a pipeline check, no verdict in any row
    md, records = reproduce.table([claim], list(range(3)), tmp_path)
    assert all(r["verdict"] in ("pipeline check, not a result", "method only") for r in records)
    assert "**pipeline check, not a result** (5000 steps, 3 seeds)" in md and "| reproduced |" not in md
    # fewer steps than the claim's: the same
    monkeypatch.setattr(reproduce, "STEPS", [20])
    md, records = reproduce.table([claim], list(range(10)), tmp_path)
    assert records[0]["verdict"] == "pipeline check, not a result"


def test_reproduce_says_both_arms_failed_when_both_collapse(tmp_path):
    claim = next(c for c in reproduce.CLAIMS if c.id == "microbatch_toy")
    _fake_arm(tmp_path, "microbatch_toy", "method", [{"modes_covered": 1, "high_quality": 0.01, "mmd": 1.4}] * 10)
    _fake_arm(tmp_path, "microbatch_toy", "baseline", [{"modes_covered": 0, "high_quality": 0.0, "mmd": 1.6}] * 10)
    _, records = reproduce.table([claim], list(range(10)), tmp_path)
    assert records[0]["verdict"] == "both arms failed" and records[0]["better"] == 10


def test_reproduce_lists_both_arms_of_every_claim_and_shares_a_baseline():
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "reproduce.py"), "--list", "--seeds", "3"],
                         capture_output=True, text=True, timeout=60)
    lines = out.stdout.splitlines()
    assert out.returncode == 0 and len(lines) == 2 * len(reproduce.CLAIMS)
    assert all(line.startswith("ganzoo train -m ") and "seed=0,1,2" in line for line in lines
               if "fashion_mnist" not in line)
    v1 = [line for line in lines if "method.opponent=live" in line]
    assert len(v1) == 1 and "reproduce/sgan_ring_v1/method" in v1[0]
    assert "reproduce/sgan_ring/baseline" in lines[lines.index(v1[0]) + 1]  # sgan_ring's runs
    wide = [line for line in lines if "arch=stackelberg_toy_wide" in line]
    assert len(wide) == 1 and "reproduce/stackelberg_toy_wide/baseline" in wide[0]
    assert "reproduce/stackelberg_toy/method" in lines[lines.index(wide[0]) - 1]  # the I=8 runs, shared
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
    assert [r["seeds"] for r in records] == [[0]] * 3  # modes_covered, high_quality, mmd
    for arm in ("method", "baseline"):
        for seed in (0,):
            status = json.loads((tmp_path / "fargan_ring" / arm / f"seed_{seed}" / "status.json").read_text())
            assert (status["status"], status["step"]) == ("done", 5)
        assert (tmp_path / "fargan_ring" / arm / "report.md").is_file()
    log = (tmp_path / "fargan_ring" / "method.log").read_text()
    again = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and again.stdout == first.stdout
    assert (tmp_path / "fargan_ring" / "method.log").read_text() == log  # nothing ran a second time


# ---------------------------------------------------------------- scripts/microbatch_alpha.py
import microbatch_alpha  # noqa: E402


def test_microbatch_alpha_summary_compares_alpha_with_its_data_blind_course(tmp_path):
    """A run whose alpha follows sigmoid(beta0 + lr t) exactly has no gap; one whose alpha stalls has one."""
    from torch.utils.tensorboard import SummaryWriter
    steps = 100
    for reading, stall in (("additive", False), ("mix", True)):
        job = microbatch_alpha.folder(tmp_path, reading, -1.8) / "seed_0"
        job.mkdir(parents=True)
        writer = SummaryWriter(str(job))
        for t in range(0, steps + 1, 10):
            beta = -1.8 + microbatch_alpha.LR * (min(t, 50) if stall else t)
            writer.add_scalar("microbatch/alpha", microbatch_alpha.sigmoid(beta), t)
            writer.add_scalar("microbatch/own_vs_other_acc", 0.5 + t / 1000, t)
        writer.close()
        (job / "status.json").write_text(json.dumps({"status": "done", "step": steps}))
        (job / "metrics.jsonl").write_text(json.dumps({"step": steps, "modes_covered": 2, "high_quality": 0.1,
                                                       "mmd": 1.0}) + "\n")
    md = microbatch_alpha.summary(tmp_path, [0], steps)
    additive = [r for r in md.splitlines() if r.startswith("| additive | -1.8")][0].split(" | ")
    mix = [r for r in md.splitlines() if r.startswith("| mix | -1.8")][0].split(" | ")
    assert float(additive[5].split(" ")[0]) < 1e-6          # follows the data-blind course
    assert float(mix[5].split(" ")[0]) > 1e-3               # stalled halfway: strays from it
    assert additive[6].startswith("0.6") and additive[7].startswith("2 ")  # accuracy at the end, modes
    assert "| additive | -4 | 0 | not run |" in md
    assert microbatch_alpha.command(tmp_path, "mix", 0.0, [0, 1], 40)[4:6] == ["method.reading=mix",
                                                                               "method.alpha_init=0.5"]


def test_bench_input_prints_each_input_path_against_a_steps_needs(capsys):
    import bench_input
    assert bench_input.main(["--files", "32", "--batch", "8", "--draws", "1", "--repeats", "1", "--workers", "0"]) == 0
    out = capsys.readouterr().out
    assert "| image folder (PNG), DataLoader, workers 0 |" in out and "| in memory (a tensor on the device) |" in out
    assert "one training step of arch=dcgan consumes" in out and "| training step (arch=dcgan, n_dis 1) |" in out


@pytest.mark.slow
@pytest.mark.xdist_group("distributed_ranks")  # beside the other torchrun tests, not at the same time as them
def test_bench_distributed_times_ranks_against_one_process_at_a_tiny_size(script):
    """2 gloo ranks (torchrun) against one process, and the bytes a method all-reduces per step."""
    out = script("bench", "--distributed", "--repeats", "1", "--steps", "2", "--archs", "mlp", "--traffic", "aw")
    assert out.returncode == 0, out.stderr
    row = next(line for line in out.stdout.splitlines() if line.split()[:1] == ["mlp"])
    assert len(row.split()) == 6 and all(float(x) > 0 for x in row.split()[1:])
    kb = next(line for line in out.stdout.splitlines() if line.split()[:1] == ["aw"]).split()
    assert kb[-1] == "kB" and float(kb[1]) > 0  # aw all-reduces its two gradients and scores
    with pytest.raises(SystemExit):  # argparse's one line and exit 2
        script("bench", "--distributed", "--archs", "nope")


def test_bench_writes_its_table_into_the_docs_as_one_section(script, tmp_path):
    """--write: the printed table lands in the file as the benchmark's section, with the command, machine and
    date; a rerun replaces that section and leaves the rest of the file as it was."""
    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text("# Benchmarks\n\nprose kept as it is\n")
    args = ["--input", "--files", "32", "--batch", "8", "--draws", "1", "--repeats", "1", "--workers", "0"]
    for _ in range(2):
        out = script("bench", *args, "--write", str(doc))
        assert out.returncode == 0, out.stderr
    text = doc.read_text()
    assert text.startswith("# Benchmarks\n\nprose kept as it is\n")
    assert text.count("<!-- bench:input -->") == 1 and text.count("<!-- /bench:input -->") == 1
    assert "`python scripts/bench.py --input --files 32" in text and "CPU cores, torch " in text
    assert "| in memory (a tensor on the device) |" in text  # what it printed
    import benchdoc  # another benchmark's section is added beside it, not over it
    benchdoc.write_section(doc, "images", "<!-- bench:images -->\nx\n<!-- /bench:images -->\n")
    assert doc.read_text().count("<!-- bench:") == 2 and "<!-- bench:input -->" in doc.read_text()


@pytest.mark.slow
def test_the_loop_bench_checks_the_same_computation_and_times_it(script):
    """bench.py times a named config (the plain loop's: gan on the 3 x 128 MLPs), whatever the default job is;
    its weights after N steps equal the plain loop's bit for bit (it crashed when the default changed)."""
    out = script("bench", "--repeats", "1", "--steps", "10", "--base-steps", "5", "--batches", "32", "--threads", "1")
    assert out.returncode == 0, out.stderr
    assert "max |G,D weight diff| = 0  (bit-identical)" in out.stdout
    assert any(line.split()[:1] == ["32"] for line in out.stdout.splitlines())


@pytest.mark.slow
def test_bench_images_runs_at_a_tiny_size(script):
    out = script("bench_images", "--repeats", "1", "--steps", "1", "--batch", "4", "--no-compile", "--no-fid",
                 "--threads", "1")
    assert out.returncode == 0, out.stderr
    assert "dcgan" in out.stdout and "fargan_resnet32" in out.stdout and "images/s" in out.stdout


def test_summarize_groups_a_sweeps_jobs_by_their_overrides(tmp_path, script):
    for i, (k, seed, v) in enumerate([(1, 0, 2.0), (1, 1, 4.0), (8, 0, 7.0)]):
        job = tmp_path / f"{i}_job"
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(f"- method.K={k}\n- seed={seed}\n")
        (job / "metrics.jsonl").write_text(json.dumps({"step": 5, "modes_covered": v}) + "\n")
    out = script("summarize", str(tmp_path), "--metrics", "modes_covered")
    assert out.returncode == 0, out.stderr
    assert "| method.K=1 | 2 | 3 ± 1.4 (2, 4) |" in out.stdout and "| method.K=8 | 1 | 7 ± 0 (7) |" in out.stdout


@pytest.mark.slow
def test_gpu_wheels_builds_what_a_gpu_machine_without_a_registry_lacks(tmp_path):
    """scripts/gpu_wheels.sh: ganzoo's wheel (with its config tree) and the pure-Python dependencies a
    machine with torch but no package registry needs for scripts/gpu_check.py."""
    import zipfile
    out = tmp_path / "whl"
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_wheels.sh"), str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    names = sorted(p.name.split("-")[0].lower() for p in out.glob("*.whl"))
    assert names == ["antlr4_python3_runtime", "ganzoo", "hydra_core", "omegaconf", "torch_fidelity"]
    assert all(p.name.endswith("py3-none-any.whl") for p in out.glob("*.whl"))
    with zipfile.ZipFile(next(out.glob("ganzoo-*.whl"))) as z:
        assert "ganzoo/conf/train.yaml" in z.namelist()


def test_bench_augment_prints_every_setting_against_none(script):
    out = script("bench", "--augment", "--repeats", "1", "--steps", "1").stdout
    for name in ("| none |", "| diffaugment (color, translation, cutout) |", "| ada p=0.5 (bgc) |", "| bCR (10, 10) |"):
        assert name in out
