"""2-D toy datasets (statistics) and the seeded, resumable real-data Stream."""
import io
import math

import pytest
import torch

from ganzoo.data.schemas import GaussianData, GridData, RingData, SwissRollData
from ganzoo.data import Stream, build_data
from ganzoo.data.toy import FiniteGaussian, Mixture, SwissRoll, grid, ring

CPU = torch.device("cpu")
N = 20_000


def _draw(data, n=N, seed=0):
    return data.sample(n, torch.Generator().manual_seed(seed), CPU)


def _mixture_checks(data, samples, std):
    """Nearest-centre residual std within 10% per axis, residual mean ~ 0, modes ~ equally used."""
    d = torch.cdist(samples.double(), data.modes.double())
    idx = d.argmin(1)
    resid = samples.double() - data.modes.double()[idx]
    emp_std = resid.std(0)
    assert torch.all((emp_std - std).abs() < 0.1 * std), (emp_std.tolist(), std)
    assert resid.mean(0).abs().max() < 0.1 * std
    m = len(data.modes)
    counts = torch.bincount(idx, minlength=m).double()
    expected = len(samples) / m
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    # chi-square with m-1 dof: mean m-1, sd sqrt(2(m-1)); 6 sd is far beyond chance
    assert chi2 < (m - 1) + 6 * math.sqrt(2 * (m - 1)), (chi2, counts.tolist())
    assert counts.min() > 0.8 * expected


@pytest.mark.parametrize("modes, radius, std", [(8, 2.0, 0.02), (5, 1.5, 0.05)])
def test_ring_centres_on_circle_equally_spaced(modes, radius, std):
    data = ring(modes, radius, std)
    assert isinstance(data, Mixture)
    assert data.modes.shape == (modes, 2)
    assert data.std == std
    norms = data.modes.double().norm(dim=1)
    assert torch.allclose(norms, torch.full((modes,), radius, dtype=torch.float64), atol=1e-5)
    for k in range(modes):  # centre k at angle 2 pi k / M
        angle = 2 * math.pi * k / modes
        assert data.modes[k, 0].item() == pytest.approx(radius * math.cos(angle), abs=1e-5)
        assert data.modes[k, 1].item() == pytest.approx(radius * math.sin(angle), abs=1e-5)


@pytest.mark.parametrize("modes, radius, std", [(8, 2.0, 0.02), (5, 1.5, 0.05)])
def test_ring_samples_cluster_at_std_and_share_modes_equally(modes, radius, std):
    data = ring(modes, radius, std)
    x = _draw(data)
    assert x.shape == (N, 2) and x.dtype == torch.float32
    _mixture_checks(data, x, std)


def test_grid_5x5_centres_and_std():
    data = grid()
    assert data.std == 0.05
    centres = {(round(a), round(b)) for a, b in data.modes.tolist()}
    assert centres == {(a, b) for a in (-4, -2, 0, 2, 4) for b in (-4, -2, 0, 2, 4)}
    assert len(data.modes) == 25
    assert torch.allclose(data.modes, data.modes.round())  # exact lattice, no drift
    _mixture_checks(data, _draw(data), 0.05)


def test_grid_other_size_is_centred():
    data = grid(size=4, spacing=1.0, std=0.1)
    xs = sorted({a for a, _ in data.modes.tolist()})
    assert xs == pytest.approx([-1.5, -0.5, 0.5, 1.5])
    assert data.modes.mean(0).abs().max() < 1e-6


def test_swissroll_bounds_and_spiral():
    data = SwissRoll()  # noise 0.25, scale 0.25
    x = _draw(data).double()
    assert x.shape == (N, 2)
    # noiseless: ||(t cos t, t sin t)|| = t in [1.5 pi, 4.5 pi]; scaled by 0.25 -> [1.178, 3.534]
    # noise: 0.25 * 0.25 = 0.0625 per axis, so 6 sd of slack on the radius
    r = x.norm(dim=1)
    slack = 6 * 0.0625 * math.sqrt(2)
    assert r.min() > 1.5 * math.pi * 0.25 - slack and r.max() < 4.5 * math.pi * 0.25 + slack
    assert r.min() < 1.5 * math.pi * 0.25 + 0.1 and r.max() > 4.5 * math.pi * 0.25 - 0.1  # spans it
    # on the spiral: angle == t (mod 2 pi) where t = r / scale
    t = r / 0.25
    theta = torch.atan2(x[:, 1], x[:, 0])
    diff = torch.remainder(t - theta + math.pi, 2 * math.pi) - math.pi
    assert diff.abs().quantile(0.99) < 1.0, diff.abs().quantile(0.99)
    assert diff.abs().median() < 0.3


def test_finite_gaussian_fixed_by_dataset_seed():
    torch.manual_seed(0)
    a = FiniteGaussian(n=200, seed=1234).finite
    torch.manual_seed(99)  # the global RNG must not matter
    b = FiniteGaussian(n=200, seed=1234).finite
    c = FiniteGaussian(n=200, seed=1235).finite
    assert a.shape == (200, 2)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_finite_gaussian_statistics_and_dim():
    d = FiniteGaussian(n=5000, mean=3.0, std=0.5, seed=1, dim=4)
    assert d.finite.shape == (5000, 4) and d.shape == (4,)
    assert torch.allclose(d.finite.mean(0), torch.full((4,), 3.0), atol=0.05)
    assert torch.allclose(d.finite.std(0), torch.full((4,), 0.5), atol=0.05)
    s = _draw(d, 5000)
    assert s.shape == (5000, 4)
    assert torch.allclose(s.mean(0), torch.full((4,), 3.0), atol=0.05)
    assert not torch.equal(s, d.finite)  # `sample` is the full Gaussian, not the training set


def test_build_data_uses_config_fields():
    r = build_data(RingData(modes=6, radius=3.0, std=0.1))
    assert r.name == "ring" and len(r.modes) == 6 and r.std == 0.1
    assert torch.allclose(r.modes.norm(dim=1), torch.full((6,), 3.0), atol=1e-5)
    g = build_data(GridData(size=3, spacing=1.0, std=0.2))
    assert g.name == "grid" and len(g.modes) == 9 and g.std == 0.2
    s = build_data(SwissRollData(noise=0.0, scale=1.0))
    assert s.name == "swissroll" and s.modes is None and s.finite is None
    r_ = _draw(s, 1000).norm(dim=1)
    assert r_.min() >= 1.5 * math.pi - 1e-4 and r_.max() <= 4.5 * math.pi + 1e-4
    f = build_data(GaussianData(n=50, dim=3, seed=7))
    assert f.name == "gaussian" and f.finite.shape == (50, 3)
    assert torch.equal(f.finite, FiniteGaussian(n=50, dim=3, seed=7).finite)
    with pytest.raises(ValueError):
        build_data(RingData(name="moons"))


# ----------------------------------------------------------------------------- Stream

def _batches(stream, k, n=None):
    return [stream(n) for _ in range(k)]


@pytest.mark.parametrize("data", [ring(), FiniteGaussian(n=100)], ids=["ring", "finite"])
def test_stream_same_seed_same_batches_other_seed_different(data):
    a = _batches(Stream(data, 32, seed=0, device=CPU), 5)
    b = _batches(Stream(data, 32, seed=0, device=CPU), 5)
    c = _batches(Stream(data, 32, seed=1, device=CPU), 5)
    assert all(x.shape == (32, 2) for x in a)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(x, y) for x, y in zip(a, c))
    assert not torch.equal(a[0], a[1])  # successive batches differ


def test_stream_independent_of_global_rng():
    data = ring()
    torch.manual_seed(0)
    a = Stream(data, 16, seed=3, device=CPU)()
    torch.manual_seed(1)
    torch.rand(10)
    b = Stream(data, 16, seed=3, device=CPU)()
    assert torch.equal(a, b)


@pytest.mark.parametrize("batch", [7, 32, 100])
def test_stream_finite_visits_every_point_once_per_epoch(batch):
    data = FiniteGaussian(n=100, seed=5)
    stream = Stream(data, batch, seed=0, device=CPU)
    epochs = 3
    total = 100 * epochs
    drawn = torch.cat([stream() for _ in range(math.ceil(total / batch))])
    # map every drawn point back to its index in the training set
    idx = torch.cdist(drawn, data.finite).argmin(1)
    assert torch.equal(data.finite[idx], drawn)  # only training points are returned
    for e in range(epochs):
        ep = idx[100 * e:100 * (e + 1)]
        assert sorted(ep.tolist()) == list(range(100)), f"epoch {e} is not a permutation"
    assert not torch.equal(idx[:100], idx[100:200])  # each epoch is a fresh shuffle
    assert not torch.equal(idx[:100], torch.arange(100))  # and actually shuffled
    assert stream.epoch == math.ceil(len(drawn) / 100)


def test_stream_batch_size_override():
    stream = Stream(ring(), 32, seed=0, device=CPU)
    assert stream(5).shape == (5, 2)
    assert stream().shape == (32, 2)
    fin = Stream(FiniteGaussian(n=10), 4, seed=0, device=CPU)
    assert fin(25).shape == (25, 2)  # more than one epoch in a single call


def _roundtrip(state):
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=False)


@pytest.mark.parametrize("data, before", [
    (FiniteGaussian(n=100, seed=2), 2),   # mid-epoch (pos 64 of 100)
    (FiniteGaussian(n=100, seed=2), 3),   # next batch straddles the epoch boundary
    (FiniteGaussian(n=100, seed=2), 0),   # fresh stream, no permutation yet
    (ring(), 3),                          # infinite mixture
    (SwissRoll(), 1),
], ids=["finite-mid-epoch", "finite-straddle", "finite-fresh", "ring", "swissroll"])
def test_stream_state_dict_resumes_identical_batches(data, before):
    stream = Stream(data, 32, seed=11, device=CPU)
    _batches(stream, before)
    state = _roundtrip(stream.state_dict())
    expected = _batches(stream, 6)  # continue the original past the save point

    resumed = Stream(data, 32, seed=999, device=CPU)  # different seed: the state must override it
    _batches(resumed, 2)  # and whatever it drew already
    resumed.load_state_dict(state)
    got = _batches(resumed, 6)
    assert all(torch.equal(x, y) for x, y in zip(expected, got))
    assert resumed.epoch == stream.epoch and resumed.pos == stream.pos


def test_stream_state_dict_is_a_snapshot():
    """Drawing after state_dict() must not change the saved state (rewind to it works)."""
    stream = Stream(FiniteGaussian(n=50), 16, seed=0, device=CPU)
    stream()
    state = stream.state_dict()
    first = _batches(stream, 5)
    stream.load_state_dict(state)
    again = _batches(stream, 5)
    assert all(torch.equal(x, y) for x, y in zip(first, again))
