"""Real image training on Fashion-MNIST (CPU, tiny budget) through the installed command, and the
offline classifier behind the class metrics."""
import json

import numpy as np
import pytest
import torch

from conftest import ganzoo_here, only_run_dir, run_ganzoo
from ganzoo.data.files import DEBIAN_FASHION_MNIST

# one worker runs the whole file: its module fixture trains the classifier once
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("images_run"),
              pytest.mark.skipif(not DEBIAN_FASHION_MNIST.is_dir(),
                                 reason="apt-get install dataset-fashion-mnist (CI installs it)")]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One classifier for the module, trained by the real command (about 20-40 s on 2 cores)."""
    root = tmp_path_factory.mktemp("ganzoo-cache")
    proc = run_ganzoo("classifier", "dataset=fashion_mnist", f"metrics.cache_dir={root}", "device=cpu", cwd=root)
    assert "fashion_mnist classifier: test accuracy" in proc.stdout
    return root


def test_classifier_reaches_the_accuracy_the_class_metrics_rely_on(cache):
    records = list((cache / "classifier").glob("fashion_mnist-*.json"))
    assert len(records) == 1
    info = json.loads(records[0].read_text())
    assert info["accuracy"] >= 0.88, info  # measured on the 10k test split
    # the command again, in this process (the fixture ran the installed one): a second start costs seconds
    again = ganzoo_here("classifier", "dataset=fashion_mnist", f"metrics.cache_dir={cache}", cwd=cache)
    assert f"{info['accuracy']:.4f}" in again.stdout  # cached: the same model, not retrained
    assert len(list((cache / "classifier").glob("*.pt"))) == 1


def test_short_fashion_mnist_run_writes_grids_metrics_and_checkpoints(tmp_path, cache):
    ganzoo_here("train", "dataset=fashion_mnist", "arch=dcgan", "arch.g_width=16", "arch.d_width=16",
               "metrics.inception=false", f"metrics.cache_dir={cache}", "metrics.num_samples=300",
               "steps=20", "batch_size=32", "eval_every=10", "sample_every=10", "ckpt_every=10",
               "log_every=5", "device=cpu", cwd=tmp_path)
    run = only_run_dir(tmp_path)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [10, 20]
    last = records[-1]
    for key in ("cfid", "ckid_mean", "ckid_std", "classes_covered", "class_kl"):
        assert isinstance(last[key], (int, float)), key
    assert 0 <= last["classes_covered"] <= 10 and last["cfid"] > 0
    assert len(last["class_hist"]) == 1 and sum(last["class_hist"][0]) == 300  # one generator
    protocol = last["protocol"]["classifier"]
    assert protocol["num_fake"] == 300 and protocol["num_real"] == 60000 and protocol["split"] == "train"
    assert protocol["accuracy"] >= 0.88 and len(protocol["weights_sha256"]) == 64
    assert (run / "ckpt" / "last.pt").is_file() and (run / "ckpt" / "best.pt").is_file()

    from PIL import Image
    grid = Image.open(run / "samples" / "samples_00000020.png")
    assert grid.size == (2 + 8 * 30, 2 + 8 * 30)  # 8 x 8 samples of 28 px with 2 px padding

    ganzoo_here("sample", f"run={run}", "n=12", "out=s.npz", "device=cpu", cwd=tmp_path)
    with np.load(tmp_path / "s.npz") as z:
        assert z["samples"].shape == (12, 1, 28, 28) and z["samples"].dtype == np.uint8
        assert (z["generator"] == 0).all()
    ganzoo_here("sample", f"run={run}", "n=16", "out=grid.png", cwd=tmp_path)
    assert Image.open(tmp_path / "grid.png").size == (2 + 4 * 30, 2 + 4 * 30)

    proc = ganzoo_here("eval", f"run={run}", "ckpt=best", "device=cpu", cwd=tmp_path)
    best_step = torch.load(run / "ckpt" / "best.pt", weights_only=True)["step"]
    assert f"step {best_step} (best, seed" in proc.stdout and "cfid=" in proc.stdout
    evaluated = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert evaluated["source"] == "eval" and evaluated["step"] == best_step
    same = next(r for r in records if r["step"] == best_step)
    assert evaluated["cfid"] == pytest.approx(same["cfid"], rel=1e-6)  # same seed, same checkpoint


def test_inception_without_weights_or_network_stops_in_seconds(tmp_path):
    proc = ganzoo_here("train", "dataset=fashion_mnist", "arch=dcgan", f"metrics.cache_dir={tmp_path}/c",
                       cwd=tmp_path, check=False, env={"TORCH_HOME": str(tmp_path / "torch-home")})
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "metrics.inception_weights=" in lines[0] and "metrics.inception=false" in lines[0]
    assert not (tmp_path / "outputs").exists()


def test_stackelberg_on_images_shows_and_scores_each_generator(tmp_path, cache):
    ganzoo_here("train", "method=stackelberg", "method.I=3", "dataset=fashion_mnist", "arch=dcgan",
               "arch.g_width=8", "arch.d_width=8", "metrics.inception=false", f"metrics.cache_dir={cache}",
               "metrics.num_samples=300", "steps=4", "batch_size=16", "eval_every=0", "sample_every=0",
               "ckpt_every=0", "device=cpu", cwd=tmp_path)
    run = only_run_dir(tmp_path)
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    hist = last["class_hist"]
    assert len(hist) == 3 and sum(map(sum, hist)) == 300  # one class histogram per generator
    assert all(sum(h) > 60 for h in hist)  # generators drawn uniformly (100 expected each)
    assert 1 <= last["classes_per_generator"] <= last["classes_per_generator_max"] <= 10
    assert 1 <= last["generators_per_class"] <= 3
    from PIL import Image
    grid = Image.open(run / "samples" / "samples_00000004.png")
    assert grid.size == (2 + 8 * 30, 2 + 3 * 30)  # one row of 8 per generator
    ganzoo_here("sample", f"run={run}", "n=300", "out=s.npz", "device=cpu", cwd=tmp_path)
    with np.load(tmp_path / "s.npz") as z:
        assert sorted(set(z["generator"].tolist())) == [0, 1, 2]
