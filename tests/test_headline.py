"""The commands our users are promised, typed as they are: an image dataset with no arch=, the
headline `ganzoo train method=fargan dataset=cifar10` with and without its files, and the
papers' sweeps with the default batch."""
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from conftest import ganzoo_here, run_ganzoo
from ganzoo.config import compose_train, is_image
from ganzoo.errors import DataError
from ganzoo.train import train

CONF = Path(__file__).resolve().parents[1] / "conf" / "dataset"
IMAGE_DATASETS = sorted(p.stem for p in CONF.glob("*.yaml") if "schema/dataset/image" in p.read_text())


def test_there_are_image_datasets_to_check():
    assert {"mnist", "fashion_mnist", "stacked_fashion_mnist", "cifar10", "cifar100", "stl10", "celeba", "celeba32", "tiny_imagenet",
            "imagenet", "lsun_bedroom", "image_folder"} == set(IMAGE_DATASETS)


@pytest.mark.parametrize("name", IMAGE_DATASETS)
def test_an_image_dataset_without_arch_gets_dcgan_sized_to_it(name):
    cfg = compose_train(f"dataset={name}")  # validated: dcgan supports its size and channels
    assert is_image(cfg.dataset) and cfg.arch.name == "dcgan"
    # a command-line arch still wins
    assert compose_train(f"dataset={name}", "arch=stackelberg_mlp_mnist").arch.name == "stackelberg_mlp_mnist"


def test_an_experiments_arch_wins_and_2d_data_keep_the_default_jobs_net():
    assert compose_train("experiment=fargan_cifar10_resnet").arch.name == "fargan_resnet32"
    assert compose_train().arch.name == "fargan_toy"  # 2-D data keep the default job's 2-D net (conf/train.yaml)


def test_the_headline_command_without_files_says_what_to_fetch_and_writes_nothing(tmp_path):
    env = {"HOME": str(tmp_path), "GANZOO_DATA": str(tmp_path / "data")}
    proc = run_ganzoo("train", "method=fargan", "dataset=cifar10", cwd=tmp_path, check=False, env=env)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert f"{tmp_path}/data/cifar10/cifar-10-batches-py/data_batch_1" in lines[0]
    assert "dataset.root=" in lines[0] and "dataset.download=true" in lines[0]
    assert sorted(os.listdir(tmp_path)) == []


def tiny_cifar10(root: Path, per_file: int = 20) -> Path:
    """CIFAR-10 in torchvision's cifar-10-batches-py layout (pickled dicts, rows of 3072 uint8,
    channel-major), with `per_file` random images per file instead of 10,000."""
    rng = np.random.default_rng(0)
    base = root / "cifar-10-batches-py"
    base.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {"batch_label": name, "labels": rng.integers(0, 10, per_file).tolist(),
                 "data": rng.integers(0, 256, (per_file, 3072), dtype=np.uint8),
                 "filenames": [f"{name}_{i}.png" for i in range(per_file)]}
        (base / name).write_bytes(pickle.dumps(batch))
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    (base / "batches.meta").write_bytes(pickle.dumps({"label_names": names, "num_cases_per_batch": per_file,
                                                      "num_vis": 3072}))
    return root


def without_md5(monkeypatch):
    """torchvision checks every CIFAR file's md5 against the real release: the tiny copy passes only with
    that check turned off, here in the test's process, never in ganzoo."""
    import torchvision.datasets.cifar as cifar
    monkeypatch.setattr(cifar, "check_integrity", lambda *a, **k: True)
    monkeypatch.setattr(cifar.CIFAR10, "_check_integrity", lambda self: True)


def test_torchvisions_md5_check_refuses_the_tiny_copy(tmp_path):
    """Why the test patches the check: without it the tiny files are refused in one line."""
    from ganzoo.data import build_data
    cfg = compose_train("dataset=cifar10", f"dataset.root={tiny_cifar10(tmp_path)}")
    with pytest.raises(DataError, match="could not read"):
        build_data(cfg.dataset)


@pytest.mark.slow
def test_the_headline_command_trains_on_a_cifar10_folder(tmp_path, monkeypatch):
    root = tiny_cifar10(tmp_path / "cifar")
    without_md5(monkeypatch)
    # steps and metrics.num_samples cut to a test's budget: 10,000 samples (an image run's default)
    # took longer to draw and classify than the rest of the run. In this process (the installed
    # command's own start is tested in test_cli_command.py): a process start costs ~5 s of CPU
    proc = ganzoo_here("train", "method=fargan", "dataset=cifar10", f"dataset.root={root}", "metrics.inception=false",
                       "steps=2", "metrics.num_samples=500", cwd=tmp_path, env={"HOME": str(tmp_path)})
    (run,) = (tmp_path / "outputs" / "train").iterdir()
    start = next(line for line in (run / "train.log").read_text().splitlines() if "arch=" in line)
    assert "fargan on cifar10 3x32x32, arch=dcgan (G 1.07M / D 0.66M parameters)" in start
    assert "another net: arch=<name>" in start and start in proc.stdout
    assert json.loads((run / "status.json").read_text())["status"] == "done"
    record = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["step"] == 2 and record["cfid"] > 0 and record["protocol"]["classifier"]["num_real"] == 100
    assert (run / "ckpt" / "last.pt").is_file() and (run / "samples" / "samples_00000002.png").is_file()
    assert yaml.safe_load((run / ".hydra" / "config.yaml").read_text())["arch"]["name"] == "dcgan"


@pytest.mark.slow
def test_the_headline_command_with_budget_smoke_needs_no_files(tmp_path):
    ganzoo_here("train", "method=fargan", "dataset=cifar10", "budget=smoke", cwd=tmp_path, env={"HOME": str(tmp_path)})
    (run,) = (tmp_path / "outputs" / "train").iterdir()
    assert json.loads((run / "status.json").read_text())["status"] == "done"


def _sweep_jobs(root: Path):
    (sweep,) = (root / "outputs" / "multirun").iterdir()
    jobs = {}
    for job in sorted(p for p in sweep.iterdir() if p.is_dir()):
        cfg = yaml.safe_load((job / ".hydra" / "config.yaml").read_text())
        jobs[job.name] = (cfg, json.loads((job / "status.json").read_text())["status"])
    return jobs


@pytest.mark.slow
def test_every_image_dataset_runs_a_smoke_job_without_arch(tmp_path, monkeypatch):
    """`ganzoo train dataset=<name> budget=smoke` for each: dcgan at the dataset's shape builds and trains
    on random images of it, needing nothing in the home folder and writing nothing there. Here, one
    composition each (a run of the command costs three: ganzoo's check, Hydra's and the run); the
    command's own path is the tests' above and below."""
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in IMAGE_DATASETS:
        cfg = compose_train(f"dataset={name}", "budget=smoke", "sample_every=null")
        assert cfg.arch.name == "dcgan" and cfg.synthetic_images == 512
        train(cfg, tmp_path / name)
        assert json.loads((tmp_path / name / "status.json").read_text())["status"] == "done", name
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(IMAGE_DATASETS)  # nothing else written


QUICK = ["steps=3", "eval_every=0", "ckpt_every=0", "sample_every=null", "log_every=1", "metrics.num_samples=200"]


@pytest.mark.slow
def test_the_microbatch_k_sweep_runs_as_typed_with_the_default_batch(tmp_path):
    ganzoo_here("train", "-m", "method=microbatch", "method.K=1,2,5,10", "seed=0,1,2", *QUICK, cwd=tmp_path,
               timeout=600)
    jobs = _sweep_jobs(tmp_path)
    assert len(jobs) == 12 and {status for _, status in jobs.values()} == {"done"}
    assert sorted({(cfg["method"]["K"], cfg["batch_size"]) for cfg, _ in jobs.values()}) == [
        (1, 256), (2, 256), (5, 256), (10, 256)]


@pytest.mark.slow
def test_a_number_for_alpha_sweeps_static_alphas(tmp_path):
    ganzoo_here("train", "-m", "method=microbatch", "method.alpha=0,0.25,0.5,1.0", *QUICK, cwd=tmp_path)
    jobs = _sweep_jobs(tmp_path)
    assert {status for _, status in jobs.values()} == {"done"}
    assert sorted(cfg["method"]["alpha"] for cfg, _ in jobs.values()) == [0, 0.25, 0.5, 1.0]
    for name in jobs:
        state = torch.load(tmp_path / "outputs" / "multirun" / next((tmp_path / "outputs" / "multirun").iterdir()).name / name / "ckpt" /
                           "last.pt", weights_only=True)
        assert "beta" not in state["method"]  # static: nothing learned


@pytest.mark.slow
def test_the_fargan_f_by_n0_sweep_runs(tmp_path):
    ganzoo_here("train", "-m", "method=fargan", "method.f=1,8", "method.N0=0,32", *QUICK, cwd=tmp_path)
    jobs = _sweep_jobs(tmp_path)
    assert len(jobs) == 4 and {status for _, status in jobs.values()} == {"done"}


@pytest.mark.parametrize("name", IMAGE_DATASETS)
def test_the_classifier_command_composes_for_every_image_dataset(name):
    """The dataset's net choice is a training run's: `ganzoo classifier dataset=<name>` ignores it."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from ganzoo.config import load_classifier_config
    from ganzoo.errors import ConfigError

    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="ganzoo.conf", version_base="1.3"):
        raw = compose("classifier", overrides=[f"dataset={name}"])
    dataset = compose_train(f"dataset={name}").dataset
    if dataset.num_classes >= 2:
        assert load_classifier_config(raw).dataset.name == dataset.name
    else:
        with pytest.raises(ConfigError, match="has no class labels"):
            load_classifier_config(raw)
