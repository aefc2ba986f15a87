"""The papers' toy settings as data: the 2-D nets' init, input scale and softplus output, plain SGD, and each
experiment composing to the values its file cites."""
import math
import re

import pytest
import torch

from conftest import compose_fast
from ganzoo.methods.common import make_optimizer
from ganzoo.nets.build import build_nets

SMALL = ["device=cpu", "dataset=ring", "arch=mlp", "arch.g.hidden=[32,32]", "arch.d.hidden=[64]"]


def nets(*overrides):
    cfg = compose_fast(*SMALL, *overrides)
    make_g, make_d = build_nets(cfg.arch, (2,))
    torch.manual_seed(0)
    return make_g(), make_d()


def linears(net):
    return [m for m in net.modules() if isinstance(m, torch.nn.Linear)]


def test_normal_init_draws_weights_with_the_std_and_zero_biases():
    G, D = nets("arch.init=normal", "arch.init_std=0.01")
    for layer in linears(G) + linears(D):
        assert torch.count_nonzero(layer.bias) == 0
    big = linears(G)[1].weight  # 32 x 32
    assert big.std().item() == pytest.approx(0.01, rel=0.15)
    # negative control: PyTorch's default init is uniform with bound 1/sqrt(fan_in), std ~ 0.1 here
    G0, _ = nets()
    assert linears(G0)[1].weight.std().item() > 0.05 and torch.count_nonzero(linears(G0)[1].bias) > 0


def test_orthogonal_init_with_a_gain():
    G, _ = nets("arch.init=orthogonal", "arch.init_gain=0.8")
    w = linears(G)[1].weight  # square: W W^T = gain^2 I
    assert torch.allclose(w @ w.T, 0.64 * torch.eye(32), atol=1e-5)


def test_orthogonal_init_reaches_a_spectrally_normalised_layer():
    _, D = nets("arch.init=orthogonal", "arch.d.spectral_norm=true")
    raw = D.net[0].parametrizations.weight.original  # 64 x 2: orthonormal columns
    assert torch.allclose(raw.T @ raw, torch.eye(2), atol=1e-5)


def test_d_input_scale_and_softplus_output():
    _, D = nets("arch.d.in_scale=0.25")
    _, plain = nets()
    x = torch.randn(16, 2)
    assert torch.allclose(D(x), plain(x / 4), atol=1e-6)  # the same weights (same seed) on a quarter of x
    _, soft = nets("arch.d_out=softplus")
    out = soft(x)
    assert (out > 0).all() and torch.allclose(out, torch.nn.functional.softplus(plain(x)), atol=1e-6)


def test_sgd_is_plain_sgd_with_momentum_as_configured():
    cfg = compose_fast(*SMALL, "optim=sgd", "optim.g.momentum=0.5")
    assert (cfg.optim.g.name, cfg.optim.g.lr, cfg.optim.d.momentum) == ("sgd", 3e-3, 0.0)
    p = torch.nn.Parameter(torch.tensor([1.0]))
    opt = make_optimizer([p], cfg.optim.g)
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["momentum"] == 0.5
    for _ in range(2):  # two steps of gradient 1: 1 - lr, then 1 - lr - lr * (1 + 0.5)
        opt.zero_grad()
        p.sum().backward()
        opt.step()
    assert p.item() == pytest.approx(1 - 3e-3 - 3e-3 * 1.5, abs=1e-7)  # float32


@pytest.mark.parametrize("overrides, words", [
    (["optim=sgd", "optim.d.momentum=1"], "optim.d.momentum must be in [0, 1), got 1.0"),
    (["arch.d.in_scale=0"], "arch.d.in_scale must be > 0"),
    (["arch.init_gain=-1"], "arch.init_gain must be > 0"),
    (["arch.d_out=sigmoid"], "arch.d_out: 'sigmoid' is not allowed"),
    (["arch.d.out=softplus"], "arch.d.out: 'softplus' is not allowed"),
    (["metrics.min_mode_count=0"], "metrics.min_mode_count must be >= 1"),
])
def test_bad_toy_settings_are_refused_in_one_line(overrides, words):
    from ganzoo.errors import ConfigError
    with pytest.raises(ConfigError, match=re.escape(words)):
        compose_fast(*SMALL, *overrides)


# ---------------------------------------------------------------- the experiments compose to their sources
def test_microbatch_toy_is_d2gans_released_toy():
    c = compose_fast("experiment=microbatch_toy", "device=cpu")
    assert (c.dataset.modes, c.dataset.radius) == (8, 2.0)
    assert c.dataset.std == pytest.approx(math.sqrt(0.02), abs=1e-6)  # covariance 0.02 I
    a = c.arch
    assert (a.z_dim, list(a.g.hidden), list(a.d.hidden), a.d_out, a.init, a.init_std) == \
        (256, [128, 128], [128], "softplus", "normal", 0.01)
    assert (c.optim.g.name, c.optim.g.lr, list(c.optim.g.betas), c.batch_size, c.steps) == \
        ("adam", 2e-4, [0.5, 0.999], 512, 25_000)
    assert (c.method.K, c.method.alpha_act, c.method.reading) == (8, "sigmoid", "additive")


@pytest.mark.parametrize("name, data", [
    ("fargan_ring", {"radius": 7.0711, "std": 0.014142}),       # 10 x unit circle / 1.414, 0.02 / 1.414
    ("fargan_grid", {"spacing": 7.0711, "std": 0.17678}),       # 10 x 2 / 2.828, 10 x 0.05 / 2.828
    ("fargan_gaussian", {"n": 200, "std": 1.0}),
])
def test_fargan_toys_follow_the_released_code_of_their_reference(name, data):
    c = compose_fast(f"experiment={name}", "device=cpu")
    for key, value in data.items():
        assert getattr(c.dataset, key) == pytest.approx(value)
    for player in (c.optim.g, c.optim.d):
        assert (player.name, player.lr, player.momentum) == ("sgd", 3e-3, 0.0)
    assert (c.arch.name, c.arch.z_dim, list(c.arch.d.hidden), c.arch.init) == ("fargan_toy", 2, [64, 64, 64], "default")
    assert (c.method.f, c.method.N0, c.batch_size) == (8, 16, 64)
    adam = compose_fast(f"experiment={name}_adam", "device=cpu")  # today's setting, kept by name
    assert (adam.optim.g.name, adam.optim.g.lr) == ("adam", 3e-3)


def test_aw_ring_takes_unrolled_gans_nets_on_the_unit_circle():
    c = compose_fast("experiment=aw_ring", "device=cpu")
    assert (c.dataset.radius, c.dataset.std, c.loss.name, c.method.name) == (1.0, 0.02, "ns", "aw")
    a = c.arch
    assert (a.name, a.z_dim, list(a.g.hidden), list(a.d.hidden), a.d.in_scale, a.init, a.init_gain) == \
        ("unrolled_toy", 256, [128, 128], [128], 0.25, "orthogonal", 0.8)
    assert (c.optim.g.lr, c.optim.d.lr, list(c.optim.d.betas)) == (1e-4, 1e-4, [0.5, 0.999])


def test_stackelberg_single_generator_baselines_are_the_papers_widths():
    wide = compose_fast("experiment=stackelberg_toy", "method.I=1", "arch=stackelberg_toy_wide", "device=cpu")
    deep = compose_fast("experiment=stackelberg_toy", "method.I=1", "arch=stackelberg_toy_deep", "device=cpu")
    small = compose_fast("experiment=stackelberg_toy", "device=cpu")
    assert list(wide.arch.g.hidden) == [128] and list(deep.arch.g.hidden) == [128, 256, 512, 1024]
    for c in (wide, deep):  # the same D as the I generators face
        assert (list(c.arch.d.hidden), c.arch.d.act, c.arch.g.out, c.arch.z_dim) == \
            (list(small.arch.d.hidden), small.arch.d.act, "tanh", small.arch.z_dim)
