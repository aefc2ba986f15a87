"""Paper experiments (conf/experiment/*.yaml): each is a valid job that pins the paper's setting and cites
the paper's numbers; budget=smoke shrinks any of them to seconds, and each runs a step of it here."""
import importlib.resources
import json
import re
from pathlib import Path

import pytest
import torch
import yaml

from conftest import ganzoo_here, run_ganzoo
from ganzoo.config import ImageData, compose_train, load_train_config
from ganzoo.data import build_data
from ganzoo.methods.schemas import METHODS
from ganzoo.report import report_command
from ganzoo.train import train

EXPERIMENT_DIR = Path(str(importlib.resources.files("ganzoo.conf"))) / "experiment"
EXPERIMENTS = sorted(p.stem for p in EXPERIMENT_DIR.glob("*.yaml"))
README = Path(__file__).resolve().parent.parent / "README.md"
PINNED_GROUPS = {"dataset", "arch", "loss", "method", "optim"}
PINNED_KEYS = {"batch_size", "steps", "n_dis", "optim", "paper"}
METRICS = {"is_mean", "fid", "kid", "cfid", "modes_covered", "high_quality", "classes_covered", "class_kl"}


def read(name):
    text = (EXPERIMENT_DIR / f"{name}.yaml").read_text()
    comments = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    return text, comments, yaml.safe_load(text)


def test_the_smoke_chunks_and_the_sweep_are_every_experiment_once():
    assert sorted(e for chunk in CHUNKS + [SWEPT] for e in chunk) == EXPERIMENTS


def test_there_is_an_experiment_per_method():
    assert len(EXPERIMENTS) >= 30
    for method in (name for name, record in METHODS.items() if record.paper):
        assert any(e.startswith(method + "_") for e in EXPERIMENTS), method
    # the names the issue asked for
    assert {"fargan_cifar10_resnet", "stackelberg_fashion_mnist", "microbatch_toy", "aw_sngan_cifar10",
            "sgan_toy"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_pins_the_setting_and_cites_the_paper(name):
    text, comments, body = read(name)
    assert text.startswith("# @package _global_\n")
    chosen = {next(iter(d)).replace("override /", "") for d in body["defaults"]}
    assert chosen == PINNED_GROUPS, f"{name} must choose every group: {sorted(chosen)}"
    assert PINNED_KEYS <= set(body), sorted(PINNED_KEYS - set(body))
    assert name.split("_")[0] == next(d for d in body["defaults"] if "override /method" in d)["override /method"]
    assert "Paper reports:" in comments and "From the paper" in comments
    paper = METHODS[name.split("_")[0]].paper  # its short name, a whole word: "aw-SN-GAN" or "NSGAN" does not name aw or SGAN
    assert re.search(rf"(?<![\w-]){re.escape(paper)}(?![\w-])", comments), f"{name}'s comment does not name {paper}"
    assert body["paper"]["source"].strip()

    # every number the config claims the paper reports is written in its comment, as the paper prints it
    reports = body["paper"]["reports"]
    assert set(reports) <= METRICS
    printed = {float(x) for x in re.findall(r"\d+\.\d+", comments.split("Paper reports:")[1].split("\n# From")[0])}
    for metric, value in reports.items():
        assert float(value) in printed, f"{name}: paper.reports.{metric}={value} is not in its comment"

    c = compose_train(f"experiment={name}")  # validates: a wrong key or value fails here
    assert c.method.name == name.split("_")[0]
    assert c.paper.source == body["paper"]["source"] and dict(c.paper.reports) == reports
    assert c.steps == body["steps"] and c.batch_size == body["batch_size"] and c.synthetic_images == 0


def test_readme_lists_every_experiment():
    readme = README.read_text()
    missing = [e for e in EXPERIMENTS if f"`{e}`" not in readme]
    assert not missing, f"README's experiment list lacks {missing}"


def test_paper_numbers_as_printed():
    """The cited numbers, checked against the paper text once more by hand."""
    expect = {"aw_sngan_cifar10": {"is_mean": 8.53, "fid": 12.32}, "aw_sngan_stl10": {"is_mean": 9.53, "fid": 36.41},
              "aw_sngan_cifar100": {"is_mean": 8.31, "fid": 19.08},
              "aw_sngan_cifar10_nonnorm": {"is_mean": 8.43, "fid": 12.65},
              "aw_sngan_stl10_nonnorm": {"is_mean": 9.61, "fid": 34.72},
              "aw_sngan_cifar100_nonnorm": {"is_mean": 8.30, "fid": 19.48},
              "stackelberg_cifar10": {"is_mean": 7.62, "fid": 26.76},
              "stackelberg_cifar10_small": {"is_mean": 7.02, "fid": 29.88},
              # FARGAN Table 2, the FAR column
              "fargan_cifar10_resnet": {"is_mean": 6.81, "fid": 17.82},
              "fargan_cifar10_resnet_wgan": {"is_mean": 6.83, "fid": 18.12},
              "fargan_cifar10_resnet_hinge": {"is_mean": 6.88, "fid": 16.99},
              "fargan_cifar10_resnet_lsgan": {"is_mean": 6.63, "fid": 19.97},
              "fargan_cifar10_conventional": {"is_mean": 7.63, "fid": 12.80},
              "fargan_cifar100_resnet": {"is_mean": 7.03, "fid": 21.95},
              "fargan_cifar100_conventional": {"is_mean": 7.84, "fid": 17.69},
              "fargan_imagenet_resnet": {"is_mean": 11.44, "fid": 39.69},
              # aw Tables 4 and 6 (conditional SN-GAN and BigGAN), Tables 1-3 and 5 (AutoGAN)
              "aw_csngan_cifar10": {"is_mean": 9.03, "fid": 8.11}, "aw_csngan_cifar10_nonnorm": {"is_mean": 9.00, "fid": 8.03},
              "aw_csngan_cifar100": {"is_mean": 9.48, "fid": 14.42},
              "aw_csngan_cifar100_nonnorm": {"is_mean": 9.44, "fid": 14.00},
              "aw_biggan_cifar10": {"is_mean": 9.52, "fid": 7.03}, "aw_biggan_cifar10_nonnorm": {"is_mean": 9.50, "fid": 6.89},
              "aw_biggan_cifar100": {"is_mean": 11.22, "fid": 10.23},
              "aw_biggan_cifar100_nonnorm": {"is_mean": 11.26, "fid": 10.25},
              "aw_autogan_cifar10": {"is_mean": 9.01, "fid": 11.82}, "aw_autogan_cifar10_nonnorm": {"is_mean": 8.98, "fid": 13.17},
              "aw_autogan_stl10": {"is_mean": 9.41, "fid": 26.32}, "aw_autogan_stl10_nonnorm": {"is_mean": 9.59, "fid": 27.97},
              "aw_autogan_cifar100": {"is_mean": 8.90, "fid": 19.00},
              "aw_autogan_cifar100_nonnorm": {"is_mean": 8.72, "fid": 19.89}}
    for name in EXPERIMENTS:
        assert read(name)[2]["paper"]["reports"] == expect.get(name, {}), name


def test_smoke_budget_keeps_the_choices_and_shrinks_the_cost():
    full = compose_train("experiment=fargan_cifar10_resnet")
    smoke = compose_train("experiment=fargan_cifar10_resnet", "budget=smoke")
    assert (smoke.arch, smoke.loss, smoke.optim, smoke.dataset) == (full.arch, full.loss, full.optim, full.dataset)
    assert (full.method.f, full.method.N0, full.batch_size, full.steps) == (8, 32, 64, 500_000)
    assert (smoke.method.f, smoke.method.N0, smoke.batch_size, smoke.steps) == (2, 2, 4, 2)
    assert smoke.synthetic_images == 512 and not smoke.metrics.inception and not smoke.metrics.classifier
    # microbatch gets its own batch (two samples per discriminator at K=8); other methods keep their knobs
    assert compose_train("experiment=microbatch_cifar10_large", "budget=smoke").batch_size == 16
    micro = compose_train("experiment=microbatch_toy", "budget=smoke")
    assert (micro.method.K, micro.batch_size % micro.method.K) == (8, 0)
    # a command-line value still wins over the budget
    assert compose_train("experiment=microbatch_toy", "budget=smoke", "steps=5").steps == 5


def test_synthetic_images_need_no_files_and_keep_the_shape(tmp_path):
    cfg = ImageData(name="cifar10", root=str(tmp_path / "nothing here"), channels=3, resolution=32, num_classes=10)
    a, b = build_data(cfg, synthetic=64), build_data(cfg, synthetic=64)
    x, y = a.images("train").x, a.images("train").y
    assert a.shape == (3, 32, 32) and x.shape == (64, 3, 32, 32) and x.dtype == torch.uint8
    assert torch.equal(x, b.images("train").x)  # seeded
    assert torch.bincount(y).tolist() == [7, 7, 7, 7, 6, 6, 6, 6, 6, 6]
    assert not torch.equal(x, a.images("test").x)
    assert a.name == "synthetic_cifar10" and a.fingerprint("train") != build_data(cfg, synthetic=128).fingerprint("train")


def test_synthetic_images_smaller_than_a_batch_is_refused():
    from ganzoo.errors import ConfigError
    from omegaconf import OmegaConf
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="ganzoo.conf", version_base="1.3"):
        raw = compose("train", overrides=["experiment=stackelberg_cifar10", "synthetic_images=10"])
    with pytest.raises(ConfigError, match="synthetic_images=10 must be 0 or at least batch_size=64"):
        load_train_config(OmegaConf.to_container(raw))


def test_a_mistyped_experiment_fails_at_once_with_the_closest_name(tmp_path):
    proc = run_ganzoo("train", "experiment=fargan_cifar10_resnt", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and not (tmp_path / "outputs").exists()
    assert "experiment=fargan_cifar10_resnt: no such option; did you mean experiment=fargan_cifar10_resnet?" \
        in proc.stderr


def test_a_baseline_must_drop_the_knobs_the_experiment_pinned():
    from ganzoo.errors import ConfigError
    with pytest.raises(ConfigError, match=r"unknown config key 'method.N': method=gan has no 'N' \(method=sgan has "
                                          r"it: add method=sgan\); if an experiment= config set it, drop it with "
                                          r"'~method.N'"):
        compose_train("experiment=sgan_fashion_mnist", "method=gan")
    assert compose_train("experiment=sgan_fashion_mnist", "method=gan", "~method.N").method.name == "gan"


# Every experiment builds its nets, loss and method and trains one step under budget=smoke. The two whose
# paper numbers the report must set beside ours run as one `ganzoo train -m 'experiment=glob([...])'` sweep
# with `ganzoo report`; the others run here, each from one composition (a sweep job costs three: ganzoo's
# check, Hydra's own check and the run, ~0.5 s of the ~1.5 s a light experiment takes). They are dealt
# into chunks that parallel test workers share: the 80M-parameter ImageNet net (about 20 s on its own)
# alone, the others round-robin. Together with the sweep they are every experiment, once.
PAPER_ROWS = {"aw_sngan_stl10": r"\| aw_sngan_stl10 \| is_mean \| 9\.53 \|",
              "stackelberg_cifar10": r"\| stackelberg_cifar10 \| fid \| 26\.76 \|"}
SWEPT = sorted(PAPER_ROWS)
HEAVY = ["fargan_imagenet_resnet"]
LIGHT = [e for e in EXPERIMENTS if e not in HEAVY + SWEPT]
CHUNKS = [HEAVY] + [LIGHT[i::5] for i in range(5)]
# One step, not the budget's two: a second one only repeats the first (the ImageNet net's alone was 12 s
# here). No pictures: nothing here looks at them (test_images_data and the headline tests do)
SMOKE = ["budget=smoke", "steps=1", "sample_every=null", "device=cpu"]


@pytest.mark.slow
@pytest.mark.parametrize("chunk", range(len(CHUNKS)))
def test_every_experiment_runs_under_the_smoke_budget(tmp_path, chunk):
    for name in CHUNKS[chunk]:
        cfg = compose_train(f"experiment={name}", *SMOKE)  # validated as `ganzoo train` validates it
        assert cfg.synthetic_images == 512 and cfg.steps == 1 and cfg.method.name == name.split("_")[0]
        train(cfg, tmp_path / name)
        status = json.loads((tmp_path / name / "status.json").read_text())
        assert (status["status"], status["step"]) == ("done", 1), name
        assert (tmp_path / name / "ckpt" / "last.pt").is_file()


@pytest.mark.slow
def test_a_sweep_of_experiments_runs_and_reports_the_papers_numbers(tmp_path):
    """The README's `ganzoo train -m 'experiment=glob(...)' budget=smoke`, on two experiments: every job
    finishes, and the report sets the paper's numbers beside the (meaningless, 1-step) scores."""
    ganzoo_here("train", "-m", f"experiment=glob([{','.join(SWEPT)}])", *SMOKE, "hydra.sweep.dir=sw", cwd=tmp_path)
    jobs = sorted(p for p in (tmp_path / "sw").iterdir() if p.is_dir())
    assert [p.name for p in jobs] == [f"{i}_experiment={name}" for i, name in enumerate(SWEPT)]
    for job in jobs:
        status = json.loads((job / "status.json").read_text())
        assert (status["status"], status["step"]) == ("done", 1), job.name
        assert (job / "ckpt" / "last.pt").is_file()
        config = yaml.safe_load((job / ".hydra" / "config.yaml").read_text())
        assert config["synthetic_images"] == 512 and config["steps"] == 1
    report_command([str(tmp_path / "sw")])  # `ganzoo report`, in this process
    md = (tmp_path / "sw" / "report.md").read_text()
    assert "## Against the paper" in md
    for row in PAPER_ROWS.values():
        assert re.search(row, md)
