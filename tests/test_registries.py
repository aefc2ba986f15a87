"""Each kind of choice has one list of names (an enum or a schema table) and the code that implements
it covers exactly that list; every default is its schema's; checking a config never changes it."""
import copy
import sys
import subprocess

import pytest
import torch

from ganzoo import config, losses
from ganzoo.config import Amp, Loss, Optimizer, Penalty, compose_train, load_train_config, to_dict
from ganzoo.data import files, images
from ganzoo.data.schemas import TOY_DATASETS, ImageSet
from ganzoo.methods.common import Noise, make_optimizer
from ganzoo.methods.microbatch import ACTS, INVERSE
from ganzoo.methods.gan import GAN
from ganzoo.methods.schemas import METHOD_SCHEMAS, METHODS, AlphaAct
from ganzoo.metrics.registry import METRICS, higher_is_better, score
from ganzoo.nets.common import init_weights
from ganzoo.nets.mlp import activation
from ganzoo.nets.schemas import NETS, Act, ConvNet, Init
from ganzoo.nets.schemas import Noise as NoiseName


def test_every_name_has_its_implementation_and_nothing_else():
    assert set(losses.LOSSES) == set(Loss)
    assert set(METHODS) == set(METHOD_SCHEMAS) and all(issubclass(r.load(), GAN) for r in METHODS.values())
    assert set(NETS) == set(ConvNet) and all(callable(record.load()) for record in NETS.values())
    assert set(ACTS) == set(INVERSE) == set(AlphaAct)
    assert set(files.DATASETS) == set(ImageSet)
    for name, record in files.DATASETS.items():  # every record names a reader that exists
        assert callable(getattr(images, record.reader)), name
    for act in Act:
        assert isinstance(activation(act), torch.nn.Module)
    for name in NoiseName:
        assert Noise(3, name, torch.device("cpu"), seed=0)(4).shape == (4, 3)
    for scheme in Init:
        init_weights(torch.nn.Linear(2, 2), scheme)
    for name in Optimizer:
        assert make_optimizer([torch.nn.Parameter(torch.zeros(2))], config.OptimizerConfig(name=name))
    assert {p.value for p in Penalty} == {"none", "r1", "gp", "zgp"} and {a.value for a in Amp} == {"off", "bf16", "fp16"}


def test_each_option_of_the_schema_groups_is_its_schema_defaults():
    cfg = compose_train("method=gan")  # the default job's choices but the method (tests/test_default_job.py)
    assert to_dict(cfg.dataset) == to_dict(TOY_DATASETS["ring"]())
    assert to_dict(cfg.method) == to_dict(METHOD_SCHEMAS["gan"]())
    assert cfg.steps == config.TrainConfig.steps == 2000  # v1: train.yaml said 6000, the dataclass 5000
    for name, schema in METHOD_SCHEMAS.items():
        assert to_dict(compose_train(f"method={name}").method) == to_dict(schema())
    assert compose_train("loss=wgan", "method=gan").loss.penalty == "gp"  # fargan refuses a penalty of the loss
    assert compose_train("optim=rmsprop").optim.d.lr == 1e-4


@pytest.mark.parametrize("overrides", [["method=stackelberg"], ["dataset=cifar10", "method=stackelberg"], []])
def test_checking_a_config_never_changes_it(overrides):
    cfg = compose_train(*overrides)
    before = copy.deepcopy(to_dict(cfg))
    cfg.check()
    assert to_dict(cfg) == before
    assert cfg.method.name != "stackelberg" or cfg.method.I is None  # null stays null; build resolves it
    assert cfg.metrics.num_samples is None
    assert to_dict(load_train_config(to_dict(cfg), saved=True)) == before  # a saved config loads back as it was


def test_the_tests_shortcut_composes_what_hydra_composes():
    """conftest.compose_fast (one Hydra composition per set of group choices, values set on it) gives the
    config compose_train gives, on lines like test_methods', test_resume's and test_cuda_path's: lists,
    null, floats, booleans, paths, nested keys, a value of a key the group choice brings. Negative
    controls: a different value differs; a key the config lacks and a wrong type fail as Hydra fails."""
    from conftest import compose_fast
    from ganzoo.errors import ConfigError
    lines = [
        ["device=cpu", "batch_size=32", "arch.g.hidden=[16,16]", "arch.d.hidden=[16,16]", "method=microbatch",
         "method.K=2", "method.alpha_act=null", "method.alpha=0.3", "method.players=list"],
        ["batch_size=32", "eval_every=7", "sample_every=null", "optim.decay=none", "method=gan", "loss=wgan",
         "n_dis=3", "ema.enabled=true", "steps=20", "resume=/tmp/some run/parts"],
        ["method=stackelberg", "method.I=3", "optim=adam", "optim.g.eps=1e-3", "arch.g.batchnorm=true"],
        ["method=gan", "loss=hinge", "loss.penalty=r1", "optim=rmsprop", "dataset=gaussian", "dataset.n=50"],
        ["method=sgan", "method.N=3", "method.schedule=each", "method.refresh=4", "seed=7"],
        ["arch=dcgan", "dataset=image_folder", "dataset.channels=1", "dataset.resolution=48", "arch.g_width=8",
         "arch.d_width=8"],  # test_arch's size and width cases
    ]
    for line in lines:
        assert to_dict(compose_fast(*line)) == to_dict(compose_train(*line)), line
    assert to_dict(compose_fast(*lines[0][:-1], "method.players=stack")) != to_dict(compose_train(*lines[0]))
    for bad, words in ((["method=gan", "method.K=2"], "method.K"), (["steps=ten"], "steps")):
        with pytest.raises(ConfigError, match=words) as fast:
            compose_fast(*bad)
        with pytest.raises(ConfigError) as slow:
            compose_train(*bad)
        assert str(fast.value) == str(slow.value)


def test_a_composed_config_loads_as_the_full_merge_loads_it(monkeypatch):
    """load_train_config takes a node Hydra already merged into its schema as it is (_as_composed) instead of
    merging it into the schema again: for experiments of every method, every method, 2-D and image datasets
    and typed values from the command line, the result is the full merge's, and a key forced in with `+`
    still fails."""
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf
    from ganzoo.config import compose_config
    from test_experiments import EXPERIMENTS

    lines = [[f"experiment={e}"] for e in EXPERIMENTS[::4]] + [[f"method={m}"] for m in METHOD_SCHEMAS]
    lines += [[f"dataset={d}"] for d in ("ring", "grid", "cifar10", "stl10", "fashion_mnist")]
    lines += [["optim=rmsprop", "optim.g.betas=[0.1,0.2]", "device=cpu", "amp=bf16", "threads=2",
               "+paper.reports.fid=3", "ema.enabled=true", "loss=hinge", "watchdog.max_loss=7"]]
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="ganzoo.conf", version_base="1.3"):
        composed = [compose_config("train", line, return_hydra_config=True) for line in lines]
        forced = compose_config("train", ["+optim.g.foo=1"])
    # the fast path is taken for every line (it falls back to the merge silently otherwise)
    assert all(config._as_composed(config.TrainConfig, c, skip=("dataset", "arch", "method", "hydra"))
               for c in composed)
    assert all(config._as_composed(OmegaConf.get_type(c.dataset), c.dataset) for c in composed)
    fast = [to_dict(load_train_config(c)) for c in composed]
    calls = []
    monkeypatch.setattr(config, "_as_composed", lambda *a, **k: calls.append(a) and None)
    assert [to_dict(load_train_config(c)) for c in composed] == fast
    assert calls  # the control: the full merge ran
    with pytest.raises(config.ConfigError, match="optim.g.foo"):
        load_train_config(forced)
    monkeypatch.undo()
    with pytest.raises(config.ConfigError, match="optim.g.foo"):
        load_train_config(forced)


def test_a_v1_saved_config_still_loads():
    saved = to_dict(compose_train("optim=rmsprop"))
    saved["optim"]["name"] = "rmsprop"  # v1 wrote this unread key
    assert load_train_config(saved, saved=True).optim.g.name == "rmsprop"
    with pytest.raises(config.ConfigError, match="unknown config key 'optim.name'"):
        load_train_config(saved)  # on a command line it is a typo like any other


def test_a_v1_sgan_run_loads_with_the_reading_it_trained_with():
    saved = to_dict(compose_train("method=sgan"))
    assert saved["method"]["opponent"] == "message"
    for key in ("opponent", "schedule", "refresh", "msg_steps"):
        del saved["method"][key]  # v1 wrote none of these
    v1 = load_train_config(saved, saved=True).method
    assert (v1.opponent, v1.schedule, v1.refresh, v1.msg_steps) == ("live", "round", 1, 1)
    assert load_train_config(saved).method.opponent == "message"  # a new config takes today's default


def test_metric_directions_and_the_best_checkpoint_metric():
    assert higher_is_better("modes_covered") and higher_is_better("local2/classes_covered")
    assert not higher_is_better("fid") and not higher_is_better("user_column")
    assert score({"fid": 30.0, "cfid": 2.0}) == ("fid", 30.0)
    assert score({"cfid": 2.0, "fid": float("nan")}) == ("cfid", 2.0)
    assert score({"fid": 30.0, "classes_covered": 7}, "classes_covered") == ("classes_covered", 7.0)
    assert score({"fid": 30.0}, "classes_covered") is None
    for m in METRICS.values():
        assert m.needs in {"modes", "samples", "finite", "inception", "vgg16", "classifier"}
    with pytest.raises(config.ConfigError, match="metrics.best: unknown metric 'fdi'; .*did you mean 'fid'"):
        compose_train("metrics.best=fdi")


def test_config_module_imports_no_torch():
    code = "import sys; import ganzoo.config, ganzoo.metrics.registry; assert 'torch' not in sys.modules"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_a_v1_checkpoint_samples_and_resumes(tmp_path):
    """A checkpoint whose saved config has v1's retired key (optim.name) and its filled-in nulls
    (metrics.num_samples, method.I) still samples and resumes (checked against real v1 runs by hand:
    v1 20 steps + this version's resume to 30 gave v1's straight 30-step samples bit for bit)."""
    from ganzoo import checkpoint
    from ganzoo.train import train
    from ganzoo.use import load_run

    base = ["method=stackelberg", "method.I=2", "steps=4", "batch_size=16", "eval_every=0", "ckpt_every=0",
            "sample_every=null", "metrics.num_samples=100", "device=cpu"]
    train(compose_train(*base), tmp_path)
    path = tmp_path / "ckpt" / "last.pt"
    state = checkpoint.load(path)
    state["config"]["optim"]["name"] = "adam"
    state["config"]["metrics"]["num_samples"] = 100
    checkpoint.save(path, state)
    cfg, model, step, _ = load_run(str(tmp_path), "last", "cpu")
    assert step == 4 and cfg.method.I == 2
    train(compose_train(*base[:2], *base[3:], "steps=6", f"resume={tmp_path}"), tmp_path)
    assert checkpoint.load(path)["step"] == 6
