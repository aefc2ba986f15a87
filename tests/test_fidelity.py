"""IS / FID / KID through torch-fidelity, the reference cache, and the weights and network checks.

No test touches the network. The Inception weights used here are a file each test run
creates from a *randomly initialised* torch-fidelity FeatureExtractorInceptionV3: the
tests check the plumbing (extraction, caching, keys, protocol, error messages), not the
numbers, which only the real weights give. FID's formula is checked separately against
scipy on synthetic statistics.
"""
import hashlib
import json
import math
import time
import urllib.error

import numpy as np
import pytest
import scipy.linalg
import torch

from conftest import Split

from ganzoo.config import MetricsConfig
from ganzoo.errors import GanzooError
from ganzoo.metrics import fidelity
from ganzoo.metrics.fidelity import ImageMetrics, check_weights_file, preflight


# ---------------------------------------------------------------- a tiny dataset with ganzoo's image interface


class FakeImages:
    """data.name / shape / num_classes / images(split) / fingerprint(split), from random tensors."""

    def __init__(self, n=10, shape=(1, 8, 8), num_classes=0, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.name, self.shape, self.num_classes = "fake", tuple(shape), num_classes
        self.splits = {s: (torch.randint(0, 256, (n, *shape), generator=g, dtype=torch.uint8),
                           torch.full((n,), -1, dtype=torch.long)) for s in ("train", "test")}
        self.reads = 0

    def images(self, split):
        return Split(*self.splits[split])

    def fingerprint(self, split):
        x, y = self.splits[split]
        return hashlib.sha256(x.numpy().tobytes() + y.numpy().tobytes()).hexdigest()


def noise_sampler(shape):
    def sample(n, generator):
        x = torch.rand((n, *shape), generator=generator, device=generator.device) * 2 - 1
        return x, torch.arange(n) % 2
    return sample


@pytest.fixture(scope="module")
def random_inception(tmp_path_factory):
    """A weights file for torch-fidelity's InceptionV3 with random weights (plumbing only, see the module doc)."""
    return fidelity.write_random_inception_weights(tmp_path_factory.mktemp("weights") / "random-inception.pth")


@pytest.fixture
def no_network(monkeypatch, tmp_path):
    """An empty torch.hub cache, and any download fails the way it does without internet."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    calls = []

    def refuse(url, dst, *a, **k):
        calls.append(url)
        raise urllib.error.URLError("[Errno -2] Name or service not known")
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    return calls


# ---------------------------------------------------------------- FID formula
def scipy_fid(mu1, s1, mu2, s2):
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_fid_matches_scipy_on_known_statistics():
    rng = np.random.default_rng(0)
    d = 16
    a, b = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    s1, s2 = a @ a.T + 0.1 * np.eye(d), b @ b.T + 0.1 * np.eye(d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    from torch_fidelity.metric_fid import fid_statistics_to_metric
    ours = fid_statistics_to_metric({"mu": mu1, "sigma": s1}, {"mu": mu2, "sigma": s2}, False)
    assert ours["frechet_inception_distance"] == pytest.approx(scipy_fid(mu1, s1, mu2, s2), rel=1e-6)
    same = fid_statistics_to_metric({"mu": mu1, "sigma": s1}, {"mu": mu1, "sigma": s1}, False)
    assert abs(same["frechet_inception_distance"]) < 1e-6


def test_fid_from_features_matches_scipy():
    g = torch.Generator().manual_seed(1)
    real = torch.randn(400, 8, generator=g, dtype=torch.float64).float()
    fake = (torch.randn(300, 8, generator=g) * 1.5 + 0.3).float()
    stats = {"mu": real.numpy().mean(0), "sigma": np.cov(real.numpy(), rowvar=False)}
    expected = scipy_fid(fake.double().numpy().mean(0), np.cov(fake.double().numpy(), rowvar=False),
                         real.double().numpy().mean(0), np.cov(real.double().numpy(), rowvar=False))
    assert fidelity.fid_from_features(fake, stats) == pytest.approx(expected, rel=1e-4)


def test_uint8_conversion_matches_torch_fidelity_convention():
    x = torch.tensor([-1.0, -0.5, 0.0, 1.0, 2.0, -3.0]).view(1, 1, 2, 3)
    u = fidelity.to_uint8(x)
    assert u.dtype == torch.uint8 and u.flatten().tolist() == [0, 64, 128, 255, 255, 0]
    assert fidelity.to_rgb(u).shape == (1, 3, 2, 3)


# ---------------------------------------------------------------- the weights check
def _assert_one_line_fix(exc_info, *needles):
    msg = str(exc_info.value)
    assert "\n" not in msg and len(msg) < 600, msg
    for needle in ("metrics.inception_weights=", "metrics.inception=false", *needles):
        assert needle in msg, msg


class NotWeights:
    """Pickled by the test: weights_only=True must refuse it without running any of its code."""


def test_weights_check_refuses_pickled_object(tmp_path):
    bad = tmp_path / "evil.pth"
    torch.save({"conv.weight": NotWeights()}, bad)
    with pytest.raises(GanzooError) as info:
        check_weights_file(bad)
    _assert_one_line_fix(info, "refused")


def test_weights_check_refuses_non_tensor_dict_and_missing_file(tmp_path):
    ints = tmp_path / "ints.pth"
    torch.save({"a": 1, "b": [2, 3]}, ints)
    with pytest.raises(GanzooError) as info:
        check_weights_file(ints)
    _assert_one_line_fix(info, "str -> Tensor")
    with pytest.raises(GanzooError) as info:
        check_weights_file(tmp_path / "nope.pth")
    _assert_one_line_fix(info, "no such file")


def test_preflight_refuses_weights_of_another_network(tmp_path):
    wrong = tmp_path / "wrong.pth"
    torch.save(torch.nn.Linear(3, 4).state_dict(), wrong)
    with pytest.raises(GanzooError) as info:
        preflight(MetricsConfig(inception_weights=str(wrong), cache_dir=str(tmp_path / "c")))
    _assert_one_line_fix(info, "do not fit")


def test_preflight_without_weights_or_network_fails_fast_with_the_fix(no_network, tmp_path):
    start = time.time()
    with pytest.raises(GanzooError) as info:
        preflight(MetricsConfig(cache_dir=str(tmp_path / "c")))
    assert time.time() - start < 10
    assert no_network == [fidelity.URL_INCEPTION_V3]
    _assert_one_line_fix(info, "downloading them failed", fidelity.INCEPTION_FILE)


def test_preflight_uses_torch_fidelitys_cached_download(no_network, tmp_path, random_inception):
    """Where torch-fidelity already downloaded its weights (torch.hub's cache), they are used offline."""
    import shutil
    hub = tmp_path / "torch-home" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    shutil.copy(random_inception, hub / fidelity.INCEPTION_FILE)
    ext = preflight(MetricsConfig(cache_dir=str(tmp_path / "c")))["inception"]
    assert no_network == [] and ext.weights == "torch-fidelity default"
    assert ext.sha256 == hashlib.sha256(random_inception.read_bytes()).hexdigest()


def test_preflight_prc_without_network_names_the_vgg_file(no_network, tmp_path, random_inception):
    cfg = MetricsConfig(inception_weights=str(random_inception), prc=True, cache_dir=str(tmp_path / "c"))
    with pytest.raises(GanzooError) as info:
        preflight(cfg)
    msg = str(info.value)
    assert "\n" not in msg and "metrics.prc=false" in msg and "vgg16-397923af.pth" in msg


def test_inception_off_needs_no_weights(no_network, tmp_path):
    cfg = MetricsConfig(inception=False, cache_dir=str(tmp_path / "c"))
    assert preflight(cfg) == {}
    metrics = ImageMetrics(cfg, FakeImages(num_classes=0), "cpu").preflight()
    assert metrics(noise_sampler((1, 8, 8)), seed=0) == {}
    assert no_network == []


def test_cache_dir_must_be_writable(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(GanzooError, match="metrics.cache_dir="):
        preflight(MetricsConfig(inception=False, cache_dir=str(blocker / "sub")))


# ---------------------------------------------------------------- end to end through torch-fidelity's Inception
@pytest.fixture
def small_fid_layer(monkeypatch):
    """FID on Inception's 2048 features costs a 2048x2048 non-symmetric eigendecomposition (~20 s of CPU
    here) per evaluation; the end-to-end test takes FID/KID on its 64-d layer instead. The code path
    (torch-fidelity's extractor, statistics, formulas, cache) is the same for any layer."""
    assert fidelity.INCEPTION_LAYERS == {"isc": "logits_unbiased", "fid": "2048", "kid": "2048"}
    monkeypatch.setattr(fidelity, "INCEPTION_LAYERS", {"isc": "logits_unbiased", "fid": "64", "kid": "64"})


def test_inception_metrics_end_to_end_and_reference_cache(random_inception, small_fid_layer, tmp_path):
    data = FakeImages(n=4, shape=(1, 8, 8))
    cfg = MetricsConfig(num_samples=4, batch_size=4, kid_subset_size=1000, inception_weights=str(random_inception),
                        cache_dir=str(tmp_path / "cache"), classifier=False)
    metrics = ImageMetrics(cfg, data, "cpu").preflight()
    seen = []
    metrics.extractors["inception"].module.register_forward_hook(lambda m, inp, out: seen.append(len(inp[0])))
    rng_before = torch.get_rng_state()

    first = metrics(noise_sampler(data.shape), seed=3)
    assert sum(seen) == 4 + 4  # the real split once, the samples once
    for key in ("fid", "is_mean", "is_std", "kid_mean", "kid_std"):
        assert isinstance(first[key], float) and math.isfinite(first[key]), (key, first[key])
    p = first["protocol"]["inception"]
    assert p["extractor"] == "inception-v3-compat" and p["split"] == "train" and p["layer"] == "64"
    assert p["num_real"] == 4 and p["num_fake"] == 4 and p["kid_subset_size"] == 4
    assert p["weights"] == str(random_inception)
    assert p["weights_sha256"] == hashlib.sha256(random_inception.read_bytes()).hexdigest()
    assert p["reference_fingerprint"] == data.fingerprint("train")
    json.dumps(first)  # the loop writes it to metrics.jsonl as it is

    cached = list((tmp_path / "cache" / "reference").glob("*.pt"))
    assert len(cached) == 1 and cached[0].name.startswith("fake-train-inception-v3-compat-")
    stamp = cached[0].stat().st_mtime_ns

    # a second evaluation (a fresh ImageMetrics, as after a restart) reads the cache: only samples go through
    seen.clear()
    again = ImageMetrics(cfg, data, "cpu").preflight()
    again.extractors["inception"].module.register_forward_hook(lambda m, inp, out: seen.append(len(inp[0])))
    second = again(noise_sampler(data.shape), seed=3)
    assert sum(seen) == 4 and again.cache.hits == 1 and again.cache.misses == 0
    assert cached[0].stat().st_mtime_ns == stamp
    # same seed, same samples, same reference: the same numbers; and the training RNG never moved
    assert {k: second[k] for k in ("fid", "kid_mean", "is_mean")} == {k: first[k] for k in ("fid", "kid_mean", "is_mean")}
    assert torch.equal(torch.get_rng_state(), rng_before)

    # the cache entry is keyed by content, weights and subset, not by the dataset's name
    ext = again.extractors["inception"]
    key, path, _ = again.reference_key(ext, "64", None)
    assert path == cached[0]
    other = ImageMetrics(cfg, FakeImages(n=4, shape=(1, 8, 8), seed=1), "cpu")
    assert other.reference_key(ext, "64", None)[1] != path
    assert again.reference_key(ext, "64", 3)[1] != path
    ext.sha256 = "0" * 64
    assert again.reference_key(ext, "64", None)[1] != path


def test_inception_prdc_scores_the_reals_themselves_perfectly(random_inception, small_fid_layer, tmp_path):
    """metrics.inception_prdc: precision/recall/density/coverage in Inception's features. The real images
    as samples lie on the reals' manifold (precision, recall, coverage 1); one image repeated has a
    manifold of radius 0 that holds no real image (recall 0). Off by default."""
    data = FakeImages(n=12, shape=(1, 8, 8))
    reals = data.splits["train"][0]

    def as_samples(x):
        return lambda n, generator: (x[:n].float() / 127.5 - 1, torch.zeros(n, dtype=torch.long))

    cfg = MetricsConfig(num_samples=12, batch_size=12, inception_weights=str(random_inception), nearest_k=2,
                        cache_dir=str(tmp_path / "cache"), classifier=False, inception_prdc=True)
    same = ImageMetrics(cfg, data, "cpu").preflight()(as_samples(reals), seed=0)
    assert same["iprecision"] == same["irecall"] == same["icoverage"] == 1.0 and same["idensity"] >= 1 / 2  # >= 1/k
    assert same["protocol"]["inception"]["nearest_k"] == 2
    one = ImageMetrics(cfg, data, "cpu").preflight()(as_samples(reals[:1].repeat(12, 1, 1, 1)), seed=0)
    assert one["irecall"] == 0.0 and one["icoverage"] < 1.0
    off = MetricsConfig(num_samples=12, batch_size=12, inception_weights=str(random_inception),
                        cache_dir=str(tmp_path / "cache"), classifier=False)
    assert "iprecision" not in ImageMetrics(off, data, "cpu").preflight()(as_samples(reals), seed=0)


def test_reference_subset_is_fixed_and_nested():
    a, how = fidelity.reference_indices(100, 10)
    b, _ = fidelity.reference_indices(100, 30)
    assert len(a) == 10 and set(a) <= set(b) and a == sorted(a) and "seed" in how
    assert fidelity.reference_indices(100, None) == (range(100), "all")
    assert fidelity.reference_indices(100, 500)[1] == "all"


def test_unreadable_or_foreign_reference_cache_is_recomputed(tmp_path):
    cache = fidelity.ReferenceCache(tmp_path)
    key = {"format": fidelity.FORMAT, "dataset": "fake", "n": 3}
    path = cache.path(key, "fake", "train", "x")
    entry = {"format": fidelity.FORMAT, "key": json.dumps(key, sort_keys=True), "n": 3, "features": torch.ones(3, 2)}
    cache.put(path, entry)
    assert cache.get(key, path)["n"] == 3
    assert cache.get({**key, "n": 4}, path) is None          # the file answers another question
    path.write_bytes(path.read_bytes()[:100])                # cut off, as by a crash elsewhere
    assert cache.get(key, path) is None
