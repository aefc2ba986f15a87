import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

# one torch thread for the nets the tests build in this process: they are tiny, and on 2 shared cores a
# second thread mostly waits (a 128x128 Linear on 32 rows: 17 us at 1 thread, ms at 2 under load). The
# commands the tests start keep torch's default: their image nets run ~1.8x faster on 2 threads (the
# 36-experiment smoke sweep: 195 s at 2 threads, 357 s at 1).
torch.set_num_threads(1)

# a tiny budget every end-to-end run starts from; tests add their own overrides
TINY = ["steps=40", "batch_size=64", "eval_every=20", "ckpt_every=20", "log_every=10",
        "sample_every=0", "metrics.num_samples=500", "device=cpu"]


def ganzoo_exe() -> str:
    exe = shutil.which("ganzoo")
    if exe is None:
        pytest.fail("the `ganzoo` command is not installed (pip install -e .[test])")
    return exe


def run_ganzoo(*args, cwd, check=True, env=None, timeout=300):
    proc = subprocess.run([ganzoo_exe(), *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"ganzoo {' '.join(map(str, args))} failed ({proc.returncode}):\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


def only_run_dir(root: Path) -> Path:
    runs = [p for p in (root / "outputs" / "train").iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


@pytest.fixture
def tiny():
    return list(TINY)


class Split:
    """A labelled split with ganzoo's image-data item shape: (uint8 C x H x W, int label)."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], int(self.y[i])
