"""What makes each method itself: invariants from METHODS.md, checked on tiny 2-D nets."""
import math

import pytest
import torch
from torch import nn

from conftest import compose_fast
from ganzoo import checkpoint
from ganzoo.data import Stream
from ganzoo.methods.aw import BISECT, FAVOUR_FAKE_PROJECTED, FAVOUR_REAL, FAVOUR_REAL_PROJECTED, aw_weights
from ganzoo.methods.fargan import lowest_scored
from ganzoo.methods.gan import GAN, DBatch, Player
from ganzoo.methods.players import MLPStack, NetList
from ganzoo.methods.protocol import Method
from ganzoo.methods.schemas import METHODS as RECORDS
from ganzoo.model import build

SMALL = ["device=cpu", "batch_size=32", "arch.g.hidden=[16,16]", "arch.d.hidden=[16,16]"]


def make(*overrides, base=SMALL):
    cfg = compose_fast(*base, *overrides)
    checkpoint.seed_everything(cfg.seed)
    model = build(cfg)
    return model.method, Stream(model.data, cfg.batch_size, cfg.seed, model.device, labelled=cfg.conditional)


def train_steps(method, stream, steps):
    for i in range(steps):
        method.step(stream, log=i % 2 == 0)  # both the logging and the quiet path


def flat(module):
    return torch.cat([p.detach().reshape(-1) for p in module.parameters()])


# ---------------------------------------------------------------- reductions to the baseline
@pytest.mark.parametrize("method_args, baseline_args", [
    (["method=fargan", "method.N0=0", "method.k=10"], ["method=gan", "loss.penalty=r1", "loss.k=10"]),
    (["method=stackelberg", "method.I=1"], ["method=gan"]),
    (["method=stackelberg", "method.I=1", "loss=wgan", "loss.penalty=gp"], ["method=gan", "loss=wgan", "loss.penalty=gp"]),
    (["method=microbatch", "method.K=1"], ["method=gan"]),
    (["method=microbatch", "method.K=1", "method.alpha=0.5", "method.alpha_act=null", "loss=hinge",
      "loss.penalty=r1", "n_dis=2"], ["method=gan", "loss=hinge", "loss.penalty=r1", "n_dis=2"]),
    (["method=microbatch", "method.K=1", "loss=wgan", "loss.penalty=gp"], ["method=gan", "loss=wgan", "loss.penalty=gp"]),
    (["method=microbatch", "method.K=1", "method.reading=mix", "method.alpha=0.5"], ["method=gan"]),
], ids=["fargan_N0=0", "stackelberg_I=1", "stackelberg_I=1_gp", "microbatch_K=1", "microbatch_K=1_r1",
        "microbatch_K=1_gp", "microbatch_K=1_mix"])
def test_reduces_to_the_baseline_bit_for_bit(method_args, baseline_args):
    method, s1 = make(*method_args)
    base, s2 = make(*baseline_args)
    train_steps(method, s1, 12)
    train_steps(base, s2, 12)
    assert torch.equal(flat(method.G), flat(base.G))
    assert torch.equal(flat(method.D), flat(base.D))
    assert torch.equal(method.sample(100, torch.Generator().manual_seed(1))[0],
                       base.sample(100, torch.Generator().manual_seed(1))[0])


def by_hand_with_two_g_steps(m, stream):
    """One iteration at n_gen=1's method, with a second G step where n_gen=2 takes it."""
    def twice(gan):
        for _ in range(gan.n_dis):
            gan.d_step(stream, False)
        gan.g_step(False)
        gan.g_step(False)
    if hasattr(m, "pairs"):  # sgan: every local pair is a baseline, then the global pair's update
        for pair in m.pairs:
            twice(pair)
            pair.end_iteration()
        if m.message is not None:
            m.message_steps(stream, False)
    twice(m)
    m.end_iteration()
    if getattr(m, "message", None) is not None:
        m.message.end_iteration()


@pytest.mark.parametrize("name", ["gan", "fargan", "stackelberg", "microbatch", "sgan"])
def test_n_gen_steps_g_again_after_the_d_steps(name):
    """n_gen=2 (PacGAN's Stacked MNIST runs) is the D steps and then two G steps, each on its own noise.
    Negative control: n_gen=1's iteration differs."""
    own = ["method.N0=8"] if name == "fargan" else []
    twice, s1 = make(f"method={name}", *own, "n_gen=2")
    once, s2 = make(f"method={name}", *own)
    plain, s3 = make(f"method={name}", *own)
    for _ in range(3):
        twice.step(s1)
        by_hand_with_two_g_steps(once, s2)
        plain.step(s3)
    for G, H, P in zip(twice.generators, once.generators, plain.generators):
        assert torch.equal(flat(G), flat(H))
        assert not torch.equal(flat(G), flat(P))


def test_n_gen_must_be_positive():
    with pytest.raises(Exception, match="n_gen must be >= 1"):
        compose_fast(*SMALL, "n_gen=0")


# ---------------------------------------------------------------- fargan
def spy(obj, name: str) -> list:
    """Record what obj.name returns at each call (the call itself unchanged)."""
    seen, real = [], getattr(obj, name)

    def call(*args, **kwargs):
        seen.append(real(*args, **kwargs))
        return seen[-1]
    setattr(obj, name, call)
    return seen


def test_fargan_selects_the_lowest_scored_candidates():
    method, stream = make("method=fargan", "method.f=4", "method.N0=8")
    train_steps(method, stream, 5)
    state = method.noise.generator.get_state()
    chosen = spy(method, "choose")
    batch = method.d_batch(stream, log=False)
    real, fake = batch.real, batch.fake
    selected = real[-8:]
    all_scores, idx, _, _ = chosen[0]
    picked = torch.zeros(32, dtype=torch.bool)
    picked[idx] = True
    l_sel, l_rej = all_scores[picked], all_scores[~picked]
    # the M fakes and the f*N0 candidates are one batch of G, fakes first
    method.noise.generator.set_state(state)
    with torch.no_grad():
        both = method.G(method.noise(32 + 32))
        candidates = both[32:]
        scores = method.D(candidates)
    assert torch.equal(fake, both[:32])
    order = torch.argsort(scores)
    assert len(real) == 32 and len(selected) == 8 and len(l_rej) == 24
    # the same set of samples as the 8 lowest-scored, and every rejected logit above every selected one
    expected = candidates[order[:8]]
    assert torch.equal(torch.sort(selected[:, 0]).values, torch.sort(expected[:, 0]).values)
    assert l_sel.max() <= l_rej.min()
    assert torch.allclose(torch.sort(l_sel).values, scores[order[:8]])


def test_fargan_candidates_share_the_fakes_batchnorm_statistics():
    """With a batchnorm G, one pass over M + f*N0 latents (the paper's one batch) is not two passes."""
    method, stream = make("method=fargan", "method.f=2", "method.N0=8", "arch.g.batchnorm=true")
    state = method.noise.generator.get_state()
    fake = method.d_batch(stream, log=False).fake
    method.noise.generator.set_state(state)
    z = method.noise(32 + 16)
    with torch.no_grad():
        assert torch.equal(fake, method.G(z)[:32])
        assert not torch.allclose(fake, method.G(z[:32]))  # negative control: a pass of its own differs


def test_lowest_scored_on_hand_values():
    cand = torch.arange(6.0).unsqueeze(1)
    idx = lowest_scored(torch.tensor([3.0, -1.0, 2.0, -5.0, 0.5, 9.0]), 2)
    assert sorted(cand[idx][:, 0].tolist()) == [1.0, 3.0]
    assert lowest_scored(torch.tensor([3.0, -1.0]), 2).tolist() == [0, 1]  # f = 1: all, in order


def test_fargan_f1_takes_random_fakes_whatever_d_says():
    method, stream = make("method=fargan", "method.f=1", "method.N0=8")
    state, data = method.noise.generator.get_state(), stream.state_dict()
    chosen = spy(method, "choose")
    first = method.d_batch(stream, log=False).real[-8:]
    scores, idx, _, _ = chosen[0]
    assert len(scores) == 8 and idx.tolist() == list(range(8))
    for p in method.D.parameters():  # a different critic must not change which fakes join
        nn.init.normal_(p)
    method.noise.generator.set_state(state)
    stream.load_state_dict(data)
    assert torch.equal(method.d_batch(stream, log=False).real[-8:], first)


def test_fargan_real_set_is_n_minus_n0_reals_plus_n0_fakes():
    method, stream = make("method=fargan", "method.N0=12")
    asked = []

    def draw(n=None):
        asked.append(n)
        return stream(n)
    out = method.step(draw, log=True)
    assert asked == [32 - 12]
    assert out["fargan/fake_fraction"] == pytest.approx(12 / 32)
    assert out["fargan/selected_logit"] <= out["fargan/rejected_logit"]


# ---------------------------------------------------------------- aw
class M:
    normalized, alpha1, alpha2, delta, eps = True, 0.5, 0.75, 0.05, 0.0


def _dots(g_r, g_f):
    return g_r @ g_r, g_f @ g_f, g_r @ g_f


def _combined(g_r, g_f, s_r, s_f, m=M):
    w_r, w_f, branch = aw_weights(*_dots(g_r, g_f), torch.tensor(s_r), torch.tensor(s_f), m)
    return w_r * g_r + w_f * g_f, int(branch)


def test_aw_projection_is_orthogonal_to_the_other_gradient():
    g_r = torch.tensor([1.0, 2.0, -0.5])
    g_f = torch.tensor([-2.0, 0.3, 1.0])  # <g_r, g_f> < 0
    step, branch = _combined(g_r, g_f, s_r=0.3, s_f=0.2)  # s_r < alpha1: favour real
    assert branch == FAVOUR_REAL_PROJECTED
    assert abs(float(step @ g_f)) < 1e-6
    step, branch = _combined(g_r, g_f, s_r=0.9, s_f=0.2)  # D sure of reals: favour fake
    assert branch == FAVOUR_FAKE_PROJECTED
    assert abs(float(step @ g_r)) < 1e-6

    class WithEps(M):
        eps = 0.05
    step, _ = _combined(g_r, g_f, 0.3, 0.2, WithEps)
    rr, ff, rf = _dots(g_r, g_f)
    # up to eps: <w_r g_r + w_f g_f, g_f> = eps * (rf + ff)
    assert float(step @ g_f) == pytest.approx(0.05 * float(rf + ff), rel=1e-5)


def test_aw_bisector_bisects_and_agreeing_gradients_are_not_projected():
    g_r = torch.tensor([3.0, 0.0, 1.0])
    g_f = torch.tensor([0.0, -1.0, 0.5])
    step, branch = _combined(g_r, g_f, s_r=0.6, s_f=0.6)
    assert branch == BISECT
    cos = lambda a, b: float(a @ b / (a.norm() * b.norm()))  # noqa: E731
    assert cos(step, g_r) == pytest.approx(cos(step, g_f), abs=1e-6)
    g_f_agree = torch.tensor([1.0, 1.0, 1.0])  # <g_r, g_f> > 0
    step, branch = _combined(g_r, g_f_agree, s_r=0.3, s_f=0.2)
    assert branch == FAVOUR_REAL
    assert torch.allclose(step, g_r / g_r.norm())


def test_aw_weights_on_a_tiny_net_match_hand_computation():
    method, _ = make("method=aw", "loss=ns", "method.eps=0.05")
    D = nn.Linear(2, 1)
    with torch.no_grad():
        D.weight.copy_(torch.tensor([[0.5, -1.0]]))
        D.bias.fill_(-1.0)
    method.D = nn.Sequential(D, nn.Flatten(0))
    method.d_params = list(method.D.parameters())
    method.opt_d = torch.optim.SGD(method.d_params, lr=0.0)
    method.players["d"] = Player(method.d_params, method.opt_d)
    real = torch.tensor([[1.0, 0.0], [0.0, -1.0]])
    fake = torch.tensor([[2.0, 1.0], [-1.0, 1.0]])
    out = method.d_update(DBatch(real, fake), log=True)
    # by hand: l = w.x + b; d softplus(-l)/d(w, b) = -sigmoid(-l) (x, 1); d softplus(l) = sigmoid(l) (x, 1)
    sig = lambda t: 1 / (1 + math.exp(-t))  # noqa: E731
    w, b = (0.5, -1.0), -1.0
    l_r = [w[0] * x + w[1] * y + b for x, y in real.tolist()]
    l_f = [w[0] * x + w[1] * y + b for x, y in fake.tolist()]
    g_r = [sum(-sig(-l) * v for l, v in zip(l_r, col)) / 2 for col in ([1.0, 0.0], [0.0, -1.0], [1.0, 1.0])]
    g_f = [sum(sig(l) * v for l, v in zip(l_f, col)) / 2 for col in ([2.0, -1.0], [1.0, 1.0], [1.0, 1.0])]
    s_r = sum(sig(l) for l in l_r) / 2
    s_f = sum(sig(l) for l in l_f) / 2
    rr = sum(a * a for a in g_r)
    ff = sum(a * a for a in g_f)
    rf = sum(a * c for a, c in zip(g_r, g_f))
    assert s_r < 0.5  # D scores reals low here: the favour-real branch
    if rf < 0:
        w_r, w_f = 1 / math.sqrt(rr) + 0.05, -rf / (ff * math.sqrt(rr)) + 0.05
    else:
        w_r, w_f = 1 / math.sqrt(rr) + 0.05, 0.05
    assert float(out["aw/w_r"]) == pytest.approx(w_r, rel=1e-5)
    assert float(out["aw/w_f"]) == pytest.approx(w_f, rel=1e-5)
    assert float(out["aw/s_r"]) == pytest.approx(s_r, rel=1e-6)
    got = torch.cat([D.weight.grad.reshape(-1), D.bias.grad.reshape(-1)])
    want = torch.tensor([w_r * a + w_f * c for a, c in zip(g_r, g_f)])
    assert torch.allclose(got, want, rtol=1e-5, atol=1e-7)
    angle = math.degrees(math.acos(rf / math.sqrt(rr * ff)))
    assert float(out["aw/angle"]) == pytest.approx(angle, rel=1e-4)


def test_aw_unnormalized_is_algorithm_2():
    class Alg2(M):
        normalized, eps = False, 0.05
    g_r = torch.tensor([1.0, 2.0])
    g_f = torch.tensor([-1.0, 0.5])
    rr, ff, rf = _dots(g_r, g_f)
    w_r, w_f, _ = aw_weights(rr, ff, rf, torch.tensor(0.3), torch.tensor(0.2), Alg2)
    assert float(w_r) == pytest.approx(1.05)
    assert float(w_f) == pytest.approx(float(-rf / ff) + 0.05)


def test_aw_d_step_gives_g_no_gradient():
    method, stream = make("method=aw", "loss=hinge", "loss.penalty=r1")
    before = flat(method.G).clone()
    out = method.d_step(stream, log=True)
    assert all(p.grad is None for p in method.G.parameters())
    assert torch.equal(flat(method.G), before)
    assert int(out["aw/branch"]) in range(5)


# ---------------------------------------------------------------- stackelberg
def test_stackelberg_samples_generators_uniformly_and_labels_them_right():
    method, stream = make("method=stackelberg", "method.I=4", "method.players=stack")
    assert isinstance(method.G, MLPStack)
    train_steps(method, stream, 3)
    samples, index = method.sample(40_000, torch.Generator().manual_seed(0))
    counts = torch.bincount(index, minlength=4).float() / 40_000
    assert torch.all((counts - 0.25).abs() < 0.01), counts  # 4.6 binomial std
    # every sample is what its labelled generator makes of its latent
    gen = torch.Generator().manual_seed(0)
    torch.randint(4, (40_000,), generator=gen)
    z = method.noise(40_000, gen)
    method.G.eval()
    for i in range(4):
        rows = index == i
        assert torch.allclose(samples[rows], method.G.forward_one(i, z[rows]), atol=1e-6)


def test_stackelberg_stack_and_list_are_the_same_players():
    # optim=adam (lr 2e-4): at the default job's lr 3e-3 float rounding grows past the tolerance in 10 steps
    stack, s1 = make("method=stackelberg", "method.I=3", "method.players=stack", "arch.g.batchnorm=true", "optim=adam")
    lst, s2 = make("method=stackelberg", "method.I=3", "method.players=list", "arch.g.batchnorm=true", "optim=adam")
    assert isinstance(lst.G, NetList)
    z = torch.randn(3, 32, 2)
    assert torch.allclose(stack.G(z), lst.G(z), atol=1e-6)
    train_steps(stack, s1, 10)
    train_steps(lst, s2, 10)
    z = torch.randn(3, 50, 2)
    stack.G.eval(), lst.G.eval()
    assert torch.allclose(stack.G(z), lst.G(z), atol=1e-4)


@pytest.mark.parametrize("classifier", ["shared", "separate"])
def test_stackelberg_classifier_loss_falls(classifier):
    method, stream = make("method=stackelberg", "method.I=3", "method.classifier_weight=1.0",
                          f"method.classifier={classifier}")
    assert (method.C is None) == (classifier == "shared")
    out = method.step(stream, log=True)
    assert "loss/classifier" in out and float(out["loss/classifier"]) > 0
    first = float(out["loss/classifier"])
    train_steps(method, stream, 60)
    assert float(method.step(stream, log=True)["loss/classifier"]) < first


def test_stackelberg_shared_head_joins_d_and_g_losses():
    """classifier=shared: D's loss and G's loss each gain w * CE(head(body(G_i(z))), i), the head on the
    features D's last layer reads, trained with D (the released scripts)."""
    method, stream = make("method=stackelberg", "method.I=3", "method.classifier_weight=0.1")
    plain, _ = make("method=stackelberg", "method.I=3")
    assert any(p is method.D.which_generator.weight for p in method.d_params)
    real, fake = stream(), method.fakes()[0].detach()
    body = lambda x: method.D.net[:-1](x)  # noqa: E731  the MLP D without its last linear layer
    labels = torch.arange(3).repeat_interleave(32)
    ce = torch.nn.functional.cross_entropy(method.D.which_generator(body(fake)), labels)
    loss, out = method.d_loss(DBatch(real, fake), log=False)
    plain.D.load_state_dict({k: v for k, v in method.D.state_dict().items() if "which_generator" not in k})
    base, _ = plain.d_loss(DBatch(real, fake), log=False)
    assert float(loss.detach()) == pytest.approx(float((base + 0.1 * ce).detach()), rel=1e-6)
    assert float(out["loss/classifier"]) == pytest.approx(float(ce.detach()), rel=1e-6)
    # G's loss: the same term on fresh fakes
    noise = method.noise.generator.get_state()
    g_loss, _ = method.g_loss(log=False)
    method.noise.generator.set_state(noise)
    fresh = method.fakes()[0]
    sp = torch.nn.functional.softplus
    want = sp(-method.D(fresh)).mean() + 0.1 * torch.nn.functional.cross_entropy(
        method.D.which_generator(body(fresh)), labels)
    assert float(g_loss.detach()) == pytest.approx(float(want.detach()), rel=1e-6)


def test_stackelberg_batchnorm_d_scores_each_generator_on_its_own():
    method, _ = make("method=stackelberg", "method.I=3", "arch.d.batchnorm=true")
    assert method.score_each
    fake = method.fakes()[0].detach()
    each = torch.cat([method.D(part) for part in fake.chunk(3)])
    assert torch.equal(method.score_fake(fake)[0], each)
    assert not torch.allclose(method.D(fake), each)  # one batch of all generators normalises differently
    joint, _ = make("method=stackelberg", "method.I=3", "arch.d.batchnorm=true", "method.score_each=false")
    assert not joint.score_each and torch.equal(joint.score_fake(fake)[0], joint.D(fake))
    assert not make("method=stackelberg", "method.I=3")[0].score_each  # no batchnorm: one call


# ---------------------------------------------------------------- microbatch
def test_microbatch_d_k_sees_only_its_own_real_microbatch():
    method, stream = make("method=microbatch", "method.K=4", "method.alpha=0.5", "method.alpha_act=null",
                          "method.players=stack")
    real = stream().requires_grad_(True)
    fake = method.G(method.noise(32)).detach()
    per_d, _ = method.d_losses(DBatch(real, fake), log=False)
    for k in range(4):
        (grad,) = torch.autograd.grad(per_d[k], real, retain_graph=True)
        touched = grad.abs().sum(1) > 0
        rows = torch.zeros(32, dtype=torch.bool)
        rows[k * 8:(k + 1) * 8] = True
        assert torch.equal(touched, rows), k
        # and only D_k's own slice of the stacked weights moves with D_k's loss
        wgrad = torch.autograd.grad(per_d[k], method.D.layers[0].weight, retain_graph=True)[0]
        assert torch.count_nonzero(wgrad[torch.arange(4) != k]) == 0 and torch.count_nonzero(wgrad[k]) > 0


def test_microbatch_other_fakes_count_as_real_with_weight_alpha():
    method, stream = make("method=microbatch", "method.K=2", "method.alpha=0.25", "method.alpha_act=null",
                          "method.players=list")
    real, fake = stream(), method.G(method.noise(32)).detach()
    per_d, _ = method.d_losses(DBatch(real, fake), log=False)
    sp = torch.nn.functional.softplus
    for k, D in enumerate(method.D.members):
        own = slice(16 * k, 16 * (k + 1))
        other = slice(16 * (1 - k), 16 * (2 - k))
        want = sp(-D(real[own])).mean() + sp(D(fake[own])).mean() + 0.25 * sp(-D(fake[other])).mean()
        assert float(per_d[k].detach()) == pytest.approx(float(want.detach()), rel=1e-6)


def test_microbatch_sizes_are_near_equal_and_contiguous():
    from ganzoo.methods.microbatch import Microbatches, microbatch_sizes
    assert microbatch_sizes(256, 10) == [26] * 6 + [25] * 4 and microbatch_sizes(256, 8) == [32] * 8
    parts = Microbatches(7, 3, torch.device("cpu"))
    assert parts.bounds == [(0, 3), (3, 5), (5, 7)]
    v = torch.arange(7.0)
    assert parts.mean(v).tolist() == [1.0, 3.5, 5.5]
    every = torch.arange(21.0).view(3, 7)  # D_k's value on row j: 7k + j
    assert parts.own_mean(every).tolist() == pytest.approx([1.0, 7 + 3.5, 14 + 5.5])
    assert parts.other_mean(every).tolist() == pytest.approx([4.5, 7 + (0 + 1 + 2 + 5 + 6) / 5, 14 + 2.0])


@pytest.mark.parametrize("players", ["list", "auto"])
def test_microbatch_with_unequal_microbatches_keeps_each_d_to_its_own(players):
    # batch 32 in K=5 microbatches of 7, 7, 6, 6, 6 (a stack needs equal ones: auto takes the list)
    method, stream = make("method=microbatch", "method.K=5", "method.alpha=0.25", f"method.players={players}")
    assert isinstance(method.D, NetList)
    real, fake = stream().requires_grad_(True), method.G(method.noise(32)).detach()
    per_d, _ = method.d_losses(DBatch(real, fake), log=False)
    sp = torch.nn.functional.softplus
    bounds = [(0, 7), (7, 14), (14, 20), (20, 26), (26, 32)]
    for k, (D, (a, b)) in enumerate(zip(method.D.members, bounds)):
        others = torch.cat([fake[:a], fake[b:]])
        want = sp(-D(real[a:b])).mean() + sp(D(fake[a:b])).mean() + 0.25 * sp(-D(others)).mean()
        assert float(per_d[k].detach()) == pytest.approx(float(want.detach()), rel=1e-6)
        (grad,) = torch.autograd.grad(per_d[k], real, retain_graph=True)
        touched = (grad.abs().sum(1) > 0).nonzero().squeeze(1).tolist()
        assert touched == list(range(a, b)), k


def test_microbatch_unequal_microbatches_train_with_every_penalty():
    for penalty in (["loss.penalty=r1"], ["loss=wgan", "loss.penalty=gp"], ["loss.penalty=zgp"]):
        method, stream = make("method=microbatch", "method.K=3", *penalty)
        out = method.step(stream, log=True)
        assert torch.isfinite(out["loss/d_penalty"]) and float(out["loss/d_penalty"]) > 0, penalty


def test_microbatch_mix_reading_on_hand_values():
    # D_k: (1 - alpha) r(x_k) + alpha r(y_-k) + f(y_k); G: g(y_k) - alpha (r(y_-k) - r(x_k)), r(x_k) as D's step
    # measured it; alpha's gradient is r(x_k) - r(y_-k) summed over k
    method, stream = make("method=microbatch", "method.K=2", "method.reading=mix", "method.players=list")
    alpha = float(method.alpha().detach())
    real, fake = stream(), method.G(method.noise(32)).detach()
    per_d, _ = method.d_losses(DBatch(real, fake), log=False)
    sp = torch.nn.functional.softplus
    r_real = []
    for k, D in enumerate(method.D.members):
        own, other = slice(16 * k, 16 * (k + 1)), slice(16 * (1 - k), 16 * (2 - k))
        r_real.append(sp(-D(real[own])).mean())
        want = (1 - alpha) * r_real[-1] + alpha * sp(-D(fake[other])).mean() + sp(D(fake[own])).mean()
        assert float(per_d[k].detach()) == pytest.approx(float(want.detach()), rel=1e-6)
    state = method.noise.generator.get_state()
    loss, _ = method.g_loss(log=False)
    method.noise.generator.set_state(state)  # G's step drew its fakes from here
    y = method.G(method.noise(32))
    want = 0
    for k, D in enumerate(method.D.members):
        own, other = slice(16 * k, 16 * (k + 1)), slice(16 * (1 - k), 16 * (2 - k))
        want = want + sp(-D(y[own])).mean() - method.alpha() * (sp(-D(y[other])).mean() - r_real[k].detach())
    assert float(loss.detach()) == pytest.approx(float(want.detach()), rel=1e-6)
    (g_beta,) = torch.autograd.grad(loss, method.beta)
    dalpha = alpha * (1 - alpha)
    by_hand = sum(r_real[k].detach() - sp(-D(y[slice(16 * (1 - k), 16 * (2 - k))])).mean()
                  for k, D in enumerate(method.D.members)) * dalpha
    assert float(g_beta) == pytest.approx(float(by_hand.detach()), rel=1e-5)


def test_microbatch_additive_alpha_gradient_has_one_sign_and_mix_follows_the_data():
    # additive: d(G loss)/d(alpha) = -sum_k r(D_k(y_-k)) < 0 always; mix: r(x_k) - r(y_-k), whose sign is
    # what D_k makes of the others' fakes against its reals (negative control: flip D_k's view)
    for reading in ("additive", "mix"):
        method, stream = make("method=microbatch", "method.K=2", f"method.reading={reading}", "method.players=list")
        method.d_losses(DBatch(stream(), method.G(method.noise(32)).detach()), log=False)
        signs = []
        for shift in (-5.0, 5.0):  # the others' fakes scored far below / far above the reals
            method.last_real_term = torch.full((2,), float(torch.nn.functional.softplus(torch.tensor(-0.0))))
            last = method.D.members[0].net[-1], method.D.members[1].net[-1]
            with torch.no_grad():
                saved = [(layer.weight.clone(), layer.bias.clone()) for layer in last]
                for layer in last:
                    layer.weight.zero_()
                    layer.bias.fill_(shift)
            loss, _ = method.g_loss(log=False)
            signs.append(float(torch.autograd.grad(loss, method.beta)[0]) > 0)
            with torch.no_grad():
                for layer, (w, b) in zip(last, saved):
                    layer.weight.copy_(w)
                    layer.bias.copy_(b)
        # a positive gradient makes alpha fall
        assert signs == ([False, False] if reading == "additive" else [False, True]), (reading, signs)


def test_microbatch_g_reuse_scores_the_d_steps_noise():
    method, stream = make("method=microbatch", "method.K=2", "method.g_reuse=true")
    fake = method.d_batch(stream, log=False).fake
    z = method.last_z.clone()
    assert torch.equal(method.G(z).detach(), fake)
    before = method.noise.generator.get_state()
    method.g_loss(log=False)
    assert torch.equal(method.noise.generator.get_state(), before)  # no fresh noise drawn
    assert method.last_z is None
    # negative control: without reuse G's step draws fresh noise
    plain, stream2 = make("method=microbatch", "method.K=2")
    plain.d_batch(stream2, log=False)
    before = plain.noise.generator.get_state()
    plain.g_loss(log=False)
    assert not torch.equal(plain.noise.generator.get_state(), before)


def test_microbatch_own_vs_other_accuracy():
    method, _ = make("method=microbatch", "method.K=2", "method.players=list")
    fake = torch.zeros(32, 2)
    # D_0 scores its own rows 0 and the others' 1: perfect; D_1 scores every row alike: chance
    logits = torch.zeros(2, 32)
    logits[0, 16:] = 1.0
    assert float(method.own_vs_other(fake, logits)) == pytest.approx((1.0 + 0.5) / 2)
    logits[0] = -logits[0]  # D_0 reversed: 0
    assert float(method.own_vs_other(fake, logits)) == pytest.approx((0.0 + 0.5) / 2)


def test_microbatch_mix_refuses_an_alpha_outside_the_unit_interval():
    from ganzoo.errors import ConfigError
    with pytest.raises(ConfigError, match="method.alpha must be in \\[0, 1\\] with method.reading=mix"):
        compose_fast(*SMALL, "method=microbatch", "method.reading=mix", "method.alpha=1.5")


def test_microbatch_a_number_for_alpha_is_static():
    method, stream = make("method=microbatch", "method.K=2", "method.alpha=0.5")  # alpha_act keeps its default
    assert method.beta is None and method.alpha() is method.alpha()  # one tensor, not one per step
    assert float(method.alpha()) == 0.5
    train_steps(method, stream, 3)
    assert float(method.alpha()) == 0.5


def test_microbatch_self_learned_alpha_rises():
    method, stream = make("method=microbatch", "method.K=4", "method.alpha_act=sigmoid")
    assert torch.equal(method.beta.detach(), torch.tensor(-1.8))  # the paper's beta0, exactly
    alphas = [float(method.alpha().detach())]
    assert alphas[0] == pytest.approx(1 / (1 + math.exp(1.8)), rel=1e-6)
    for _ in range(5):
        train_steps(method, stream, 30)
        alphas.append(float(method.alpha().detach()))
    assert all(b > a for a, b in zip(alphas, alphas[1:])), alphas
    # Adam moves beta by at most lr per step: alpha rose at more than half that top speed
    top = 150 * 2e-4 * alphas[0] * (1 - alphas[0])
    assert alphas[-1] - alphas[0] > 0.5 * top, alphas


@pytest.mark.parametrize("act", ["softplus", "tanh", "identity"])
def test_microbatch_every_activation_starts_at_alpha_init(act):
    method, _ = make("method=microbatch", "method.K=2", f"method.alpha_act={act}", "method.alpha_init=0.3")
    assert float(method.alpha().detach()) == pytest.approx(0.3, rel=1e-5)


@pytest.mark.parametrize("act", ["softplus", "tanh", "identity"])
def test_microbatch_other_activations_start_at_the_papers_alpha0(act):
    method, _ = make("method=microbatch", "method.K=2", f"method.alpha_act={act}")
    assert float(method.alpha().detach()) == pytest.approx(1 / (1 + math.exp(1.8)), rel=1e-5)


def test_microbatch_batchnorm_d_normalises_the_same_whatever_alpha():
    """With a batchnorm D, D_k's logits on its own fakes do not depend on alpha (static 0, static
    0.5, self-learned); without the whole-batch scoring (the negative control) they do."""
    bn = ["method=microbatch", "method.K=4", "arch.d.batchnorm=true", "method.players=list"]
    fake = None
    own = []
    for alpha in (["method.alpha=0"], ["method.alpha=0.5"], []):
        method, _ = make(*bn, *alpha)
        assert method.whole_fake_batch
        if fake is None:
            fake = method.G(method.noise(32)).detach()
        own.append(method.own_mean(method.fake_logits(fake), lambda t: t).detach())
    assert torch.equal(own[0], own[1]) and torch.equal(own[0], own[2])
    method, _ = make(*bn, "method.alpha=0")
    method.whole_fake_batch = False  # each D_k on its own 8 fakes: batchnorm over 8 rows, not 32
    assert not torch.allclose(method.own_mean(method.fake_logits(fake), lambda t: t).detach(), own[0])
    plain, _ = make("method=microbatch", "method.K=4", "method.alpha=0")
    assert not plain.whole_fake_batch  # no batchnorm: D_k scores only its own fakes (K times cheaper)


# ---------------------------------------------------------------- sgan
def _snapshot(modules):
    return [t.detach().clone() for m in modules for t in list(m.parameters()) + list(m.buffers())]


@pytest.mark.parametrize("opponent", ["message", "live"])
def test_sgan_global_update_leaves_every_local_bit_identical(opponent):
    method, stream = make("method=sgan", "method.N=3", "arch.d.batchnorm=true", "arch.g.batchnorm=true",
                          f"method.opponent={opponent}")
    train_steps(method, stream, 3)
    nets = [net for p in method.pairs for net in (p.G, p.D)]
    before = _snapshot(nets)
    opt_before = [str(p.opt_g.state_dict()) + str(p.opt_d.state_dict()) for p in method.pairs]
    g0 = flat(method.G).clone()
    method.global_update(stream, log=True)  # the global pair's update alone
    after = _snapshot(nets)
    assert all(torch.equal(a, b) for a, b in zip(before, after))
    assert opt_before == [str(p.opt_g.state_dict()) + str(p.opt_d.state_dict()) for p in method.pairs]
    assert not torch.equal(flat(method.G), g0)  # while G_0 did move


@pytest.mark.parametrize("opponent, schedule, per_iteration", [
    ("message", "round", 4), ("live", "round", 3), ("message", "each", 6)])
def test_sgan_local_pairs_train_as_independent_baselines(opponent, schedule, per_iteration):
    method, stream = make("method=sgan", "method.N=2", f"method.opponent={opponent}",
                          f"method.schedule={schedule}")
    twins = []
    for i, pair in enumerate(method.pairs):
        twin = GAN(pair.setup, lambda: _copy(pair.G), lambda: _copy(pair.D), stream=i + 1)
        twin.load_state_dict(pair.state_dict())
        twins.append(twin)
    batches = []

    def draw(n=None):
        batches.append(stream(n))
        return batches[-1]
    for _ in range(6):
        method.step(draw, log=False)
    # each iteration, round: pair 0's batch, pair 1's, then D^msg's and D_0's (live: D_0's alone);
    # each: pair 0's, D^msg's, D_0's, pair 1's, D^msg's, D_0's
    for i, twin in enumerate(twins):
        position = i if schedule == "round" else 3 * i
        mine = iter(batches[position::per_iteration])
        for _ in range(6):
            twin.step(lambda n=None: next(mine), log=False)
        assert torch.equal(flat(twin.G), flat(method.pairs[i].G))
        assert torch.equal(flat(twin.D), flat(method.pairs[i].D))


def test_sgan_messages_are_copies_of_locals_drawn_uniformly():
    method, stream = make("method=sgan", "method.N=4", "method.msg_steps=0")
    train_steps(method, stream, 2)
    seen = []
    for _ in range(400):
        method.refresh_messages()
        l, j = method.drawn
        seen += [l, j]
    assert torch.equal(flat(method.message.G), flat(method.pairs[l].G))
    assert torch.equal(flat(method.message.D), flat(method.pairs[j].D))
    assert str(method.message.opt_d.state_dict()["state"]) == str(method.pairs[j].opt_d.state_dict()["state"])
    counts = torch.bincount(torch.tensor(seen), minlength=4)
    assert counts.min() > 160 and counts.max() < 240, counts  # 200 each expected (binomial sd 12)


def test_sgan_g0_trains_against_the_message_d_which_trains_against_g0():
    method, stream = make("method=sgan", "method.N=3")
    train_steps(method, stream, 2)
    g0_before = _copy(method.G)
    noise = method.noise.generator.get_state()
    out = method.global_update(stream, log=False)
    l, j = method.drawn
    assert not torch.equal(flat(method.message.D), flat(method.pairs[j].D))  # D^msg stepped against G_0
    # G_0's loss was g(D^msg(G_0(z))): D^msg after its step, G_0 before its own; z is G_0's second draw
    # of the update (the first made the fakes D^msg stepped on)
    method.noise.generator.set_state(noise)
    method.noise(32)
    z = method.noise(32)
    sp = torch.nn.functional.softplus
    with torch.no_grad():
        want = sp(-method.message.D(g0_before(z))).mean()
        local = sp(-method.pairs[j].D(g0_before(z))).mean()
    assert float(out["loss/g"]) == pytest.approx(float(want), rel=1e-6)
    assert float(out["loss/g"]) != pytest.approx(float(local), rel=1e-6)  # not the local D_j itself


def test_sgan_each_schedule_updates_the_global_pair_after_every_local_update():
    for schedule, updates in (("round", 3), ("each", 9)):
        method, stream = make("method=sgan", "method.N=3", f"method.schedule={schedule}")
        train_steps(method, stream, 3)
        step_count = next(iter(method.opt_g.state_dict()["state"].values()))["step"]
        assert int(step_count) == updates, schedule
        assert method.iteration == 3 and method.global_updates == updates


def _copy(net):
    import copy
    return copy.deepcopy(net)


def test_sgan_outputs_the_global_generator_and_scores_each_local():
    method, stream = make("method=sgan", "method.N=2")
    samples, index = method.sample(10, torch.Generator().manual_seed(3))
    with torch.no_grad():
        method.G.eval()
        z = method.noise(10, torch.Generator().manual_seed(3))
        assert torch.equal(samples, method.G(z))
    assert torch.equal(index, torch.zeros(10, dtype=torch.long))
    assert list(method.scored_parts()) == ["local1", "local2"]
    assert len(method.sample_each(4, torch.Generator().manual_seed(0))) == 3


# ---------------------------------------------------------------- every method on images, with every loss family
# the real files when Debian's package is there (CI installs it), else random images of their shape
REAL_IMAGES = __import__("ganzoo.data.files", fromlist=["x"]).DEBIAN_FASHION_MNIST.is_dir()
IMAGE = ["dataset=fashion_mnist", "arch=dcgan", "arch.g_width=8", "arch.d_width=8", "batch_size=16",
         "metrics.inception=false", "metrics.classifier=false", *([] if REAL_IMAGES else ["synthetic_images=64"])]
METHOD_ARGS = {name: record.overrides() for name, record in RECORDS.items()}  # every method's small instance


@pytest.mark.parametrize("loss", ["loss=ns", "loss=wgan", "loss=hinge", "loss=lsgan", "loss=minimax"])
@pytest.mark.parametrize("name", list(METHOD_ARGS))
def test_every_method_trains_on_images_with_every_loss(name, loss):
    # fargan brings its own penalty (wgan would default to gp); the rest take a zero-centred GP
    penalty = ["loss.penalty=none"] if name == "fargan" else [] if loss == "loss=wgan" else ["loss.penalty=zgp"]
    method, stream = make(*IMAGE, *METHOD_ARGS[name], loss, *penalty, "arch.spectral_norm=true", base=["device=cpu"])
    before = flat(method.G).clone()
    out = method.step(stream, log=True)
    assert all(torch.isfinite(v).all() for v in out.values()), out
    assert not torch.equal(flat(method.G), before)
    samples, index = method.sample(6, torch.Generator().manual_seed(0))
    assert samples.shape == (6, 1, 28, 28) and index.shape == (6,)
    assert len(method.sample_each(3, torch.Generator().manual_seed(0))) == method.picture_rows


# ---------------------------------------------------------------- the one D seam
class Seen:
    """The discriminator forwards that did not come through GAN.critic (nets in `ignore` aside)."""

    def __init__(self):
        self.depth, self.outside, self.ignore = 0, [], set()

    def check(self, module, args) -> None:
        # every D of nets/ has `logit`; a batched stack of 2-D Ds (microbatch) squeezes its output
        is_d = hasattr(module, "logit") or (isinstance(module, MLPStack) and module.squeeze)
        if is_d and not self.depth and id(module) not in self.ignore:
            self.outside.append(type(module).__name__)


@pytest.fixture
def seen(monkeypatch):
    seen, critic = Seen(), GAN.critic

    def counted(self, *args, **kwargs):
        seen.depth += 1
        try:
            return critic(self, *args, **kwargs)
        finally:
            seen.depth -= 1
    monkeypatch.setattr(GAN, "critic", counted)
    handle = torch.nn.modules.module.register_module_forward_pre_hook(seen.check)
    yield seen
    handle.remove()


@pytest.mark.parametrize("args", [
    ["method=gan", "loss.penalty=gp", "loss.k=1"], ["method=gan", "loss.penalty=r1", "loss.k=1"],
    ["method=fargan", "method.f=2", "method.N0=8"], ["method=aw"],
    ["method=stackelberg", "method.I=3", "method.classifier_weight=0.1", "arch.d.batchnorm=true"],
    ["method=stackelberg", "method.I=2", "method.classifier=separate", "method.classifier_weight=0.1"],
    ["method=microbatch", "method.K=4", "loss.penalty=gp", "loss.k=1"],
    ["method=microbatch", "method.K=3", "method.players=list"],
    ["method=sgan", "method.N=2"], ["method=sgan", "method.N=2", "method.opponent=live"],
    # conditional: the labels go through the seam too
    ["method=fargan", "method.f=2", "method.N0=8", "conditional=true"],
    ["method=microbatch", "method.K=4", "loss.penalty=gp", "loss.k=1", "conditional=true"],
    ["method=stackelberg", "method.I=3", "method.classifier_weight=0.1", "conditional=true"],
    ["method=sgan", "method.N=2", "conditional=true"], ["method=aw", "loss.penalty=r1", "conditional=true"],
], ids=lambda a: "_".join(x.split("=")[-1] for x in a))
def test_every_discriminator_call_goes_through_critic(args, seen):
    """What D sees can change in one place (GAN.critic) for every method: training, logging and the
    pictures' surface never call a discriminator around it (stackelberg's separate classifier of
    generators is not a discriminator)."""
    method, stream = make(*args)
    if getattr(method, "C", None) is not None:
        seen.ignore.update(id(m) for m in method.C.modules())
    train_steps(method, stream, 2)
    draw = (lambda: stream()[0]) if method.conditional else stream
    method.surface(draw())
    assert seen.outside == []
    x = draw()  # negative control: a direct call is seen
    method.D(x.unsqueeze(0).expand(method.K, *x.shape) if args[0] == "method=microbatch" else x)
    assert seen.outside


def test_every_discriminator_has_features_and_logit():
    """forward(x) is logit(features(x)) bit for bit, for every net a method can train against."""
    from ganzoo.nets.build import build_nets
    for name in ("mlp", "fargan_toy", "unrolled_toy", "microbatch_toy"):
        cfg = compose_fast(*SMALL, f"arch={name}", "arch.d_out=softplus")
        D = build_nets(cfg.arch, (2,))[1]()
        x = torch.randn(5, 2)
        assert torch.equal(D(x), D.logit(D.features(x)))


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_every_method_is_what_the_loop_asks_for(name):
    """Each record's class satisfies the written Method protocol (methods/protocol.py) and trains."""
    method, stream = make(*RECORDS[name].overrides())
    assert isinstance(method, Method) and type(method) is RECORDS[name].load()
    train_steps(method, stream, 2)
    assert not isinstance(object(), Method)  # the negative control: the check is not vacuous
