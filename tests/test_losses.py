"""Loss families and gradient penalties against hand-computed values (METHODS.md, loss table).

Every expected number below is a literal worked out by hand (softplus(x) = log(1 + e^x)),
never a call to the torch function under test.
"""
import math

import pytest
import torch

from ganzoo.losses import LOSSES, get_loss, gp, r1, zgp

LOGITS = [-2.0, -0.5, 0.0, 1.5, 3.0]

# softplus(-l) = log(1 + e^-l) and softplus(l) = log(1 + e^l) at the LOGITS above
SP_NEG = [2.1269280110429727,   # log(1 + e^2)
          0.9740769841801067,   # log(1 + e^0.5)
          0.6931471805599453,   # log 2
          0.2014132779827524,   # log(1 + e^-1.5)
          0.04858735157374206]  # log(1 + e^-3)
SP_POS = [0.1269280110429725,   # log(1 + e^-2)
          0.4740769841801067,   # log(1 + e^-0.5)
          0.6931471805599453,   # log 2
          1.7014132779827524,   # log(1 + e^1.5)
          3.048587351573742]    # log(1 + e^3)

EXPECTED = {
    #            real r(l)                        fake f(l)                         gen g(l)
    "ns":      (SP_NEG,                           SP_POS,                           SP_NEG),
    "minimax": (SP_NEG,                           SP_POS,                           [-v for v in SP_POS]),
    "wgan":    ([2.0, 0.5, 0.0, -1.5, -3.0],      [-2.0, -0.5, 0.0, 1.5, 3.0],      [2.0, 0.5, 0.0, -1.5, -3.0]),
    "hinge":   ([3.0, 1.5, 1.0, 0.0, 0.0],        [0.0, 0.5, 1.0, 2.5, 4.0],        [2.0, 0.5, 0.0, -1.5, -3.0]),
    "lsgan":   ([4.5, 1.125, 0.5, 0.125, 2.0],    [2.0, 0.125, 0.0, 1.125, 4.5],    [4.5, 1.125, 0.5, 0.125, 2.0]),
}


def test_every_family_is_registered():
    assert set(LOSSES) == set(EXPECTED)
    for name in EXPECTED:
        assert get_loss(name).name == name


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("term_index, term", [(0, "real"), (1, "fake"), (2, "gen")])
def test_terms_match_hand_computed_values(name, term_index, term):
    fn = getattr(get_loss(name), term)
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 1e-6)):
        out = fn(torch.tensor(LOGITS, dtype=dtype))
        assert out.shape == (len(LOGITS),), "terms must be per-sample"
        assert out.dtype == dtype
        expected = torch.tensor(EXPECTED[name][term_index], dtype=dtype)
        assert torch.allclose(out, expected, atol=tol, rtol=0), (name, term, out.tolist())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_terms_keep_logit_shape(name):
    fam = get_loss(name)
    logits = torch.tensor(LOGITS).reshape(5, 1)
    for term in (fam.real, fam.fake, fam.gen):
        assert term(logits).shape == (5, 1)


def test_softplus_terms_are_stable_at_large_logits():
    ns = get_loss("ns")
    big = torch.tensor([-100.0, 100.0])
    # softplus(100) = 100 + log(1 + e^-100) = 100 to float precision; softplus(-100) ~ 3.7e-44
    assert torch.allclose(ns.real(big), torch.tensor([100.0, 0.0]), atol=1e-6)
    assert torch.allclose(ns.fake(big), torch.tensor([0.0, 100.0]), atol=1e-6)
    assert torch.isfinite(get_loss("minimax").gen(big)).all()


def test_term_gradients_match_hand_derivatives():
    """d/dl softplus(-l) = -sigmoid(-l); d/dl relu(1-l) = -1 if l<1 else 0; d/dl (l-1)^2/2 = l-1."""
    l = torch.tensor(LOGITS, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(get_loss("ns").gen(l).sum(), l)
    expected = [-1 / (1 + math.exp(v)) for v in LOGITS]  # -sigmoid(-l) = -1/(1+e^l)
    assert torch.allclose(g, torch.tensor(expected, dtype=torch.float64), atol=1e-12)

    (g,) = torch.autograd.grad(get_loss("hinge").real(l).sum(), l)
    assert g.tolist() == [-1.0, -1.0, -1.0, 0.0, 0.0]

    (g,) = torch.autograd.grad(get_loss("lsgan").fake(l).sum(), l)
    assert g.tolist() == LOGITS


# ----------------------------------------------------------------------------- penalties

W = [3.0, -4.0, 12.0]  # ||w||^2 = 169, ||w|| = 13


def _linear_disc(w):
    return lambda x: x @ w


def test_r1_linear_disc_is_squared_norm_of_w():
    w = torch.tensor(W, dtype=torch.float64)
    x = torch.randn(16, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    val = r1(x @ w, x)
    assert val.dim() == 0
    assert val.item() == pytest.approx(169.0, abs=1e-9)


def test_r1_quadratic_disc_is_mean_of_4_squared_norms():
    # D(x) = sum(x^2): grad = 2x, ||grad||^2 = 4 ||x||^2
    x = torch.tensor([[1.0, 2.0], [0.0, -3.0], [0.5, 0.5]], dtype=torch.float64, requires_grad=True)
    val = r1((x ** 2).sum(1), x)
    expected = (4 * (1 + 4) + 4 * 9 + 4 * 0.5) / 3  # = 58/3
    assert val.item() == pytest.approx(expected, abs=1e-12)


def test_r1_on_image_shaped_inputs_sums_over_all_pixels():
    x = torch.arange(8, dtype=torch.float64).reshape(2, 1, 2, 2).requires_grad_(True)
    logits = (x ** 2).flatten(1).sum(1, keepdim=True)  # (B, 1) logits like a conv D
    val = r1(logits, x)
    # sample 0: 4*(0+1+4+9) = 56; sample 1: 4*(16+25+36+49) = 504; mean = 280
    assert val.item() == pytest.approx(280.0, abs=1e-9)


def test_r1_is_differentiable_wrt_disc_parameters():
    w = torch.tensor(W, dtype=torch.float64, requires_grad=True)
    x = torch.randn(8, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
    val = r1(x @ w, x)
    (gw,) = torch.autograd.grad(val, w)  # fails if the input gradient was taken without create_graph
    assert torch.allclose(gw, 2 * torch.tensor(W, dtype=torch.float64), atol=1e-12)


def test_gp_and_zgp_linear_disc():
    w = torch.tensor(W, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    real = torch.randn(32, 3, dtype=torch.float64, generator=g)
    fake = torch.randn(32, 3, dtype=torch.float64, generator=g)
    assert gp(_linear_disc(w), real, fake).item() == pytest.approx((13.0 - 1.0) ** 2, abs=1e-9)  # 144
    assert zgp(_linear_disc(w), real, fake).item() == pytest.approx(169.0, abs=1e-9)
    # a unit-norm critic has zero WGAN-GP
    unit = torch.tensor([0.6, 0.8, 0.0], dtype=torch.float64)
    assert gp(_linear_disc(unit), real, fake).item() == pytest.approx(0.0, abs=1e-9)


def test_gp_and_zgp_are_differentiable_wrt_disc_parameters():
    g = torch.Generator().manual_seed(2)
    real = torch.randn(8, 3, dtype=torch.float64, generator=g)
    fake = torch.randn(8, 3, dtype=torch.float64, generator=g)
    w = torch.tensor(W, dtype=torch.float64, requires_grad=True)
    (gw,) = torch.autograd.grad(gp(_linear_disc(w), real, fake), w)
    # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w|| = 2 * 12/13 * w
    assert torch.allclose(gw, (24.0 / 13.0) * torch.tensor(W, dtype=torch.float64), atol=1e-9)
    w = torch.tensor(W, dtype=torch.float64, requires_grad=True)
    (gw,) = torch.autograd.grad(zgp(_linear_disc(w), real, fake), w)
    assert torch.allclose(gw, 2 * torch.tensor(W, dtype=torch.float64), atol=1e-9)


def test_gp_and_zgp_do_not_backprop_into_real_or_fake():
    real = torch.ones(4, 3, dtype=torch.float64, requires_grad=True)
    fake = torch.zeros(4, 3, dtype=torch.float64, requires_grad=True)
    quad = lambda x: (x ** 2).sum(1)  # noqa: E731
    for pen in (gp, zgp):
        val = pen(quad, real, fake)
        val.backward()
        assert real.grad is None and fake.grad is None, "interpolates must be detached from G"


def _quad_penalties_by_hand(real, fake, ts):
    """D(x) = sum(x^2): grad at x_hat = 2 x_hat, x_hat = t*real + (1-t)*fake, per-sample t."""
    gps, zgps = [], []
    for r, f, t in zip(real, fake, ts):
        xh = [t * a + (1 - t) * b for a, b in zip(r, f)]
        norm2 = sum((2 * v) ** 2 for v in xh)
        zgps.append(norm2)
        gps.append((math.sqrt(norm2) - 1) ** 2)
    return sum(gps) / len(gps), sum(zgps) / len(zgps)


def test_gp_and_zgp_quadratic_disc_reproduce_interpolates_from_generator():
    real_l = [[1.0, 2.0], [-1.0, 0.5], [3.0, -2.0], [0.0, 0.0]]
    fake_l = [[0.0, -1.0], [2.0, 2.0], [-0.5, 1.0], [1.0, 1.0]]
    real = torch.tensor(real_l, dtype=torch.float64)
    fake = torch.tensor(fake_l, dtype=torch.float64)
    quad = lambda x: (x ** 2).sum(1)  # noqa: E731
    # the draws the penalty will make: one uniform t per sample, in sample order
    ts = torch.rand(4, generator=torch.Generator().manual_seed(123), dtype=torch.float64).tolist()
    assert len(set(ts)) == 4
    gp_hand, zgp_hand = _quad_penalties_by_hand(real_l, fake_l, ts)

    gen = torch.Generator().manual_seed(123)
    assert gp(quad, real, fake, generator=gen).item() == pytest.approx(gp_hand, abs=1e-9)
    gen = torch.Generator().manual_seed(123)
    assert zgp(quad, real, fake, generator=gen).item() == pytest.approx(zgp_hand, abs=1e-9)

    # t weights REAL (x_hat = t*real + (1-t)*fake): the check above tells the two orders apart
    swapped_gp, swapped_zgp = _quad_penalties_by_hand(fake_l, real_l, ts)
    assert abs(swapped_zgp - zgp_hand) > 1e-3 and abs(swapped_gp - gp_hand) > 1e-3


def test_interpolation_t_is_per_sample_for_image_shaped_inputs():
    # (B, C, H, W): one t per sample broadcast over all pixels, not one t per pixel
    real = torch.ones(3, 1, 2, 2, dtype=torch.float64)
    fake = torch.zeros(3, 1, 2, 2, dtype=torch.float64)
    ts = torch.rand(3, generator=torch.Generator().manual_seed(7), dtype=torch.float64).tolist()
    quad = lambda x: (x ** 2).flatten(1).sum(1)  # noqa: E731
    val = zgp(quad, real, fake, generator=torch.Generator().manual_seed(7))
    # x_hat = t everywhere (4 pixels): ||2 x_hat||^2 = 16 t^2
    expected = sum(16 * t * t for t in ts) / 3
    assert val.item() == pytest.approx(expected, abs=1e-9)


def test_penalties_with_parametric_disc_train_its_weights():
    """A tiny nn.Module D: one optimizer step on zgp must move its weights (gradients flow)."""
    torch.manual_seed(0)
    disc = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    real = torch.randn(16, 2)
    fake = torch.randn(16, 2)
    for pen in (gp, zgp):
        disc.zero_grad()
        pen(disc, real, fake).backward()
        # w1, b1, w2 shape grad_x D (the output bias b2 does not, so it may get no gradient)
        grads = [p.grad for p in disc.parameters()][:3]
        assert all(gr is not None and gr.abs().sum() > 0 for gr in grads)
    x = real.clone().requires_grad_(True)
    disc.zero_grad()
    r1(disc(x), x).backward()
    assert disc[0].weight.grad.abs().sum() > 0
