"""The class-metric classifier: training and its cache, its torch-fidelity feature extractor,
classifier FID/KID, and class coverage on generators whose classes are known by construction.

The data are synthetic: class k is a bright band at rows 2k..2k+1 of a 12x12 gray image plus
a little noise, which the small CNN learns perfectly in a second or two. (Accuracy on real
Fashion-MNIST is checked where the dataset loader lives.)
"""
import contextlib
import hashlib
import math
import threading
import time

import pytest
import torch

from conftest import Split
import torch_fidelity
from torch.utils.data import Dataset

from ganzoo.config import MetricsConfig
from ganzoo.errors import GanzooError
from ganzoo.metrics import classifier as clf
from ganzoo.metrics.fidelity import ImageMetrics, to_rgb

K = 5
SHAPE = (1, 12, 12)
FAST = clf.Recipe(epochs=4, batch_size=25, lr=3e-3, seed=0)


def bands(labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """uint8 images of the given classes."""
    x = torch.randint(0, 40, (len(labels), *SHAPE), generator=generator).to(torch.uint8)
    for i, k in enumerate(labels.tolist()):
        x[i, 0, 2 * k: 2 * k + 2] = 255 - x[i, 0, 2 * k: 2 * k + 2]
    return x




class Bands:
    """ganzoo's image-data interface: name, shape, num_classes, images(split), fingerprint(split)."""
    name, shape, num_classes = "bands", SHAPE, K

    def __init__(self, per_class=(40, 12), seed=0):
        g = torch.Generator().manual_seed(seed)
        self.splits = {}
        for split, n in zip(("train", "test"), per_class):
            y = torch.arange(K).repeat(n)
            self.splits[split] = (bands(y, g), y)

    def images(self, split):
        return Split(*self.splits[split])

    def fingerprint(self, split):
        x, y = self.splits[split]
        return hashlib.sha256(x.numpy().tobytes() + y.numpy().tobytes()).hexdigest()


class Unlabelled(Bands):
    num_classes = 0


@pytest.fixture(scope="module")
def data():
    return Bands()


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return cache, clf.train_classifier(data, cache, FAST)


def three_class_sampler(classes=(0, 2, 4)):
    """Generator 0 makes class 0, generator 1 makes classes 2 and 4: 10 each in 30 samples."""
    made = [0]

    def sample(n, generator):
        i = torch.arange(made[0], made[0] + n)
        made[0] += n
        labels = torch.tensor(classes)[i % len(classes)]
        x = bands(labels, torch.Generator().manual_seed(int(torch.randint(0, 2**31, (1,), generator=generator))))
        return x.float() / 127.5 - 1, (labels != classes[0]).long()
    return sample


# ---------------------------------------------------------------- training and cache
def test_train_is_accurate_cached_deterministic_and_leaves_the_rng(data, trained, monkeypatch):
    cache, model = trained
    assert model.accuracy == 1.0
    assert model.path.is_file() and model.path.parent == cache / "classifier"
    side = model.path.with_suffix(".json").read_text()
    assert '"accuracy": 1.0' in side and data.fingerprint("train") in side
    assert model.sha256 == hashlib.sha256(model.path.read_bytes()).hexdigest()

    rng = torch.get_rng_state()
    again = clf.train_classifier(data, None, FAST)
    assert torch.equal(torch.get_rng_state(), rng)
    for k, v in model.model.state_dict().items():
        assert torch.equal(v, again.model.state_dict()[k]), k

    # the second time it is loaded, not trained
    monkeypatch.setattr(clf, "train_classifier", lambda *a, **k: pytest.fail("retrained a cached classifier"))
    loaded = clf.load_or_train_classifier(data, cache, FAST)
    assert loaded.accuracy == 1.0 and loaded.sha256 == model.sha256
    # other data content is another classifier
    assert clf.cache_path(Bands(seed=1), cache, FAST) != model.path


@pytest.mark.parametrize("locked", [True, False])
def test_jobs_starting_together_train_the_classifier_once(data, tmp_path, monkeypatch, locked):
    """Two jobs of a sweep asking at once: one trains, the other waits and loads its file, so both score
    with the weights whose sha256 they record. Negative control: without the lock both train."""
    real, calls = clf.train_classifier, []

    def slow(*args, **kwargs):
        calls.append(1)
        time.sleep(0.5)  # both jobs are inside before either has written
        return real(*args, **kwargs)

    monkeypatch.setattr(clf, "train_classifier", slow)
    if not locked:
        monkeypatch.setattr(clf, "cache_lock", lambda *a: contextlib.nullcontext())
    got = [None, None]
    jobs = [threading.Thread(target=lambda i=i: got.__setitem__(i, clf.load_or_train_classifier(data, tmp_path, FAST)))
            for i in range(2)]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join()
    assert len(calls) == (1 if locked else 2)
    if locked:
        on_disk = hashlib.sha256(got[0].path.read_bytes()).hexdigest()
        assert got[0].sha256 == got[1].sha256 == on_disk


def test_unreadable_cached_classifier_is_retrained(data, tmp_path, monkeypatch):
    path = clf.cache_path(data, tmp_path, FAST)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    calls = []
    monkeypatch.setattr(clf, "train_classifier", lambda *a, **k: calls.append(1) or "retrained")
    assert clf.load_or_train_classifier(data, tmp_path, FAST) == "retrained" and calls == [1]


def test_unlabelled_data_is_refused_with_the_fix(tmp_path):
    with pytest.raises(GanzooError, match="metrics.classifier=false"):
        clf.load_or_train_classifier(Unlabelled(), tmp_path)


# ---------------------------------------------------------------- the torch-fidelity feature extractor
def test_feature_extractor_takes_torch_fidelity_input(data, trained):
    _, model = trained
    fe = torch_fidelity.utils.create_feature_extractor(
        clf.EXTRACTOR_NAME, ["features", "logits"], cuda=False, feature_extractor_weights_path=str(model.path),
        verbose=False)
    x = data.splits["test"][0][:20]
    feats, logits = fe(to_rgb(x))
    assert feats.shape == (20, clf.FEATURE_DIM) and logits.shape == (20, K)
    # repeated gray in, the classifier's own view of the image out
    assert torch.allclose(logits, model.model(clf.to_float(x))[1], atol=1e-5)
    # another resolution is resized back to the one it was trained on
    big = torch.nn.functional.interpolate(to_rgb(x).float(), size=(24, 24), mode="nearest").to(torch.uint8)
    assert (fe(big)[1].argmax(1) == data.splits["test"][1][:20]).float().mean() >= 0.9
    with pytest.raises(ValueError):
        fe(x)  # one channel is not what torch-fidelity feeds


def test_cfid_and_ckid_equal_torch_fidelity_calculate_metrics(data, trained, tmp_path):
    """ganzoo's own extraction + torch-fidelity formulas == torch-fidelity's calculate_metrics end to end."""
    cache, model = trained
    cfg = MetricsConfig(num_samples=30, batch_size=30, inception=False, kid_subset_size=20,
                        cache_dir=str(cache))
    metrics = ImageMetrics(cfg, data, "cpu", recipe=FAST)
    out = metrics(three_class_sampler(), seed=5)
    fake = to_uint8_samples(three_class_sampler(), 30, seed=5)

    class RGB(Dataset):
        def __init__(self, x):
            self.x = to_rgb(x)

        def __len__(self):
            return len(self.x)

        def __getitem__(self, i):
            return self.x[i]

    ref = torch_fidelity.calculate_metrics(
        input1=RGB(fake), input2=RGB(data.splits["train"][0]), fid=True, kid=True, kid_subset_size=20,
        feature_extractor=clf.EXTRACTOR_NAME, feature_extractor_weights_path=str(model.path),
        cuda=False, cache=False, verbose=False, save_cpu_ram=True)
    assert out["cfid"] == pytest.approx(ref["frechet_inception_distance"], rel=1e-4, abs=1e-6)
    assert out["ckid_mean"] == pytest.approx(ref["kernel_inception_distance_mean"], rel=1e-4, abs=1e-7)


def to_uint8_samples(sample, n, seed):
    x, _ = sample(n, torch.Generator().manual_seed(seed))
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


# ---------------------------------------------------------------- class coverage
def test_three_class_generators_cover_three_classes(data, trained):
    cache, _ = trained
    cfg = MetricsConfig(num_samples=30, batch_size=7, inception=False, kid_subset_size=1000, cache_dir=str(cache))
    metrics = ImageMetrics(cfg, data, "cpu", recipe=FAST)
    out = metrics(three_class_sampler(), seed=0, num_generators=3)
    assert out["classes_covered"] == 3
    assert out["class_hist"] == [[10, 0, 0, 0, 0], [0, 0, 10, 0, 10], [0, 0, 0, 0, 0]]
    assert out["class_kl"] == pytest.approx(math.log(K / 3))
    for key in ("cfid", "ckid_mean", "ckid_std"):
        assert math.isfinite(out[key])
    p = out["protocol"]["classifier"]
    assert p["extractor"] == clf.EXTRACTOR_NAME and p["accuracy"] == 1.0 and p["num_real"] == 5 * 40
    assert p["num_fake"] == 30 and p["kid_subset_size"] == 30 and p["min_class_share"] == 0.5
    assert "protocol" in out and "inception" not in out["protocol"]

    # k-NN precision, recall, density, coverage against a reference of the fake set's size (30 of 200)
    assert p["nearest_k"] == 5 and p["manifold_num_real"] == 30
    for key in ("cprecision", "crecall", "cdensity", "ccoverage"):
        assert out[key] is not None and out[key] >= 0
    assert out["ccoverage"] <= 1 and out["cprecision"] <= 1

    # the second evaluation reads both references (FID's, the k-NN scores' with their radii) from the cache
    again = ImageMetrics(cfg, data, "cpu", recipe=FAST)
    second = again(three_class_sampler(), seed=0)
    assert again.cache.hits == 2 and again.cache.misses == 0
    assert all(second[k] == out[k] for k in ("cprecision", "crecall", "cdensity", "ccoverage"))


def test_class_coverage_threshold_and_kl():
    # 1000 samples, 10 classes: uniform gives 100 each, the threshold is 10% of that
    pred = torch.cat([torch.full((500,), 0), torch.full((489,), 1), torch.full((10,), 2), torch.full((1,), 3)])
    gen = torch.zeros(1000, dtype=torch.long)
    out = clf.class_coverage(pred, gen, 10, min_share=0.1)
    assert out["classes_covered"] == 3  # class 3 (1 sample) is below 10 samples
    assert clf.class_coverage(torch.arange(10).repeat(5), torch.zeros(50, dtype=torch.long), 10)["class_kl"] == 0
    one = clf.class_coverage(torch.zeros(7, dtype=torch.long), torch.zeros(7, dtype=torch.long), 10)
    assert one["class_kl"] == pytest.approx(math.log(10)) and one["classes_covered"] == 1
    assert one["class_hist"] == [[7] + [0] * 9]
    two = clf.class_coverage(torch.tensor([1, 1, 2]), torch.tensor([0, 1, 1]), 3)
    assert two["class_hist"] == [[0, 1, 0], [0, 1, 1]]
    assert "classes_per_generator" not in one  # one generator: no balance to measure


def test_classes_per_generator_by_hand():
    """Stackelberg GAN's balance on images: the share rule applied within each generator's own samples.
    4 classes, min_share 0.5: generator 0 (20 samples, threshold 2.5) holds classes 0 and 1; generator 1
    (40, threshold 5) holds 1 and 3, not class 2's 2 samples; generator 2 (4, threshold 0.5) holds 3."""
    pred = torch.tensor([0] * 10 + [1] * 10 + [1] * 30 + [2] * 2 + [3] * 8 + [3] * 4)
    gen = torch.tensor([0] * 20 + [1] * 40 + [2] * 4)
    out = clf.class_coverage(pred, gen, 4, num_generators=4, min_share=0.5)  # generator 3 drew nothing
    assert out["classes_per_generator"] == pytest.approx(5 / 3)
    assert out["classes_per_generator_max"] == 2
    assert out["generators_per_class"] == pytest.approx(5 / 3)  # classes 0, 1, 3 held by 1, 2, 2


def test_unlabelled_dataset_skips_class_metrics(tmp_path):
    cfg = MetricsConfig(inception=False, cache_dir=str(tmp_path))
    assert ImageMetrics(cfg, Unlabelled(), "cpu")(three_class_sampler(), seed=0) == {}
