"""A plain (non-editable) wheel carries the config tree: `ganzoo train` works from any folder."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def test_wheel_installed_apart_from_the_source_runs_from_a_temp_dir(tmp_path):
    dist = tmp_path / "dist"
    # built from a copy without build/: setuptools reuses a stale build/lib, which would hide a package
    # missing from pyproject's list (and ship modules since deleted)
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        "build", "dist", ".git", "*.egg-info", "__pycache__", ".pytest_cache", "outputs", "multirun"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation",
                    "-w", str(dist), "-q"], check=True, capture_output=True, text=True, cwd=tmp_path)
    wheels = list(dist.glob("ganzoo-*.whl"))
    assert len(wheels) == 1
    import zipfile
    names = zipfile.ZipFile(wheels[0]).namelist()
    assert {"ganzoo/conf/train.yaml", "ganzoo/conf/dataset/cifar10.yaml", "ganzoo/conf/hparams_search/fargan_ring.yaml",
            "ganzoo/apps/train.py"} <= set(names)
    # every module and config file of the source tree: a package left out of pyproject's list installs
    # without complaint and fails only when a run imports it
    sources = {f"ganzoo/{p.relative_to(ROOT / 'ganzoo').as_posix()}" for p in (ROOT / "ganzoo").rglob("*.py")
               if "__pycache__" not in p.parts}
    sources |= {f"ganzoo/conf/{p.relative_to(ROOT / 'conf').as_posix()}" for p in (ROOT / "conf").rglob("*.yaml")}
    assert not sources - set(names), sorted(sources - set(names))[:5]

    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target), "-q",
                    str(wheels[0])], check=True, capture_output=True, text=True, cwd=tmp_path)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}
    where = subprocess.run([sys.executable, "-c", "import ganzoo; print(ganzoo.__file__)"], env=env,
                           cwd=work, capture_output=True, text=True, check=True).stdout.strip()
    assert where.startswith(str(target)), where  # the wheel's copy, not the source tree's
    proc = subprocess.run([str(target / "bin" / "ganzoo"), "train", "steps=20", "batch_size=32",
                           "eval_every=0", "sample_every=0", "metrics.num_samples=200", "device=cpu"],
                          env=env, cwd=work, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    runs = list((work / "outputs" / "train").iterdir())
    assert len(runs) == 1 and (runs[0] / "metrics.jsonl").is_file()
    assert "final metrics: modes_covered=" in proc.stdout
