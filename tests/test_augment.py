"""Augmentations D sees (augment=diffaugment, ada) and the regularisers of D's loss (loss.lecam,
loss.consistency): hand-computed cases, gradients through every op, ADA's controller on a scripted
sequence, every method with each augmentation, refusals in one line. Exact resume and 2 ranks:
tests/test_resume.py and tests/distributed_cases.py."""
import pytest
import torch

from conftest import compose_fast
from ganzoo import checkpoint
from ganzoo.augment import diffaugment
from ganzoo.augment.pipeline import Augment
from ganzoo.augment.schemas import AugmentConfig
from ganzoo.data import Stream
from ganzoo.distributed import Shard
from ganzoo.errors import ConfigError
from ganzoo.methods.regularisers import LeCam, flip_translate
from ganzoo.methods.schemas import METHODS
from ganzoo.model import build

IMAGES = ["device=cpu", "dataset=fashion_mnist", "synthetic_images=64", "arch=dcgan", "arch.g_width=4",
          "arch.d_width=4", "batch_size=16", "metrics.inception=false", "metrics.classifier=false"]


def params(n=1, **given):
    p = {"brightness": torch.zeros(n), "saturation": torch.ones(n), "contrast": torch.ones(n),
         "shift": torch.zeros(n, 2, dtype=torch.long), "centre": torch.zeros(n, 2, dtype=torch.long)}
    p.update(given)
    return p


# ---------------------------------------------------------------- DiffAugment, by hand
def test_translation_moves_a_known_pixel_and_lets_zeros_in():
    x = torch.zeros(1, 1, 16, 16)
    x[0, 0, 2, 3] = 1.0
    out = diffaugment.translation(x, params(shift=torch.tensor([[1, -2]])))  # dy = 1, dx = -2
    assert out[0, 0, 3, 1] == 1.0 and out.sum() == 1.0
    ones = diffaugment.translation(torch.ones(1, 1, 16, 16), params(shift=torch.tensor([[2, 0]])))
    assert ones[0, 0, :2].abs().sum() == 0 and ones[0, 0, 2:].eq(1).all()  # two rows of zeros came in at the top


def test_cutout_zeroes_the_box_around_its_centre():
    out = diffaugment.cutout(torch.ones(1, 3, 8, 8), params(centre=torch.tensor([[4, 1]])))
    box = torch.ones(8, 8)
    box[2:6, 0:3] = 0  # rows 4 - 2 .. 4 + 2, columns 1 - 2 .. 1 + 2 clipped at the border
    assert torch.equal(out[0, 0], box) and torch.equal(out[0, 2], box)


def test_colour_ops_add_brightness_and_keep_the_means_they_scale_around():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 8, 8, generator=g) * 2 - 1
    out = diffaugment.color(x, params(2, brightness=torch.tensor([0.25, -0.5]), saturation=torch.tensor([0.0, 2.0]),
                                      contrast=torch.tensor([0.5, 1.5])))
    # contrast and saturation keep each image's mean: the mean moves by the brightness alone
    assert torch.allclose(out.mean((1, 2, 3)), x.mean((1, 2, 3)) + torch.tensor([0.25, -0.5]), atol=1e-6)
    # saturation 0 makes every pixel grey (its channels equal), before contrast scales the image
    assert torch.allclose(out[0, 0], out[0, 1], atol=1e-6) and torch.allclose(out[0, 1], out[0, 2], atol=1e-6)
    grey = torch.rand(1, 1, 8, 8, generator=g)
    assert torch.allclose(diffaugment.color(grey, params(saturation=torch.tensor([2.0]))), grey)  # one channel


@pytest.mark.parametrize("policy", [["color"], ["translation"], ["cutout"], ["color", "translation", "cutout"]])
def test_the_gradient_reaches_the_input_through_every_policy(policy):
    x = torch.randn(4, 3, 16, 16, requires_grad=True)
    p = diffaugment.draw(4, (16, 16), torch.Generator().manual_seed(1), "cpu")
    diffaugment.apply(x, p, policy).pow(2).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_a_draw_is_the_global_batch_and_each_rank_keeps_its_rows():
    x = torch.randn(8, 1, 16, 16)
    one = Augment(AugmentConfig(name="diffaugment"), 0, torch.device("cpu"), Shard(), 8)(x)
    halves = [Augment(AugmentConfig(name="diffaugment"), 0, torch.device("cpu"), Shard(r, 2), 8)(x[4 * r:4 * r + 4])
              for r in range(2)]
    assert torch.equal(torch.cat(halves), one)


# ---------------------------------------------------------------- ADA's controller
def test_ada_moves_p_by_the_sign_of_the_overfitting_statistic():
    cfg = AugmentConfig(name="ada", p=0.0, interval=2, speed_images=16, target=0.6)
    aug = Augment(cfg, 0, torch.device("cpu"), Shard(), batch_size=4)  # a step of 4 * 2 / 16 = 0.5
    script = [torch.tensor([1.0, 2.0, 3.0, -1.0])] * 2 + [torch.tensor([1.0, -2.0, -3.0, -1.0])] * 2 \
        + [torch.tensor([1.0, 1.0, 1.0, 1.0])] * 6
    ps, rts = [], []
    for logits in script:
        aug.observe(logits)
        aug.end_d_step()
        ps.append(float(aug.p))
        rts.append(float(aug.rt))
    # r_t after each interval: 0.5 (below 0.6: p stays at 0), -0.5 (down, clamped at 0), 1 (up): 0.5, 1, 1 (clamped)
    assert rts[1::2] == [0.5, -0.5, 1.0, 1.0, 1.0]
    assert ps == [0.0, 0.0, 0.0, 0.0, 0.0, 0.5, 0.5, 1.0, 1.0, 1.0]
    fixed = Augment(AugmentConfig(name="ada", p=0.3, adaptive=False), 0, torch.device("cpu"), Shard(), 4)
    fixed.observe(torch.ones(4))
    for _ in range(8):
        fixed.end_d_step()
    assert float(fixed.p) == pytest.approx(0.3)


# ---------------------------------------------------------------- every method, each augmentation
def make(*overrides):
    cfg = compose_fast(*IMAGES, *overrides)
    checkpoint.seed_everything(cfg.seed)
    model = build(cfg)
    return cfg, model.method, Stream(model.data, cfg.batch_size, cfg.seed, model.device, labelled=cfg.conditional)


def test_augment_none_calls_d_on_the_images_as_they_are():
    _, method, stream = make()
    assert method.augment is None
    x = stream()
    assert torch.equal(method.critic(x), method.D(x))


@pytest.mark.parametrize("augment", [["augment=diffaugment"], ["augment=ada", "augment.p=0.5"]])
@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_trains_through_each_augmentation(name, augment):
    over = METHODS[name].overrides() + (["method.K=2"] if name == "microbatch" else [])
    cfg, method, stream = make(*over, *augment)
    x = stream()
    seen = method.critic(x[:4]) if name != "microbatch" else None
    before = [p.detach().clone() for p in method.G.parameters()]
    for i in range(2):
        out = method.step(stream, log=i == 0)
        assert all(torch.isfinite(v).all() for v in out.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, method.G.parameters()))  # G learned through T
    if cfg.augment.name == "ada":
        assert "augment/p" in method.step(stream, log=True)
    if seen is not None:  # D sees transformed images: another call, another draw
        assert not torch.equal(seen, method.critic(x[:4]))


# ---------------------------------------------------------------- LeCam, bCR, zCR
def test_lecam_by_hand():
    lecam = LeCam(0.5, 0.9, torch.device("cpu"), Shard())
    l_real, l_fake = torch.tensor([1.0, 3.0]), torch.tensor([-1.0, 0.0])
    term = lecam.term(l_real, l_fake)
    a_r, a_f = 0.1 * 2.0, 0.1 * -0.5  # the anchors after one step of decay 0.9 from 0
    want = 0.5 * (((1 - a_f) ** 2 + (3 - a_f) ** 2) / 2 + ((a_r + 1) ** 2 + (a_r - 0) ** 2) / 2)
    assert float(term) == pytest.approx(want) and lecam.anchors.tolist() == pytest.approx([a_r, a_f])


def test_bcr_is_zero_where_its_transform_changes_nothing():
    """bCR's term is D's squared change under T: 0 when the draws make T the identity (no flip, no shift), and
    positive for a ramp image that a flip or a shift does change."""
    from ganzoo.methods.regularisers import bcr_term
    from ganzoo.config import ConsistencyConfig
    D = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 1), torch.nn.Flatten(0))
    critic = lambda x, y=None: D(x)  # noqa: E731
    ramp = torch.arange(8.0).repeat(4, 1, 8, 1)
    weights = ConsistencyConfig(bcr_real=10, bcr_fake=1)
    identity = lambda fn, n: torch.zeros_like(fn(n))  # noqa: E731  no flip, no shift
    l = D(ramp)
    assert float(bcr_term(critic, ramp, ramp, l, l, weights, identity, torch.Generator())) == 0.0
    assert torch.equal(flip_translate(ramp, identity, torch.Generator()), ramp)
    moved = flip_translate(ramp, Shard().rows_of, torch.Generator().manual_seed(3))
    assert not torch.equal(moved, ramp)
    by_hand = 10 * (l - D(moved)).pow(2).mean()
    term = bcr_term(critic, ramp, ramp, l, l, ConsistencyConfig(bcr_real=10), Shard().rows_of,
                    torch.Generator().manual_seed(3))
    assert float(term) == pytest.approx(float(by_hand)) and float(term) > 0


@pytest.mark.parametrize("over, key", [
    (["loss.lecam=0.3"], "loss/d_lecam"),
    (["loss.consistency.bcr_real=10", "loss.consistency.bcr_fake=10"], "loss/d_bcr"),
    (["loss.consistency.zcr_dis=5", "loss.consistency.zcr_gen=0.5"], "loss/d_zcr"),
    (["loss.lecam=0.3", "loss.consistency.bcr_real=10", "loss=hinge", "loss.penalty=r1", "method=aw",
      "augment=diffaugment"], "loss/d_bcr"),
])
def test_each_regulariser_is_a_logged_term_of_ds_loss(over, key):
    _, method, stream = make(*over)
    out = method.step(stream, log=True)
    assert key in out and torch.isfinite(out[key]) and float(out[key]) >= 0
    if "loss.consistency.zcr_gen=0.5" in over:
        assert "loss/g_zcr" in out


@pytest.mark.parametrize("over, words", [
    (["dataset=ring", "augment=diffaugment"], "2-D"),
    (["augment=diffaugment", "augment.policy=[color,blur]"], "augment.policy"),
    (["method=microbatch", "loss.lecam=0.1"], "microbatch"),
    (["method=fargan", "loss.consistency.zcr_dis=5"], "method=gan or method=aw"),
    (["dataset=ring", "loss.consistency.bcr_real=1"], "2-D"),
])
def test_what_cannot_compose_is_refused_in_one_line(over, words):
    base = ["device=cpu"] if "dataset=ring" in over else IMAGES
    with pytest.raises(ConfigError) as err:
        compose_fast(*base, *over)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_several_ranks_refuse_an_augmentation_a_method_cannot_split():
    cfg = compose_fast(*IMAGES, "method=fargan", "method.f=2", "method.N0=4", "augment=ada")
    with pytest.raises(ConfigError, match="augment=ada under 2 ranks: fargan"):
        cfg.check_world(2)
    compose_fast(*IMAGES, "method=aw", "augment=ada").check_world(2)  # aw's batches are contiguous shares


def test_a_fraction_is_a_seeded_share_and_the_scoring_classifier_learns_from_the_whole_set():
    from ganzoo.data import build_data
    from ganzoo.data.files import DEBIAN_FASHION_MNIST
    if not DEBIAN_FASHION_MNIST.is_dir():
        pytest.skip("needs dataset-fashion-mnist (CI installs it)")
    share = build_data(compose_fast("device=cpu", "dataset=fashion_mnist", "dataset.fraction=0.1").dataset)
    again = build_data(compose_fast("device=cpu", "dataset=fashion_mnist", "dataset.fraction=0.1").dataset)
    other = build_data(compose_fast("device=cpu", "dataset=fashion_mnist", "dataset.fraction=0.1",
                                    "dataset.fraction_seed=1").dataset)
    assert len(share.finite) == 6000 and torch.equal(share.finite, again.finite)
    assert not torch.equal(share.finite, other.finite)
    whole = share.full()
    assert len(whole.images("train")) == 60000 and whole.fingerprint("train") != share.fingerprint("train")
