"""The benchmark scripts still run and hand their options through (they time, they assert no speed)."""
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "scripts" / "bench.py"


def bench(*args):
    return subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_methods_bench_times_each_thread_count_and_best_vs_best():
    # --repeats/--steps must reach bench_methods, not be swallowed by bench.py's own options of that name
    out = bench("--methods", "--only", "toys", "--repeats", "2", "--steps", "3", "--threads", "1,2")
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
