"""Stacked Fashion-MNIST (1,000 modes) and its mode metrics (metrics/stacked.py): the construction from
the idx files, the counts worked by hand, and the whole evaluation on real images against what the
classifier's confusion predicts."""
import math

import pytest
import torch

from ganzoo.data import build_data
from ganzoo.data.files import DEBIAN_FASHION_MNIST
from ganzoo.data.schemas import ImageData as ImageDataConfig
from ganzoo.metrics import stacked

needs_fmnist = pytest.mark.skipif(not DEBIAN_FASHION_MNIST.is_dir(),
                                  reason="apt-get install dataset-fashion-mnist (CI installs it)")


def test_mode_counts_and_kl_by_hand():
    out = stacked.mode_scores(torch.tensor([0, 0, 1, 999]))
    assert out["modes"] == 3
    assert out["kl"] == pytest.approx(0.5 * math.log(500) + 2 * 0.25 * math.log(250))
    assert stacked.mode_scores(torch.arange(1000))["kl"] == pytest.approx(0.0, abs=1e-12)  # uniform


def test_expected_modes_under_a_classifier_by_hand():
    perfect = torch.eye(10) * 100
    # uniform over 1,000 modes seen perfectly: 1000 (1 - 0.999^n)
    assert stacked.expected_modes(perfect, 1000) == pytest.approx(1000 * (1 - 0.999 ** 1000))
    # a classifier that calls class 9 class 8 sees 9 classes a channel: 729 modes at most
    merged = torch.eye(10) * 100
    merged[9, 9], merged[9, 8] = 0, 100
    assert stacked.expected_modes(merged, 10**7) == pytest.approx(729, abs=1e-6)
    assert stacked.expected_modes(merged, 26_000) < stacked.expected_modes(perfect, 26_000)


@needs_fmnist
def test_each_image_stacks_three_seeded_images_of_one_split():
    cfg = ImageDataConfig(name="stacked_fashion_mnist", channels=3, resolution=28, num_classes=1000)
    data = build_data(cfg)
    base = data.base()
    assert data.shape == (3, 28, 28) and base.shape == (1, 28, 28) and base.name == "fashion_mnist"
    for split in ("train", "test"):
        x, y, one = data.images(split).x, data.images(split).y, base.images(split)
        idx = torch.randint(len(one.x), (3, len(one.x)), generator=torch.Generator().manual_seed(int(split == "test")))
        for c in range(3):
            assert torch.equal(x[:, c:c + 1], one.x[idx[c]])
        assert torch.equal(y, 100 * one.y[idx[0]] + 10 * one.y[idx[1]] + one.y[idx[2]])
    assert len(torch.unique(data.images("train").y)) == 1000
    assert data.fingerprint("train") == build_data(cfg).fingerprint("train")  # seeded: the same set each time


@pytest.mark.slow  # trains Fashion-MNIST's classifier (one epoch)
@needs_fmnist
def test_real_images_score_what_the_classifiers_confusion_predicts(tmp_path):
    """Real stacked images are a perfect generator: they show about the modes the confusion predicts, and
    a generator of one channel class per image (100 modes) is told apart."""
    from ganzoo.config import compose_train
    from ganzoo.metrics import classifier as clf
    from ganzoo.metrics.fidelity import ImageMetrics
    cfg = compose_train("dataset=stacked_fashion_mnist", "device=cpu", "metrics.inception=false",
                        f"metrics.cache_dir={tmp_path}", "metrics.num_samples=2000")
    data = build_data(cfg.dataset)
    metrics = ImageMetrics(cfg.metrics, data, "cpu", recipe=clf.Recipe(epochs=1, seed=0))
    train = data.images("train")

    def real(n, gen):
        idx = torch.randint(len(train.x), (n,), generator=gen)
        return train.x[idx].float() / 127.5 - 1, torch.zeros(n, dtype=torch.long)

    def collapsed(n, gen):  # channel 2 repeats channel 1: at most 100 modes
        x, g = real(n, gen)
        x[:, 2] = x[:, 1]
        return x, g
    out = metrics(real, seed=0, num_generators=1)
    p = out["protocol"]["stacked"]
    assert p["num_fake"] == p["num_real"] == 2000 and p["classifier_dataset"] == "fashion_mnist"
    assert 0.8 < p["channel_accuracy"] <= 1
    assert abs(out["stacked_modes_real"] - out["stacked_modes_expected"]) < 25
    assert abs(out["stacked_modes"] - out["stacked_modes_real"]) < 25
    worse = metrics(collapsed, seed=0, num_generators=1)
    assert worse["stacked_modes"] < 200 < out["stacked_modes"]
    assert worse["stacked_kl"] > out["stacked_kl"]
    # coverage and density in the three channels' classifier features: real images cover the real balls
    assert out["ccoverage"] > 0.8 and 0.7 < out["cdensity"] < 1.3 and worse["ccoverage"] < out["ccoverage"]
    assert worse["stacked_modes_real"] == out["stacked_modes_real"]  # the same reference, from the cache


@pytest.mark.slow  # one smoke run per method
@pytest.mark.parametrize("name", sorted(__import__("ganzoo.methods.schemas", fromlist=["METHODS"]).METHODS))
def test_every_method_trains_on_the_stacked_set(tmp_path, name):
    from ganzoo.config import compose_train
    from ganzoo.train import train
    # the smoke budget's own per-method knobs (conf/budget_method/), not the record's small instance
    cfg = compose_train("dataset=stacked_fashion_mnist", "budget=smoke", "device=cpu", f"method={name}")
    assert cfg.arch.name == "dcgan" and cfg.dataset.channels == 3 and cfg.dataset.num_classes == 1000
    train(cfg, tmp_path / name)
    assert (tmp_path / name / "ckpt" / "last.pt").is_file()
