"""Every image arch in conf/arch, composed through Hydra as `ganzoo train` does: for each image size it
supports, G makes images of the data's shape in [-1, 1], D returns one logit per image, and one backward
pass reaches every parameter of both; a size it does not support fails config validation in one line,
before torch is imported."""
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml
from hydra import initialize_config_module
from hydra.core.global_hydra import GlobalHydra

from conftest import compose_fast, composed
import ganzoo.conf
from ganzoo.config import MLPArch, compose_config, data_shape, load_train_config
from ganzoo.errors import ConfigError
from ganzoo.nets.build import build_nets
from ganzoo.nets.schemas import NETS

ARCH_DIR = Path(ganzoo.conf.__file__).parent / "arch"



def _kind(path):
    """(type, net) of a preset as its YAML writes them (the schema it extends; its `net:`). The cases below
    need them at collection, where composing all 16 presets through Hydra cost every test worker ~2.5 s;
    each case composes its arch through Hydra, and the first test checks these against that composition."""
    body = yaml.safe_load(path.read_text())
    schema = body["defaults"][0].split("@")[0].rsplit("/", 1)[-1]  # /schema/arch/conv, ..., or the mlp option
    if (path.parent / f"{schema}.yaml").is_file():  # a preset that extends another preset (stackelberg_toy_wide)
        return _kind(path.parent / f"{schema}.yaml")[0], body.get("net")
    return schema, body.get("net")


KINDS = {p.stem: _kind(p) for p in sorted(ARCH_DIR.glob("*.yaml"))}
IMAGE_ARCHS = [name for name, (kind, _) in KINDS.items() if kind != "mlp"]
ANY_SIZE = (28, 32, 48, 64)  # the fully connected nets take any size; these are the project's
BATCH = 2


def arch(name):
    """The preset as Hydra composes it (its YAML on top of its schema), on an image folder's data."""
    return composed(f"arch={name}", "dataset=image_folder").arch


def sizes(name):
    kind, net = KINDS[name]
    return NETS[net].resolutions if kind == "conv" else ANY_SIZE


def main_size(name):
    """The size of the arch's table (32x32 for every paper's CIFAR net)."""
    return 32 if 32 in sizes(name) else sizes(name)[0]


# Each arch at its table's size in RGB, as the YAML says. Its other sizes, and grey images (only the first
# and last layers change), run the same layers with 8 as the base width (1/8 of the tables' or less):
# shapes and gradient paths do not depend on width, and full widths would cost minutes of CPU here.
# fargan_resnet64 (~110M parameters) is checked at full width by test_full_width_big_net, forward only.
# The fully connected nets are cheap at full width.
def slim(name):
    return ["arch.g_width=8", "arch.d_width=8"] if KINDS[name][0] == "conv" else []


FULL_WIDTH = [n for n in IMAGE_ARCHS if n != "fargan_resnet64"]
CASES = ([(n, 3, main_size(n), []) for n in FULL_WIDTH]
         + [(n, 3, r, slim(n)) for n in IMAGE_ARCHS for r in sizes(n) if r != main_size(n) or n not in FULL_WIDTH]
         + [(n, 1, main_size(n), slim(n)) for n in IMAGE_ARCHS])


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Batches of 2 gain nothing from a second thread, and OpenMP's barriers stall badly when other
    processes share the 2 cores (a w8 case went from 0.2 s to 4 s)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def config():
    # Hydra is initialised for each composition: the test worker runs other modules' tests between this
    # module's, and their composing clears Hydra's global state
    def load(name, channels, resolution, *overrides, dataset="image_folder"):
        sized = [f"dataset.channels={channels}", f"dataset.resolution={resolution}"] if channels else []
        GlobalHydra.instance().clear()
        with initialize_config_module(config_module="ganzoo.conf", version_base="1.3"):
            raw = compose_config("train", [f"arch={name}", f"dataset={dataset}", *sized, *overrides])
        return load_train_config(raw)
    return load


def sized(name, channels, resolution, *widths):
    """config() for the cases that only set sizes and widths: compose_fast sets them on the arch's one
    composition above (~0.15 s each saved), as Hydra sets a key=value."""
    return compose_fast(f"arch={name}", "dataset=image_folder", f"dataset.channels={channels}",
                        f"dataset.resolution={resolution}", *widths)


def test_every_image_arch_yaml_is_tested_and_every_net_is_registered():
    assert len(IMAGE_ARCHS) >= 12
    assert {net for kind, net in KINDS.values() if kind == "conv"} == set(NETS)  # every net has a preset
    for name, (kind, net) in KINDS.items():
        y = arch(name)
        assert y.name == name, f"{name}.yaml says name: {y.name}"
        assert (y.type, getattr(y, "net", None)) == (kind, net), name  # what the cases were chosen by


@pytest.mark.parametrize("name, channels, resolution, overrides", CASES,
                         ids=[f"{n}-{c}x{r}" + ("-w8" if o else "") for n, c, r, o in CASES])
def test_shapes_range_and_gradients(name, channels, resolution, overrides):
    cfg = sized(name, channels, resolution, *overrides)
    make_g, make_d = build_nets(cfg.arch, data_shape(cfg.dataset))
    torch.manual_seed(0)
    G, D = make_g(), make_d()
    z = torch.randn(BATCH, cfg.arch.z_dim)
    if cfg.arch.z_dist == "uniform":
        z = torch.rand_like(z) * 2 - 1
    fake = G(z)
    assert fake.shape == (BATCH, channels, resolution, resolution)
    assert fake.abs().max() <= 1
    real = torch.rand(BATCH, channels, resolution, resolution) * 2 - 1
    d_fake, d_real = D(fake), D(real)
    assert d_fake.shape == d_real.shape == (BATCH,)
    # the baseline's D loss; its gradient also reaches G through the fakes
    (torch.nn.functional.softplus(d_fake).mean() + torch.nn.functional.softplus(-d_real).mean()).backward()
    for player, net in (("G", G), ("D", D)):
        for pname, p in net.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), f"{player}.{pname} got no gradient"
            assert p.grad.abs().sum() > 0, f"{player}.{pname} got a zero gradient"
    with torch.no_grad():  # D's body and last layer, the seam a head or a projection reads
        D.eval()
        assert torch.equal(D(real), D.logit(D.features(real)))
        D.train()
    if channels == 1:  # once per arch: the factories make fresh, independently initialised nets
        G2, D2 = make_g(), make_d()
        for a, b in ((G, G2), (D, D2)):
            pa, pb = list(a.parameters()), list(b.parameters())
            assert [p.shape for p in pa] == [p.shape for p in pb]
            assert all(p is not q for p, q in zip(pa, pb))
            assert any(not torch.equal(p, q) for p, q in zip(pa, pb) if p.numel() > 1)


def test_full_width_big_net(config):
    cfg = config("fargan_resnet64", 3, 64)
    make_g, make_d = build_nets(cfg.arch, data_shape(cfg.dataset))
    G, D = make_g(), make_d()
    with torch.no_grad():
        x = G(torch.randn(1, 256))
        assert x.shape == (1, 3, 64, 64) and D(x).shape == (1,)
    # Tables 11-12: 1024-wide blocks at 4x4 and 8x8 make this the largest net
    assert sum(p.numel() for p in G.parameters()) > 50e6 and sum(p.numel() for p in D.parameters()) > 50e6


def _unsupported(name):
    return next(r for r in (28, 32, 40, 48, 64) if r not in sizes(name))


CONV_ARCHS = [n for n in IMAGE_ARCHS if KINDS[n][0] == "conv"]


@pytest.mark.parametrize("name", CONV_ARCHS)
def test_unsupported_size_is_one_line_config_error(name):
    r = _unsupported(name)
    with pytest.raises(ConfigError) as err:
        sized(name, 3, r)
    msg = str(err.value)
    assert "\n" not in msg
    assert f"arch={name}" in msg and f"3x{r}x{r}" in msg
    assert all(f"{s}x{s}" in msg for s in sizes(name)), msg


def test_shape_check_runs_without_torch():
    """Config validation refuses a bad arch/dataset pair before anything imports torch."""
    code = textwrap.dedent("""
        import sys
        from hydra import compose, initialize_config_module
        from ganzoo.config import load_train_config
        from ganzoo.errors import ConfigError
        with initialize_config_module(config_module="ganzoo.conf", version_base="1.3"):
            raw = compose("train", overrides=["arch=fargan_resnet32", "dataset=mnist"])
        try:
            load_train_config(raw)
        except ConfigError as e:
            print(e)
        assert "torch" not in sys.modules, "config validation imported torch"
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ("arch=fargan_resnet32 supports 32x32 images (1 or 3 channels), not 1x28x28: "
                                  "set dataset.resolution=32")


@pytest.mark.parametrize("overrides, words", [
    (["arch.net=dcgn"], "arch.net: 'dcgn' is not allowed"),
    (["arch.z_dist=gauss"], "arch.z_dist: 'gauss' is not allowed"),
    (["arch.z_dim=0"], "arch.z_dim must be >= 1"),
    (["arch.g_width=0"], "arch.g_width must be >= 1"),
    (["arch.init=orthogonl"], "arch.init: 'orthogonl' is not allowed"),
    (["arch.g_batchnorm=true"], "arch.g_batchnorm: net fargan_resnet32 has no batchnorm switch"),
    (["+arch.dropout=0.1"], "unknown config key 'arch.dropout'"),
])
def test_bad_arch_values(config, overrides, words):
    with pytest.raises(ConfigError, match=re.escape(words)):
        config("fargan_resnet32", 3, 32, *overrides)


def test_image_arch_on_2d_data_and_bad_mlp_values(config):
    with pytest.raises(ConfigError, match="arch=dcgan is an image net"):
        config("dcgan", None, None, dataset="ring")
    with pytest.raises(ConfigError, match="arch.g.act"):
        config("stackelberg_mlp_mnist", 1, 28, "arch.g.act=swish")
    with pytest.raises(ConfigError, match="arch.d.hidden"):
        config("stackelberg_mlp_mnist", 1, 28, "arch.d.hidden=[]")


def test_spectral_norm_bounds_every_d_layer(config):
    cfg = config("dcgan", 3, 32, "arch.spectral_norm=true", "arch.d_batchnorm=false")
    _, make_d = build_nets(cfg.arch, data_shape(cfg.dataset))
    torch.manual_seed(0)
    D = make_d()
    layers = [m for m in D.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert layers and all(torch.nn.utils.parametrize.is_parametrized(m, "weight") for m in layers)
    x = torch.randn(2, 3, 32, 32)
    for _ in range(30):  # one power iteration per training forward
        D(x)
    for m in layers:
        sigma = torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2)
        assert 0.9 < sigma < 1.05, (m, float(sigma))


def test_plain_2d_mlp_path_unchanged():
    make_g, make_d = build_nets(MLPArch(), (2,))
    G, D = make_g(), make_d()
    x = G(torch.randn(5, 2))
    assert x.shape == (5, 2) and D(x).shape == (5,)
