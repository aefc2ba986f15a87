"""Conditional runs: labels from the data and the noise stream, the conditional nets, and every method
with labels (one class reduces to the unconditional method bit for bit; the 2-rank equivalence of
every method conditional is in tests/distributed_cases.py)."""
import pytest
import torch
from torch import nn

from conftest import compose_fast
from ganzoo import checkpoint
from ganzoo.errors import ConfigError
from ganzoo.data import Stream
from ganzoo.methods import build_method
from ganzoo.methods.common import Noise
from ganzoo.methods.schemas import METHODS
from ganzoo.model import build
from ganzoo.nets.build import build_nets
from ganzoo.nets.conditional import ClassBatchNorm, ConditionalG, ProjectionD

SMALL = ["device=cpu", "batch_size=32", "arch.g.hidden=[16,16]", "arch.d.hidden=[16,16]"]


def make(*overrides, base=SMALL):
    cfg = compose_fast(*base, *overrides)
    checkpoint.seed_everything(cfg.seed)
    model = build(cfg)
    return cfg, model, Stream(model.data, cfg.batch_size, cfg.seed, model.device, labelled=cfg.conditional)


# ---------------------------------------------------------------- nets
def test_projection_adds_the_embedded_labels_inner_product_with_the_features():
    D = ProjectionD(nn.Sequential(), 3, 2, sn=False)
    D.net = type("Body", (nn.Module,), {"features": lambda self, x: x, "logit": lambda self, h: h.sum(1)})()
    with torch.no_grad():
        D.embed.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0], [-1.0, -1.0]]))
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    y = torch.tensor([0, 1, 2])
    # by hand: sum(h) + <e_y, h>: 3 + 1, 7 + 8, 11 - 11
    assert D(x, y).tolist() == [4.0, 15.0, 0.0]
    assert D(x).tolist() == [3.0, 7.0, 11.0]  # without labels: the unconditional logit


def test_class_batchnorm_starts_as_plain_batchnorm_and_learns_per_class_affines():
    cbn = ClassBatchNorm(nn.BatchNorm2d(4), 3)
    x = torch.randn(6, 4, 2, 2)
    cbn.y = torch.tensor([0, 1, 2, 0, 1, 2])
    plain = nn.functional.batch_norm(x, None, None, training=True, eps=cbn.norm.eps)
    assert torch.allclose(cbn(x), plain, atol=1e-6)
    with torch.no_grad():
        cbn.gain.weight[1] = 2.0
        cbn.bias.weight[2] = -1.0
    out = cbn(x)
    assert torch.allclose(out[1], 2 * plain[1], atol=1e-6) and torch.allclose(out[2], plain[2] - 1, atol=1e-6)
    assert torch.allclose(out[0], plain[0], atol=1e-6)


@pytest.mark.parametrize("arch, dataset, how", [
    ("dcgan", "cifar10", "cbn"), ("sngan_resnet", "cifar10", "cbn"), ("autogan", "cifar10", "cbn"),
    ("dcgan", "fashion_mnist", "concat"), ("stackelberg_mlp_fashion_mnist", "fashion_mnist", "cbn"),
    ("mlp", "ring", "concat"), ("stackelberg_toy", "ring", "cbn"),
])
def test_a_class_label_changes_what_g_makes_and_what_d_says(arch, dataset, how):
    """auto picks class batchnorm where G has batchnorm, a one-hot input where it has none."""
    over = [f"arch={arch}", f"dataset={dataset}", "conditional=true"] + (["dataset.radius=0.8"] if dataset == "ring" else [])
    if dataset != "ring" and arch != "stackelberg_mlp_fashion_mnist":
        over += ["arch.g_width=8", "arch.d_width=8"] + (["arch.g_batchnorm=false"] if how == "concat" else [])
    cfg = compose_fast("device=cpu", *over)
    shape = (2,) if dataset == "ring" else (cfg.dataset.channels, cfg.dataset.resolution, cfg.dataset.resolution)
    torch.manual_seed(0)
    make_g, make_d = build_nets(cfg.arch, shape, cfg.num_classes(), cfg.labels.g)
    G, D = make_g(), make_d()
    assert isinstance(G, ConditionalG) and G.how == how and isinstance(D, ProjectionD)
    with torch.no_grad():  # a trained projection: its embedding is not the initial one
        D.embed.weight.normal_()
        for m in G.modules():
            if isinstance(m, ClassBatchNorm):
                m.gain.weight.normal_()
    z = torch.randn(4, cfg.arch.z_dim)
    a, b = torch.zeros(4, dtype=torch.long), torch.ones(4, dtype=torch.long)
    x = G(z, a)
    assert x.shape == (4,) + shape and not torch.allclose(x, G(z, b))
    assert not torch.allclose(D(x, a), D(x, b))
    (D(x, a).sum()).backward()
    assert all(p.grad is not None for p in D.parameters())


def test_one_class_fake_labels_move_no_random_state_and_data_frequencies_are_followed():
    n = Noise(2, "normal", torch.device("cpu"), seed=3, num_classes=1)
    state = n.generator.get_state()
    assert n.labels_full(5).tolist() == [0] * 5 and torch.equal(n.generator.get_state(), state)
    skewed = Noise(2, "normal", torch.device("cpu"), seed=3, num_classes=3, class_probs=torch.tensor([0.8, 0.2, 0.0]))
    y = skewed.labels_full(4000)
    assert (y == 2).sum() == 0 and abs(float((y == 0).float().mean()) - 0.8) < 0.03
    uniform = Noise(2, "normal", torch.device("cpu"), seed=3, num_classes=4).labels_full(4000)
    assert set(uniform.tolist()) == {0, 1, 2, 3}


# ---------------------------------------------------------------- labels from the data
def test_ring_labels_are_the_mode_each_point_was_drawn_from():
    cfg, model, stream = make("conditional=true")
    x, y = stream(500)
    nearest = torch.cdist(x, model.data.modes).argmin(1)
    assert torch.equal(y, nearest)
    # the same points as an unlabelled stream draws
    _, _, plain = make()
    assert torch.equal(plain(500), x)


def test_image_labels_travel_with_their_images():
    cfg, model, stream = make("dataset=fashion_mnist", "synthetic_images=64", "arch=dcgan", "conditional=true",
                              "arch.g_width=4", "arch.d_width=4",
                              base=["device=cpu", "batch_size=32", "metrics.inception=false",
                                    "metrics.classifier=false", "metrics.prc=false"])
    x, y = stream(40)
    data = model.data
    for row, label in zip(x, y):  # each drawn image is the training image of that label
        i = int(((data.finite.float() / 127.5 - 1) - row).abs().flatten(1).sum(1).argmin())
        assert int(data.finite_labels[i]) == int(label)


@pytest.mark.parametrize("over, words", [
    (["dataset=swissroll"], "has none"),
    (["dataset=celeba"], "has none"),
    (["dataset=image_folder"], "num_classes=0"),
    (["arch=microbatch_toy", "arch.d_out=softplus"], "softplus"),
])
def test_a_conditional_run_without_labels_is_refused_in_one_line(over, words):
    with pytest.raises(ConfigError) as err:
        compose_fast("device=cpu", "conditional=true", *over)
    assert words in str(err.value) and "\n" not in str(err.value)


# ---------------------------------------------------------------- every method with labels
@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_trains_conditionally_and_makes_the_asked_class(name):
    cfg, model, stream = make(*METHODS[name].overrides(), "conditional=true")
    method = model.method
    for i in range(3):
        out = method.step(stream, log=i == 0)
        assert all(torch.isfinite(v).all() for v in out.values())
    gen = torch.Generator().manual_seed(0)
    asked = torch.full((50,), 3, dtype=torch.long)
    a = method.sample(50, gen, y=asked)[0]
    b = method.sample(50, torch.Generator().manual_seed(0), y=asked.clone().fill_(5))[0]
    assert a.shape == (50, 2) and not torch.equal(a, b)


class IgnoresLabels(nn.Module):
    """The unconditional net under the conditional call signature."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x, y=None, *more):
        return self.net(x)

    def features(self, x):
        return self.net.features(x)

    def logit(self, h, y=None):
        return self.net.logit(h)


@pytest.mark.parametrize("name", list(METHODS))
def test_one_class_reduces_to_the_unconditional_method_bit_for_bit(name):
    """The method's label plumbing with one class and nets that ignore labels trains exactly as the
    unconditional method (no random draw for labels; fargan's chosen fakes, microbatch's parts, sgan's
    mixture all as without labels). The conditional nets themselves are not the unconditional ones
    (the projection and the class batchnorm are parameters of their own)."""
    over = [*METHODS[name].overrides(), "loss.penalty=gp", "loss.k=1"] if name != "fargan" else METHODS[name].overrides()
    if name in ("microbatch", "stackelberg"):  # a conditional run's players are a list (no MLP stack)
        over.append("method.players=list")
    cfg = compose_fast(*SMALL, *over)
    runs = []
    for classes in (0, 1, 2):
        checkpoint.seed_everything(cfg.seed)
        model = build(cfg)
        make_g, make_d = build_nets(cfg.arch, model.data.shape)
        if classes:
            g, d = make_g, make_d
            make_g, make_d = (lambda: IgnoresLabels(g())), (lambda: IgnoresLabels(d()))
        checkpoint.seed_everything(cfg.seed)
        method = build_method(cfg, make_g, make_d, torch.device("cpu"))
        if classes:
            method.conditional = True
            method.noise.num_classes = classes
            for part in getattr(method, "pairs", []) + ([method.message] if getattr(method, "message", None) else []):
                part.conditional = True
                part.noise.num_classes = classes
        stream = Stream(model.data, cfg.batch_size, cfg.seed, torch.device("cpu"))
        draw = stream if not classes else (lambda n=None: (lambda x: (x, torch.zeros(len(x), dtype=torch.long)))(stream(n)))
        for i in range(6):
            method.step(draw, log=i % 2 == 0)
        runs.append(method)
    plain, one, two = runs
    for a, b in zip(plain.G.parameters(), one.G.parameters()):
        assert torch.equal(a, b)
    for a, b in zip(plain.D.parameters(), one.D.parameters()):
        assert torch.equal(a, b)
    assert torch.equal(plain.noise.generator.get_state(), one.noise.generator.get_state())
    # negative control: two classes draw labels from the noise stream, so the next z differ and training moves apart
    assert not all(torch.equal(a, b) for a, b in zip(plain.G.parameters(), two.G.parameters()))


# ---------------------------------------------------------------- sampling a class
def test_sample_draws_the_asked_class_and_refuses_one_the_run_lacks(tmp_path):
    from conftest import ganzoo_here
    import numpy as np
    from ganzoo.train import train
    run = tmp_path / "run"
    train(compose_fast(*SMALL, "conditional=true", "steps=3", "sample_every=null", "metrics.num_samples=100"), run)
    for label in (3, 5):
        ganzoo_here("sample", f"run={run}", f"class={label}", "n=50", f"out=c{label}.npz", "device=cpu", cwd=tmp_path)
    with np.load(tmp_path / "c3.npz") as a, np.load(tmp_path / "c5.npz") as b:
        assert a["samples"].shape == (50, 2) and not np.array_equal(a["samples"], b["samples"])
    proc = ganzoo_here("sample", f"run={run}", "class=8", "n=5", "out=x.npz", "device=cpu", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "conditional on 8 classes (0..7)" in proc.stderr
    assert not (tmp_path / "x.npz").exists()


# ---------------------------------------------------------------- class-aware scores
def test_class_accuracy_and_intra_fid_on_a_hand_made_case():
    """Two classes: class 0's samples are its reals (FID 0), class 1's are its reals moved by (1, 0) (FID
    |shift|^2 = 1, the covariances equal); the classifier names one class-0 sample wrongly."""
    from types import SimpleNamespace
    from ganzoo.metrics.fidelity import Extractor, ImageMetrics
    g = torch.Generator().manual_seed(0)
    r0, r1 = torch.randn(50, 2, generator=g, dtype=torch.float64), torch.randn(50, 2, generator=g, dtype=torch.float64) + 5
    reals = {"features": torch.cat([r0, r1]), "labels": torch.tensor([0] * 50 + [1] * 50)}
    fake = torch.cat([r0, r1 + torch.tensor([1.0, 0.0], dtype=torch.float64)])
    asked = torch.tensor([0] * 50 + [1] * 50)
    logits = torch.nn.functional.one_hot(asked, 2).float()
    logits[7] = torch.tensor([0.0, 1.0])
    m = ImageMetrics.__new__(ImageMetrics)
    m.cfg = SimpleNamespace(num_real=None, intra_fid=False)
    m._reference = lambda e, layer, n, stats: reals
    e = Extractor("c", None, "", "", {"fid": "features", "classes": "logits"})
    scores, protocol = m._per_class("classifier", e, {"features": fake, "logits": logits}, asked)
    assert scores["class_acc_per_class"] == [pytest.approx(0.98), 1.0]
    assert scores["class_acc"] == pytest.approx(0.99) and scores["class_acc_min"] == pytest.approx(0.98)
    assert scores["intra_cfid_per_class"] == [pytest.approx(0.0, abs=1e-6), pytest.approx(1.0, abs=1e-6)]
    assert scores["intra_cfid"] == pytest.approx(0.5, abs=1e-6) and protocol["intra_cfid_classes"] == 2
    # Inception's intra-FID only when asked for
    assert m._per_class("inception", e, {"features": fake}, asked) == ({}, {})


def test_a_conditional_picture_has_a_row_per_class():
    from ganzoo.model import picture
    images = ["device=cpu", "batch_size=32", "metrics.inception=false", "metrics.classifier=false",
              "dataset=fashion_mnist", "synthetic_images=64", "arch=dcgan", "arch.g_width=4", "arch.d_width=4",
              "picture_images=16"]
    rows = {}
    for conditional in ("true", "false"):
        cfg, model, _ = make(f"conditional={conditional}", base=images)
        rows[conditional] = (picture(cfg, model, 0).shape[0] - 2) // (28 + 2)  # 28-pixel images, 2-pixel borders
    assert rows == {"true": 10, "false": 2}  # a row of 8 per class; else picture_images in rows of 8
