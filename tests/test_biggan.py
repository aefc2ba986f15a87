"""BigGAN's CIFAR (32x32) and 64x64 nets (ganzoo/nets/biggan.py): composed through Hydra from
conf/arch/biggan.yaml, the source's parameter counts at full width, class conditioning, gradients, spectral
norm where ajbrock/BigGAN-PyTorch has it, and the config checks of arch.biggan. Behaviour is checked at
width 8 (the blocks and gradient paths do not depend on width; full widths cost seconds of CPU)."""
import pickle
import re

import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils import parametrize

from conftest import compose_fast, composed
from ganzoo.config import data_shape, load_train_config
from ganzoo.errors import ConfigError
from ganzoo.nets.biggan import Attention, biggan
from ganzoo.nets.schemas import NETS

SLIM = ("arch.g_width=8", "arch.d_width=8")
B = 4


def config(*overrides, dataset="image_folder", resolution=32, channels=3):
    return compose_fast("arch=biggan", f"dataset={dataset}", f"dataset.resolution={resolution}",
                        f"dataset.channels={channels}", *overrides)


def nets(cfg, num_classes, seed=0):
    make_g, make_d = biggan(cfg.arch, data_shape(cfg.dataset), num_classes)
    torch.manual_seed(seed)
    return make_g(), make_d()


def labels(n, num_classes):
    return torch.arange(n) % num_classes  # every row a different class where it can


def test_composes_through_hydra_into_the_record():
    cfg = load_train_config(composed("arch=biggan", "dataset=image_folder"))
    arch = cfg.arch
    assert (arch.name, arch.net, arch.z_dim, arch.spectral_norm, arch.init, arch.init_std) == \
           ("biggan", "biggan", 128, True, "normal", 0.02)
    assert (arch.biggan.shared, arch.biggan.hier, arch.biggan.g_attn, arch.biggan.d_attn,
            arch.biggan.g_spectral_norm) == (False, False, [], [], True)
    record = NETS["biggan"]
    assert record.conditional and record.resolutions == (32, 64) and record.load() is biggan
    cfg = config(*SLIM, resolution=64)  # image_folder's own size
    make_g, make_d = record.load()(cfg.arch, data_shape(cfg.dataset), 0)
    G, D = make_g(), make_d()
    x = G(torch.randn(2, 128))
    assert x.shape == (2, 3, 64, 64) and D(x).shape == (2,)


def test_parameter_counts_are_the_sources():
    """BigGAN-PyTorch's own Generator and Discriminator (BigGAN.py at ajbrock/BigGAN-PyTorch's HEAD) built with
    scripts/launch_cifar_ema.sh's settings and utils.py's defaults (G_ch = D_ch = 64, dim_z 128, G_shared and
    hier off, --G_attn 0 --D_attn 0, D_wide) for CIFAR-10 (n_classes 10) have 4,304,387 and 4,207,361
    parameters (train.py's "Number of params in G: ... D: ...", counted by building them); at resolution 64 with
    10 classes, 32,118,531 and 19,552,961. Neither the README nor the paper gives CIFAR counts."""
    for resolution, g_count, d_count in ((32, 4_304_387, 4_207_361), (64, 32_118_531, 19_552_961)):
        cfg = config(dataset="cifar10", resolution=resolution)
        G, D = nets(cfg, 10)
        assert sum(p.numel() for p in G.parameters()) == g_count, resolution
        assert sum(p.numel() for p in D.parameters()) == d_count, resolution


@pytest.mark.parametrize("resolution, channels, num_classes",
                         [(32, 3, 10), (32, 1, 0), (64, 3, 0), (64, 1, 10)])
def test_shapes_range_and_every_parameter_gets_a_gradient(resolution, channels, num_classes):
    cfg = config(*SLIM, resolution=resolution, channels=channels)
    G, D = nets(cfg, num_classes)
    y = labels(B, num_classes) if num_classes else None
    fake = G(torch.randn(B, 128), y)
    assert fake.shape == (B, channels, resolution, resolution) and fake.abs().max() <= 1
    real = torch.rand(B, channels, resolution, resolution) * 2 - 1
    d_fake, d_real = D(fake, y), D(real, y)
    assert d_fake.shape == d_real.shape == (B,)
    # the baseline's loss (test_arch's): the hinge's margin leaves G no gradient when D starts far from 0
    (F.softplus(d_fake).mean() + F.softplus(-d_real).mean()).backward()
    for player, net in (("G", G), ("D", D)):
        for name, p in net.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), f"{player}.{name} got no gradient"
            assert p.grad.abs().sum() > 0, f"{player}.{name} got a zero gradient"
    D.eval()
    with torch.no_grad():
        assert torch.equal(D(real, y), D.logit(D.features(real), y))
        assert D.features(real).shape == (B, 8 * (4 if resolution == 32 else 16))  # the last block: 4ch or 16ch


def test_a_class_label_changes_g_and_d():
    cfg = config(*SLIM)
    G, D = nets(cfg, 10)
    for m in G.modules():  # N(0, 0.02) per-class gains differ little at init: make the classes' differ clearly
        if isinstance(m, torch.nn.Embedding):
            torch.nn.init.normal_(m.weight)
    G.eval(), D.eval()  # the running statistics: a row's output depends on its own label only
    z, x = torch.randn(B, 128), torch.rand(B, 3, 32, 32) * 2 - 1
    y0, y1 = torch.zeros(B, dtype=torch.long), torch.ones(B, dtype=torch.long)
    with torch.no_grad():
        assert (G(z, y0) - G(z, y1)).abs().amax(dim=(1, 2, 3)).min() > 1e-3
        assert (D(x, y0) - D(x, y1)).abs().min() > 0
        h = D.features(x)  # the projection is what a label adds: linear(h) + <embed(y), h>
        assert torch.allclose(D.logit(h, y1) - D.logit(h), (D.embed(y1) * h).sum(1))
    with pytest.raises(ValueError, match="pass y"):
        G(z)


def test_unconditional_nets_take_no_label():
    cfg = config(*SLIM)
    G, D = nets(cfg, 0)
    assert D.embed is None and not any(isinstance(m, torch.nn.Embedding) for m in G.modules())
    x = G(torch.randn(B, 128))
    assert D(x).shape == (B,)
    with pytest.raises(ValueError, match="without y"):
        G(torch.randn(B, 128), labels(B, 10))


def test_spectral_norm_where_the_source_has_it():
    """G: every conv and linear layer, not its embeddings (BigGAN.py: G's which_embedding is a plain
    nn.Embedding); D: every conv, linear and embedding layer (SNConv2d, SNLinear, SNEmbedding)."""
    for opts in ([], ["arch.biggan.shared=true", "arch.biggan.hier=true", "arch.biggan.g_attn=[16]",
                      "arch.biggan.d_attn=[8]"]):
        G, D = nets(config(*SLIM, *opts), 10)
        for net, normed, plain in ((G, (torch.nn.Conv2d, torch.nn.Linear), (torch.nn.Embedding,)),
                                   (D, (torch.nn.Conv2d, torch.nn.Linear, torch.nn.Embedding), ())):
            layers = [m for m in net.modules() if isinstance(m, normed)]
            assert layers and all(parametrize.is_parametrized(m, "weight") for m in layers)
            assert not any(parametrize.is_parametrized(m) for m in net.modules() if isinstance(m, plain))
        assert any(isinstance(m, torch.nn.Linear) for m in G.blocks.modules()) == bool(opts)  # shared: linear BN gains
    G, D = nets(config(*SLIM, "arch.biggan.g_spectral_norm=false", "arch.spectral_norm=false"), 10)
    assert not any(parametrize.is_parametrized(m) for m in [*G.modules(), *D.modules()])


def test_hierarchical_z_and_attention():
    cfg = config(*SLIM, "arch.biggan.shared=true", "arch.biggan.shared_dim=16", "arch.biggan.hier=true",
                 "arch.biggan.g_attn=[16]", "arch.biggan.d_attn=[16]")
    G, D = nets(cfg, 10)
    assert G.linear.in_features == 32 and G.blocks[0].bn1.gain.in_features == 16 + 32  # 128 = 4 chunks of 32
    assert [type(a) is Attention for a in G.attn] == [False, True, False]
    assert [type(a) is Attention for a in D.attn] == [True, False, False, False]
    for m in [*G.modules(), *D.modules()]:  # the attention gain starts at 0; give its convs a gradient
        if isinstance(m, Attention):
            m.gamma.data.fill_(0.5)
    z, y = torch.randn(B, 128), labels(B, 10)
    fake = G(z, y)
    D(fake, y).mean().backward()
    for name, p in [*G.named_parameters(), *D.named_parameters()]:
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    G.eval()
    with torch.no_grad():
        later = z.clone()
        later[:, 96:] = torch.randn(B, 32)  # the last block's chunk reaches its BNs only
        assert not torch.equal(G(z, y), G(later, y))


def test_factories_pickle_and_make_independent_nets():
    make_g, make_d = biggan(config(*SLIM).arch, (3, 32, 32), 10)
    make_g, make_d = pickle.loads(pickle.dumps(make_g)), pickle.loads(pickle.dumps(make_d))
    for make in (make_g, make_d):
        a, b = make(), make()
        pa, pb = list(a.parameters()), list(b.parameters())
        assert [p.shape for p in pa] == [p.shape for p in pb] and all(p is not q for p, q in zip(pa, pb))
        assert any(not torch.equal(p, q) for p, q in zip(pa, pb) if p.numel() > 1)


@pytest.mark.parametrize("scheme", ["normal", "orthogonal", "xavier", "default"])
def test_init_touches_weights_only(scheme):
    """The source's init_weights sets the weights of convs, linears and embeddings; biases and the output
    batchnorm keep PyTorch's defaults."""
    G, D = nets(config(f"arch.init={scheme}"), 10)
    conv = G.blocks[0].conv1.parametrizations.weight.original
    if scheme == "normal":
        gains = G.blocks[0].bn1.gain.weight.detach()  # the per-class BN gains: 1 + N(0, 0.02)
        assert abs(float(conv.detach().std()) - 0.02) < 1e-3 and abs(float(gains.std()) - 0.02) < 2e-3
    if scheme == "orthogonal":
        w = D.linear.parametrizations.weight.original
        assert torch.allclose(w @ w.T, torch.ones(1, 1), atol=1e-5)
    assert G.blocks[0].conv1.bias.abs().sum() > 0 and torch.equal(G.out_bn.weight, torch.ones(256))


@pytest.mark.parametrize("overrides, words", [
    (["arch.biggan.hier=true"], "arch.biggan.hier needs arch.biggan.shared=true"),
    (["arch.biggan.shared=true", "arch.biggan.hier=true", "arch.z_dim=126"],
     "arch.z_dim=126: with arch.biggan.hier at 32x32 z splits into 4 equal chunks"),
    (["arch.biggan.g_attn=[64]"], "arch.biggan.g_attn: 32x32 blocks end at sizes [8, 16, 32], not [64]"),
    (["arch.biggan.d_attn=[32]"], "arch.biggan.d_attn: 32x32 blocks end at sizes [16, 8], not [32]"),
    (["arch.biggan.g_attn=[16]", "arch.g_width=4"], "arch.biggan.g_attn needs arch.g_width >= 8"),
    (["arch.biggan.shared_dim=-1"], "arch.biggan.shared_dim must be >= 0"),
    (["dataset.resolution=48"], "arch=biggan supports 32x32, 64x64 images"),
])
def test_bad_biggan_values_are_one_line_errors(overrides, words):
    with pytest.raises(ConfigError, match=re.escape(words)) as err:
        config(*overrides)
    assert "\n" not in str(err.value)


def test_biggan_options_are_refused_for_other_nets():
    with pytest.raises(ConfigError, match=re.escape("arch.biggan: only net biggan reads these options")):
        compose_fast("arch=sngan_resnet", "dataset=cifar10", "arch.biggan.hier=true")
    compose_fast("arch=sngan_resnet", "dataset=cifar10")  # at their defaults they are no one's business
