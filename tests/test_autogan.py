"""arch=autogan (ganzoo/nets/autogan.py): AutoGAN-top1's G and its SN-GAN D, composed through Hydra as
`ganzoo train` composes them. Behaviour is checked at base width 8 (shapes and gradient paths do not depend
on width); the parameter counts at the source's widths."""
import math

import pytest
import torch
import torch.nn.functional as F

from conftest import compose_fast, composed
from ganzoo.config import data_shape
from ganzoo.nets.build import build_nets

SLIM = ("arch.g_width=8", "arch.d_width=8")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def nets(channels, resolution, *overrides):
    cfg = compose_fast("arch=autogan", "dataset=image_folder", f"dataset.channels={channels}",
                       f"dataset.resolution={resolution}", *overrides)
    make_g, make_d = build_nets(cfg.arch, data_shape(cfg.dataset))
    torch.manual_seed(0)
    return cfg, make_g(), make_d()


def count(net):
    return sum(p.numel() for p in net.parameters())


def test_composes_with_the_source_settings():
    arch = composed("arch=autogan", "dataset=image_folder").arch
    assert (arch.name, arch.net, arch.type) == ("autogan", "autogan", "conv")
    # exps/autogan_cifar10_a.sh: --latent_dim 128 --gf_dim 256 --df_dim 128 --d_spectral_norm True
    assert (arch.z_dim, arch.g_width, arch.d_width, arch.spectral_norm) == (128, 256, 128, True)
    assert arch.init == "default"  # the nets start with the source's init (see below)


@pytest.mark.parametrize("channels, resolution", [(3, 32), (1, 32), (3, 48), (1, 48)])
def test_shapes_range_and_every_parameter_learns(channels, resolution):
    cfg, G, D = nets(channels, resolution, *SLIM)
    fake = G(torch.randn(4, cfg.arch.z_dim))
    assert fake.shape == (4, channels, resolution, resolution)
    assert fake.abs().max() <= 1
    real = torch.rand(4, channels, resolution, resolution) * 2 - 1
    d_fake, d_real = D(fake), D(real)
    assert d_fake.shape == d_real.shape == (4,)
    (F.softplus(d_fake).mean() + F.softplus(-d_real).mean()).backward()
    for player, net in (("G", G), ("D", D)):
        for name, p in net.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), f"{player}.{name} got no gradient"
            assert p.grad.abs().sum() > 0, f"{player}.{name} got a zero gradient"


def test_d_forward_is_logit_of_features():
    _, _, D = nets(3, 32, *SLIM)
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    D.eval()  # a training forward runs a power iteration, so two calls would see different weights
    with torch.no_grad():
        h = D.features(x)
        assert h.shape == (3, 8)
        assert torch.equal(D(x), D.logit(h))


@pytest.mark.parametrize("resolution, g_params", [(32, 4_405_251), (48, 5_065_731)])
def test_parameter_counts_at_the_source_widths(resolution, g_params):
    # counted on the source's own classes (VITA-Group/AutoGAN, models/autogan_cifar10_a.py Generator and
    # Discriminator, with exps/autogan_cifar10_a.sh's and autogan_cifar10_a2stl10.sh's arguments: latent_dim
    # 128, gf_dim 256, df_dim 128, bottom_width 4 / 6); the paper gives no counts. Spectral norm adds buffers only.
    _, G, D = nets(3, resolution)
    assert count(G) == g_params
    assert count(D) == 1_053_824


def test_starts_from_the_source_init():
    """train.py's weights_init with --init_type xavier_uniform: Glorot-uniform (gain 1) on conv weights only,
    so the dense and linear layers and every bias keep PyTorch's init; BN scale N(1, 0.02), shift 0."""
    _, G, D = nets(3, 32, *SLIM)
    convs = [m for net in (G, D) for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    for m in convs:
        w = m.parametrizations.weight.original if hasattr(m, "parametrizations") else m.weight
        fan_in, fan_out = w.shape[1] * w[0, 0].numel(), w.shape[0] * w[0, 0].numel()
        assert w.abs().max() <= math.sqrt(6 / (fan_in + fan_out))
        assert m.bias.abs().max() > 0
    assert G.l1.bias.abs().max() > 0
    assert not torch.equal(G.bn.weight, torch.ones_like(G.bn.weight)) and (G.bn.weight - 1).abs().max() < 0.2
    assert torch.equal(G.bn.bias, torch.zeros_like(G.bn.bias))


def test_spectral_norm_on_every_d_layer_only():
    _, G, D = nets(3, 32, *SLIM)
    layers = [m for m in D.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert len(layers) == 11  # 3 + 3 + 2 + 2 convs (SN-GAN's D) and the last linear layer
    assert all(torch.nn.utils.parametrize.is_parametrized(m, "weight") for m in layers)
    assert not any(torch.nn.utils.parametrize.is_parametrized(m) for m in G.modules())
