"""What the CUDA path needs, checked where a CPU can show it: checkpoints load onto any device, no
host sync in a step that does not log, torch.compile beside gradient penalties, fp16 penalties,
start-up checks that wait for the machine the job runs on."""
import traceback

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from conftest import compose_fast
from ganzoo import checkpoint, losses
from ganzoo.config import compose_train
from ganzoo.data import Stream
from ganzoo.errors import ConfigError
from ganzoo.methods.common import make_optimizer
from ganzoo.methods.gan import Player
from ganzoo.methods.schemas import METHODS as RECORDS
from ganzoo.model import build, configure_backends
from ganzoo.train import to_floats, train

SMALL = ["device=cpu", "batch_size=32", "arch.g.hidden=[16]", "arch.d.hidden=[16]"]


def make(*overrides):
    cfg = compose_fast(*SMALL, *overrides)
    checkpoint.seed_everything(cfg.seed)
    model = build(cfg)
    return model.method, Stream(model.data, cfg.batch_size, cfg.seed, model.device, labelled=cfg.conditional)


# ---------------------------------------------------------------- checkpoints onto another device
def _saved_state(tmp_path, *overrides):
    method, stream = make(*overrides)
    for _ in range(3):
        method.step(stream)
    path = tmp_path / "last.pt"
    checkpoint.save(path, {"format": checkpoint.FORMAT, "method": method.state_dict(),
                           "data": stream.state_dict(), "rng": checkpoint.rng_state()})
    return path


def _to_meta(method):
    """The method's nets and optimisers on another device, as `build` makes them on CUDA."""
    for net in method.networks():
        net.to("meta")
    method.g_params, method.d_params = list(method.G.parameters()), list(method.D.parameters())
    method.opt_g = make_optimizer(method.g_params, method.setup.optim_g)
    method.opt_d = make_optimizer(method.d_params, method.setup.optim_d)
    method.players.update(g=Player(method.g_params, method.opt_g), d=Player(method.d_params, method.opt_d))
    return method


@pytest.mark.filterwarnings("ignore:for .*copying from a non-meta parameter")
@pytest.mark.parametrize("overrides", [["method=gan"], ["method=stackelberg", "method.I=2"]])
def test_a_checkpoint_loads_onto_nets_on_another_device(tmp_path, overrides):
    path = _saved_state(tmp_path, *overrides)
    state = checkpoint.load(path)
    method, stream = make(*overrides)
    _to_meta(method).load_state_dict(state["method"])  # the Generator states stay CPU ByteTensors
    stream.load_state_dict(state["data"])
    checkpoint.set_rng_state(state["rng"])
    assert torch.equal(method.noise.generator.get_state(), state["method"]["noise"])
    for opt in (method.opt_g, method.opt_d):
        for s in opt.state.values():
            # moments follow their parameters; the step counter stays on the host, where a
            # non-fused Adam reads it without waiting on the device
            assert s["exp_avg"].device.type == "meta" and s["step"].device.type == "cpu"


def test_mapping_a_checkpoint_to_the_device_breaks_the_generators(tmp_path):
    """The negative control: what map_location=<the training device> did (crashed on CUDA)."""
    state = torch.load(_saved_state(tmp_path), map_location="meta", weights_only=True)
    method, _ = make()
    with pytest.raises((RuntimeError, TypeError)):
        method.noise.generator.set_state(state["method"]["noise"])
    assert state["method"]["opt_d"]["state"][0]["step"].device.type == "meta"


def test_every_tensor_of_a_loaded_checkpoint_is_on_the_cpu(tmp_path):
    state = checkpoint.load(_saved_state(tmp_path, "method=stackelberg", "method.I=2"))
    seen = []

    def walk(x):
        if isinstance(x, torch.Tensor):
            seen.append(x.device.type)
        elif isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, (list, tuple)):
            for v in x:
                walk(v)
    walk(state)
    assert seen and set(seen) == {"cpu"}
    assert state["method"]["noise"].dtype == torch.uint8 and state["data"]["generator"].dtype == torch.uint8


def test_only_the_current_cuda_devices_rng_state_is_saved(monkeypatch):
    one = torch.arange(16, dtype=torch.uint8)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device="cuda": one)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    given = []
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device="cuda": given.append(state))
    state = checkpoint.rng_state()
    assert isinstance(state["cuda"], torch.Tensor) and torch.equal(state["cuda"], one)
    checkpoint.set_rng_state(state)
    # a checkpoint of v1 held every GPU's state: the current device's is restored, or the last one
    checkpoint.set_rng_state({**state, "cuda": [one + 1, one + 2]})
    checkpoint.set_rng_state({**state, "cuda": [one + 3]})
    assert [g.tolist() for g in given] == [one.tolist(), (one + 2).tolist(), (one + 3).tolist()]
    assert all(g.device.type == "cpu" and g.dtype == torch.uint8 for g in given)


# ---------------------------------------------------------------- no host sync in a quiet step
aten = torch.ops.aten
_SYNCS = {aten._local_scalar_dense.default, aten.nonzero.default, aten.masked_select.default,
          aten.is_nonzero.default, aten.lift_fresh.default}


class HostSyncs(TorchDispatchMode):
    """Records the ops that make a CUDA step wait for the host: .item() and friends, boolean-mask
    indexing (a nonzero inside), and tensors made from Python data (a host-to-device copy). Adam's
    own .item() on its step counter is left out: that counter lives on the host on CUDA too."""

    def __init__(self):
        super().__init__()
        self.found = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        bad = func in _SYNCS
        if func in (aten.index.Tensor, aten.index_put_.default, aten.index_put.default):
            bad = any(t is not None and t.dtype == torch.bool for t in args[1])
        if bad and func is aten._local_scalar_dense.default:
            bad = not any("torch/optim/" in f.filename for f in traceback.extract_stack())
        if bad:
            self.found.append(str(func))
        return func(*args, **(kwargs or {}))


# every method's small instance, then variants (penalties, losses, EMA, a learned or fixed alpha)
METHODS = [record.overrides() for record in RECORDS.values()] + [
    ["method=gan", "loss=wgan", "ema.enabled=true", "optim.decay=linear"], ["method=gan", "loss.penalty=r1", "n_dis=2"],
    ["method=aw", "loss.penalty=zgp"], ["method=stackelberg", "method.I=3", "loss.penalty=zgp"],
    ["method=microbatch", "method.K=5", "method.alpha=0.3"],
    ["method=microbatch", "method.K=5", "method.alpha=0", "loss.penalty=r1"],
    ["method=microbatch", "method.K=3", "loss=wgan", "loss.penalty=gp", "method.players=list"]] + [
    # every method conditional: fake labels (from the data's frequencies), one-hot inputs, the projection
    record.overrides() + ["conditional=true", "labels.fake=data"] for record in RECORDS.values()]


@pytest.mark.parametrize("overrides", METHODS, ids=lambda o: " ".join(a.split("=")[-1] for a in o))
def test_a_step_that_does_not_log_never_waits_for_the_host(overrides):
    method, stream = make(*overrides)
    method.step(stream, log=True)
    with HostSyncs() as syncs:
        for _ in range(2):
            method.step(stream, log=False)
    assert syncs.found == []


def test_the_sync_detector_sees_masks_items_and_host_tensors():
    x = torch.randn(8)
    with HostSyncs() as syncs:
        x[x > 0].sum()
        (x * 2).sum().item()
        x + torch.tensor(0.5)
    assert syncs.found.count("aten.nonzero.default") + syncs.found.count("aten.index.Tensor") >= 1
    assert "aten._local_scalar_dense.default" in syncs.found and "aten.lift_fresh.default" in syncs.found


def test_logged_scalars_come_back_as_numbers():
    out = {"a": torch.tensor(1.5), "b": torch.tensor([2.0]), "c": torch.tensor(3, dtype=torch.long)}
    assert to_floats(out) == {"a": 1.5, "b": 2.0, "c": 3.0}
    assert to_floats({}) == {}


def test_optimisers_are_fused_or_foreach_only_on_cuda():
    cfg = compose_train(*SMALL)
    cpu = [nn.Parameter(torch.zeros(3))]
    assert make_optimizer(cpu, cfg.optim.g).defaults["fused"] is None
    cfg.optim.d.name = "rmsprop"
    assert make_optimizer(cpu, cfg.optim.d).defaults["foreach"] is None


# ---------------------------------------------------------------- torch.compile and penalties
@pytest.fixture
def fast_compile(monkeypatch):
    """torch.compile through aot_eager: the same aot_autograd (where double backward fails) without
    inductor's code generation, so a test compiles in a second."""
    original = nn.Module.compile
    monkeypatch.setattr(nn.Module, "compile", lambda self, **kw: original(self, backend="aot_eager"))


@pytest.mark.parametrize("penalty", [["method=gan", "loss.penalty=r1"], ["method=gan", "loss.penalty=gp"],
                                     ["method=fargan", "method.N0=8"]])
def test_compile_with_a_gradient_penalty_compiles_g_and_keeps_d_eager(fast_compile, penalty):
    method, stream = make("compile=true", *penalty)
    assert method.G._compiled_call_impl is not None and method.D._compiled_call_impl is None
    for _ in range(2):
        out = method.step(stream, log=True)
    assert all(torch.isfinite(v).all() for v in out.values())


def test_compile_without_a_penalty_compiles_every_net(fast_compile):
    method, stream = make("compile=true", "method=gan")  # the default job's fargan has a penalty
    assert all(net._compiled_call_impl is not None for net in method.networks())
    method.step(stream, log=False)


def test_a_compiled_d_with_a_penalty_fails_as_torch_says(fast_compile):
    """The negative control: compiling D as well fails in double backward, on CPU as on CUDA."""
    method, stream = make("compile=true", "method=gan", "loss.penalty=r1")
    method.D.compile()
    with pytest.raises(RuntimeError, match="double backward"):
        method.step(stream, log=False)


# ---------------------------------------------------------------- fp16 penalties
def test_a_scaled_fp16_penalty_matches_fp32_where_the_unscaled_one_underflows():
    torch.manual_seed(0)
    x = torch.randn(32, 16).half().float()
    w = torch.randn(16).half()

    def penalty(dtype, scale=None):
        xi = x.clone().requires_grad_(True)
        # a D whose logit is small (1e-8 per unit of its last layer): its input gradient is far
        # below fp16's smallest subnormal (6e-8)
        logits = (xi.to(dtype) @ w.to(dtype)).float() * 1e-8
        return losses.r1(logits, xi, scale).item()
    exact = penalty(torch.float32)
    assert exact > 0
    assert penalty(torch.float16) == 0.0  # underflow, and no error
    scaled = penalty(torch.float16, scale=torch.tensor(65536.0))
    assert scaled == pytest.approx(exact, rel=5e-3)


# ---------------------------------------------------------------- backends and device checks
def test_deterministic_and_tf32_set_the_backends():
    cfg = compose_train(*SMALL, "deterministic=true", "tf32=false")
    configure_backends(cfg)
    try:
        assert torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.deterministic
        assert not torch.backends.cudnn.benchmark and not torch.backends.cuda.matmul.allow_tf32
    finally:
        configure_backends(compose_train(*SMALL))
    assert not torch.are_deterministic_algorithms_enabled() and torch.backends.cuda.matmul.allow_tf32


@pytest.mark.parametrize("overrides", METHODS[::2], ids=lambda o: " ".join(a.split("=")[-1] for a in o))
def test_every_method_steps_with_deterministic_algorithms(overrides):
    method, stream = make("deterministic=true", *overrides)
    try:
        for _ in range(2):
            method.step(stream, log=True)
    finally:
        torch.use_deterministic_algorithms(False)


def test_device_checks_wait_for_a_remote_launchers_job(tmp_path, monkeypatch):
    from ganzoo.cli import check_train
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="device=cuda but no CUDA device"):
        check_train(["device=cuda"], multirun=True)
    with pytest.raises(ConfigError, match="amp=bf16 needs a CUDA device"):
        check_train(["amp=bf16", "hydra/launcher=submitit_local"], multirun=True)
    # sent to a cluster from a machine without a GPU: accepted here ...
    check_train(["hydra/launcher=submitit_slurm", "device=cuda", "amp=bf16"], multirun=True)
    # ... and refused inside the job, before it writes anything
    cfg = compose_train("device=cuda")
    run = tmp_path / "job"
    run.mkdir()
    with pytest.raises(ConfigError, match="device=cuda"):
        train(cfg, run)
    assert list(run.iterdir()) == []


@pytest.mark.parametrize("overrides", [
    ["augment=ada", "augment.p=0.5", "augment.interval=1"], ["augment=diffaugment"],
    ["loss.lecam=0.3", "loss.consistency.bcr_real=10", "loss.consistency.bcr_fake=10"],
    ["loss.consistency.zcr_dis=5", "loss.consistency.zcr_gen=0.5", "method=aw", "augment=ada"],
], ids=["ada", "diffaugment", "lecam_bcr", "zcr_aw_ada"])
def test_augmentation_and_regularisers_step_without_waiting_for_the_host(overrides):
    """ADA adjusts p on the device every D step here; DiffAugment's, bCR's and zCR's draws stay there too."""
    cfg = compose_fast("device=cpu", "dataset=fashion_mnist", "synthetic_images=64", "arch=dcgan", "arch.g_width=4",
                       "arch.d_width=4", "batch_size=16", "metrics.inception=false", "metrics.classifier=false",
                       *overrides)
    checkpoint.seed_everything(0)
    model = build(cfg)
    stream = Stream(model.data, cfg.batch_size, cfg.seed, model.device)
    model.method.step(stream, log=True)
    with HostSyncs() as syncs:
        for _ in range(2):
            model.method.step(stream, log=False)
    assert syncs.found == []
