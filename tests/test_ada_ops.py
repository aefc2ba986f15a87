"""ADA's bgc ops (ganzoo/augment/ada_ops.py) against values computed by hand: where a pixel lands, what a
colour op makes of a known pixel, that p = 0 changes nothing bit for bit, that the draw is a pure function
of the generator's state whatever p is, and that each op applies at the rate p asks for."""
import math

import pytest
import torch

from ganzoo.augment.ada_ops import ALL, OPS, apply, draw, subset


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def forced(n, **ops):
    """Params for n images with only the named ops on, at the given values."""
    params = draw(n, torch.tensor(0.0), gen(), "cpu")
    for op, value in ops.items():
        params[op + "_on"] = torch.ones(n, dtype=torch.bool)
        params[op] = torch.as_tensor(value, dtype=torch.float32).expand_as(params[op]).clone()
    return params


def pixel(*rgb):
    return torch.tensor(rgb, dtype=torch.float32).view(1, 3, 1, 1)


def bits(t):
    return t.contiguous().view(torch.int32)


# ---- p = 0 and off images: bit for bit

def test_p0_is_bit_identical():
    x = torch.rand(4, 3, 8, 8, generator=gen(1)) * 2 - 1
    x[0, 0, 0, 0] = -0.0  # a sign an identity matrix product would lose (1 * -0 + 0 * g = +0)
    params = draw(4, torch.tensor(0.0), gen(), "cpu")
    assert not any(params[op + "_on"].any() for op in ALL)
    out = apply(x, params)
    assert torch.equal(bits(out), bits(x))


@pytest.mark.parametrize("channels", [1, 3])
def test_images_with_every_op_off_are_bit_identical_in_a_mixed_batch(channels):
    x = torch.rand(32, channels, 8, 8, generator=gen(2)) * 2 - 1
    params = draw(32, torch.tensor(0.1), gen(3), "cpu")
    off = ~torch.stack([params[op + "_on"] for op in ALL]).any(0)
    assert 0 < off.sum() < 32
    out = apply(x, params)
    assert torch.equal(bits(out[off]), bits(x[off]))
    assert not torch.allclose(out[~off], x[~off])


# ---- blit and geometric ops: where pixels land

def test_rotate90_moves_a_known_pixel():
    x = torch.arange(16, dtype=torch.float32).view(1, 1, 4, 4)
    out = apply(x, forced(1, rotate90=1))
    # (x, y) -> (-y, x) about the centre: the top-left pixel (0, 0) lands top-right, out[i, j] = in[3 - j, i]
    assert out[0, 0, 0, 3] == pytest.approx(x[0, 0, 0, 0].item(), abs=1e-5)
    expected = torch.stack([torch.stack([x[0, 0, 3 - j, i] for j in range(4)]) for i in range(4)])
    torch.testing.assert_close(out[0, 0], expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(apply(x, forced(1, rotate90=2)), x.flip(2, 3), atol=1e-5, rtol=0)
    # the general rotation by pi / 2 is the same map
    torch.testing.assert_close(apply(x, forced(1, rotate_pre=math.pi / 2)), out, atol=1e-4, rtol=0)


def test_xflip_mirrors():
    x = torch.rand(2, 3, 6, 6, generator=gen(4))
    torch.testing.assert_close(apply(x, forced(2, xflip=1)), x.flip(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(apply(x, forced(2, xflip=0)), x, atol=1e-5, rtol=0)  # i = 0: on, no flip


def _reflect(q, size):
    """The index grid_sample's reflection reads for index q: mirrored about the image's edge."""
    q = -q - 1 if q < 0 else q
    return 2 * size - 1 - q if q >= size else q


@pytest.mark.parametrize("dx,dy", [(2, 1), (-2, -1)])
def test_integer_translation_moves_by_whole_pixels_and_reflects(dx, dy):
    x = torch.rand(1, 1, 16, 16, generator=gen(5))
    out = apply(x, forced(1, xint=[dx / 16, dy / 16]))
    assert out[0, 0, 3 + dy, 5 + dx] == pytest.approx(x[0, 0, 3, 5].item(), abs=1e-5)
    expected = torch.tensor([[x[0, 0, _reflect(i - dy, 16), _reflect(j - dx, 16)].item() for j in range(16)]
                             for i in range(16)])
    torch.testing.assert_close(out[0, 0], expected, atol=1e-5, rtol=0)
    if dx > 0:  # what came in at the left edge is the mirror image: column 0 reads 1, column 1 reads 0
        torch.testing.assert_close(out[0, 0, dy:, :2], x[0, 0, :16 - dy, :2].flip(1), atol=1e-5, rtol=0)
    # a fraction of the size is rounded to whole pixels, and the fractional translation agrees
    torch.testing.assert_close(apply(x, forced(1, xint=[(dx + 0.4) / 16, (dy - 0.3) / 16])), out)
    torch.testing.assert_close(apply(x, forced(1, xfrac=[dx / 16, dy / 16])), out, atol=1e-5, rtol=0)


# ---- colour ops: a known pixel's value

def test_brightness_adds_the_value():
    x = pixel(0.5, 0.1, -0.3)
    torch.testing.assert_close(apply(x, forced(1, brightness=0.3)), pixel(0.8, 0.4, 0.0))
    grey = torch.full((1, 1, 2, 2), -0.25)
    torch.testing.assert_close(apply(grey, forced(1, brightness=0.3)), grey + 0.3)


def test_contrast_scales_about_the_middle_of_the_range():
    x = pixel(0.5, 0.1, -0.3)
    torch.testing.assert_close(apply(x, forced(1, contrast=1.5)), pixel(0.75, 0.15, -0.45))
    grey = torch.full((1, 1, 2, 2), -0.4)
    torch.testing.assert_close(apply(grey, forced(1, contrast=0.5)), grey * 0.5)
    # brightness comes first: 2 * (x + 0.2)
    torch.testing.assert_close(apply(x, forced(1, brightness=0.2, contrast=2.0)), pixel(1.4, 0.6, -0.2))


def test_luma_flip():
    # I - 2 v v^T: x - (2 / 3)(r + g + b) on every channel; a grey pixel a becomes -a
    torch.testing.assert_close(apply(pixel(0.5, 0.1, -0.3), forced(1, lumaflip=1)), pixel(0.3, -0.1, -0.5))
    torch.testing.assert_close(apply(pixel(0.6, 0.6, 0.6), forced(1, lumaflip=1)), pixel(-0.6, -0.6, -0.6))
    grey = torch.full((1, 1, 2, 2), 0.6)
    torch.testing.assert_close(apply(grey, forced(1, lumaflip=1)), -grey)


def test_hue_rotation():
    grey_rgb = torch.rand(1, 1, 4, 4, generator=gen(6)).expand(1, 3, 4, 4) * 2 - 1
    torch.testing.assert_close(apply(grey_rgb, forced(1, hue=1.0)), grey_rgb, atol=1e-6, rtol=0)
    grey = grey_rgb[:, :1]
    assert torch.equal(apply(grey, forced(1, hue=1.0)), grey)
    # a third of a turn about (1, 1, 1) takes the red axis to green: (r, g, b) -> (b, r, g)
    torch.testing.assert_close(apply(pixel(0.5, 0.1, -0.3), forced(1, hue=2 * math.pi / 3)),
                               pixel(-0.3, 0.5, 0.1))


def test_saturation():
    x = pixel(0.5, 0.1, -0.3)  # mean 0.1
    torch.testing.assert_close(apply(x, forced(1, saturation=0.0)), pixel(0.1, 0.1, 0.1))
    torch.testing.assert_close(apply(x, forced(1, saturation=2.0)), pixel(0.9, 0.1, -0.7))
    grey = torch.full((1, 1, 2, 2), 0.3)
    assert torch.equal(apply(grey, forced(1, saturation=3.0)), grey)


# ---- the draw

def test_same_generator_state_same_params():
    a = draw(6, torch.tensor(0.4), gen(7), "cpu")
    b = draw(6, torch.tensor(0.4), gen(7), "cpu")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    c = draw(6, torch.tensor(0.4), gen(8), "cpu")
    assert not torch.equal(a["brightness"], c["brightness"])


def test_draw_moves_the_generator_alike_whatever_p_and_groups():
    states, params = [], []
    for p, groups in [(0.0, "bgc"), (1.0, "bgc"), (0.3, "c")]:
        g = gen(9)
        params.append(draw(5, torch.tensor(p), g, "cpu", groups))
        states.append(g.get_state())
    assert all(torch.equal(s, states[0]) for s in states)
    lo, hi, c_only = params
    for op in ALL:
        assert torch.equal(lo[op], hi[op]) and torch.equal(lo[op], c_only[op])  # values do not depend on p
        assert not lo[op + "_on"].any() and hi[op + "_on"].all()
        assert op in OPS["c"] or not c_only[op + "_on"].any()


def test_global_draw_sliced_per_rank_matches_the_global_batch():
    """Each rank draws the global batch from the same generator state and keeps its rows: its params and
    its augmented images are the global ones' rows."""
    x = torch.rand(8, 3, 8, 8, generator=gen(10)) * 2 - 1
    whole = draw(8, torch.tensor(0.7), gen(11), "cpu")
    out = apply(x, whole)
    for rank in range(2):
        rows = torch.arange(4 * rank, 4 * rank + 4)
        mine = subset(draw(8, torch.tensor(0.7), gen(11), "cpu"), rows)
        assert all(torch.equal(mine[k], whole[k][rows]) for k in whole)
        torch.testing.assert_close(apply(x[rows], mine), out[rows], atol=1e-6, rtol=0)


@pytest.mark.parametrize("channels", [1, 3])
def test_apply_is_differentiable_with_every_op_on(channels):
    params = draw(4, torch.tensor(1.0), gen(12), "cpu")
    assert all(params[op + "_on"].all() for op in ALL)
    x = (torch.rand(4, channels, 8, 8, generator=gen(13)) * 2 - 1).requires_grad_()
    apply(x, params).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_values_follow_the_papers_distributions():
    v = draw(20000, torch.tensor(1.0), gen(15), "cpu")
    ln2 = math.log(2)
    for op, std in [("scale", 0.2 * ln2), ("aniso", 0.2 * ln2), ("contrast", 0.5 * ln2), ("saturation", ln2)]:
        assert v[op].log().mean().abs() < 0.05 * std and abs(v[op].log().std() / std - 1) < 0.05, op  # lognormal
    for op, std in [("brightness", 0.2), ("xfrac", 0.125)]:
        assert v[op].mean().abs() < 0.05 * std and abs(v[op].std() / std - 1) < 0.05, op
    for op, half in [("xint", 0.125), ("rotate_pre", math.pi), ("rotate_post", math.pi), ("hue", math.pi)]:
        assert v[op].abs().max() <= half and v[op].abs().max() > 0.99 * half, op  # uniform on (-half, half)
        assert abs(v[op].abs().mean() / half - 0.5) < 0.02, op
    for op, k in [("xflip", 2), ("rotate90", 4), ("lumaflip", 2)]:
        counts = torch.bincount(v[op].long(), minlength=k)
        assert len(counts) == k and ((counts / 20000 - 1 / k).abs() < 0.02).all(), op


@pytest.mark.parametrize("p", [0.5, 0.2])
def test_each_op_applies_at_rate_p(p):
    n = 20000
    params = draw(n, torch.tensor(p), gen(14), "cpu")
    p_rot = 1 - math.sqrt(1 - p)
    for op in ALL:
        rate = params[op + "_on"].float().mean().item()
        assert abs(rate - (p_rot if op.startswith("rotate_") else p)) < 0.03, (op, rate)
    either = (params["rotate_pre_on"] | params["rotate_post_on"]).float().mean().item()
    assert abs(either - p) < 0.03
