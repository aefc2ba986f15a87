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


@needs_fmnist
def test_pooled_and_sized_training_set_as_pacgan_draws_it():
    """dataset.stack_pool=all, stack_size=N: N training images whose channels come from train and test
    together (PacGAN's load_mnist); the test split stays the test split's own."""
    cfg = ImageDataConfig(name="stacked_fashion_mnist", channels=3, resolution=28, num_classes=1000,
                          stack_pool="all", stack_size=3000)
    data = build_data(cfg)
    base = data.base()
    pool_x = torch.cat([base.images("train").x, base.images("test").x])
    pool_y = torch.cat([base.images("train").y, base.images("test").y])
    train = data.images("train")
    assert len(train.x) == 3000 and len(data.images("test").x) == 10_000
    idx = torch.randint(len(pool_x), (3, 3000), generator=torch.Generator().manual_seed(0))
    for c in range(3):
        assert torch.equal(train.x[:, c:c + 1], pool_x[idx[c]])
    assert torch.equal(train.y, 100 * pool_y[idx[0]] + 10 * pool_y[idx[1]] + pool_y[idx[2]])
    assert (idx >= 60_000).sum() > 0  # some channels are test images
    default = build_data(ImageDataConfig(name="stacked_fashion_mnist", channels=3, resolution=28, num_classes=1000))
    assert torch.equal(data.images("test").x, default.images("test").x)
    assert data.fingerprint("train") != default.fingerprint("train")


@pytest.mark.parametrize("overrides, message", [
    (["dataset=fashion_mnist", "dataset.stack_size=100"], "apply to stacked sets"),
    (["dataset=stacked_fashion_mnist", "dataset.stack_pool=both"], "choose one of: split, all"),
    (["dataset=stacked_fashion_mnist", "dataset.stack_size=0"], "dataset.stack_size must be > 0"),
])
def test_stack_options_refused_in_one_line(overrides, message):
    from ganzoo.config import compose_train
    from ganzoo.errors import ConfigError
    with pytest.raises(ConfigError, match=message):
        compose_train(*overrides)


@pytest.mark.parametrize("name", ["gan", "fargan", "microbatch"])
def test_the_pacgan_benchmark_composes_to_its_cited_values_for_any_method(name):
    """benchmark=stacked_pacgan: PacGAN's VEEGAN_experiment (config.py, model.py), whatever the method."""
    from ganzoo.config import compose_train
    c = compose_train("benchmark=stacked_pacgan", f"method={name}")
    assert c.method.name == name
    assert (c.dataset.name, c.dataset.stack_pool, c.dataset.stack_size) == ("stacked_fashion_mnist", "all", 128_000)
    assert (c.arch.name, c.arch.z_dim, c.arch.z_dist, c.arch.g_width, c.arch.d_width) == (
        "pacgan_dcgan", 100, "uniform", 64, 64)
    assert (c.batch_size, c.n_dis, c.n_gen, c.steps) == (64, 1, 2, 100_000)  # 50 epochs of 2,000 batches
    for o in (c.optim.g, c.optim.d):
        assert (o.name, o.lr, list(o.betas)) == ("adam", 2e-4, [0.5, 0.999])
    assert c.loss.name == "ns" and c.loss.penalty == "none"
    assert c.metrics.num_samples == 26_000 and c.metrics.classifier


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
    cfg = compose_train("benchmark=stacked_pacgan", "budget=smoke", "device=cpu", f"method={name}")
    assert cfg.arch.name == "pacgan_dcgan" and cfg.dataset.channels == 3 and cfg.dataset.num_classes == 1000
    assert cfg.n_gen == 2
    train(cfg, tmp_path / name)
    assert (tmp_path / name / "ckpt" / "last.pt").is_file()
