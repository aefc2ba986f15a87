"""Exact resume: a run stopped at step s and resumed to t equals an uninterrupted run to t, bit for bit."""
import json
import re
import os

import numpy as np
import pytest
import torch

from conftest import compose_fast, ganzoo_here
from ganzoo import checkpoint
from ganzoo.data.files import DEBIAN_FASHION_MNIST
from ganzoo.errors import CheckpointError, ConfigError
from ganzoo.model import build
from ganzoo.train import train


compose = compose_fast  # compose_train, each set of group choices composed once


# optim.decay=none: the runs below extend `steps` on resume, and a linear decay (the default job's
# optim=adam_toy) spreads the lr over the run's `steps`, so a 10-then-20-step run follows another schedule
BASE = ["batch_size=32", "log_every=5", "eval_every=7", "sample_every=null", "ckpt_every=10",
        "metrics.num_samples=200", "device=cpu", "optim.decay=none"]


def final_state(run_dir):
    return checkpoint.load(run_dir / "ckpt" / "last.pt")


def assert_same_state(a, b):
    for net in ("G", "D"):
        for k in a["method"][net]:
            assert torch.equal(a["method"][net][k], b["method"][net][k]), f"{net}.{k} differs"
    for opt in ("opt_g", "opt_d"):
        sa, sb = a["method"][opt]["state"], b["method"][opt]["state"]
        for i in sa:
            for k in sa[i]:
                assert torch.equal(torch.as_tensor(sa[i][k]), torch.as_tensor(sb[i][k])), f"{opt}[{i}].{k}"
    assert torch.equal(a["method"]["noise"], b["method"]["noise"])
    assert torch.equal(a["data"]["generator"], b["data"]["generator"])
    assert torch.equal(a["rng"]["torch"], b["rng"]["torch"])


@pytest.mark.slow  # trains twice per case, seconds each
@pytest.mark.parametrize("extra", [
    ["method=gan"],                                                 # plain baseline
    ["method=gan", "loss=wgan", "n_dis=3", "ema.enabled=true"],    # gp penalty draws random numbers
    ["method=gan", "dataset=gaussian", "dataset.n=50", "loss=hinge", "loss.penalty=r1", "optim=rmsprop"],  # finite set
    pytest.param(["method=gan", "dataset=fashion_mnist", "arch=dcgan", "arch.g_width=8", "arch.d_width=8",
                  "metrics.inception=false", "metrics.classifier=false", "batch_size=16",
                  *([] if DEBIAN_FASHION_MNIST.is_dir() else ["synthetic_images=256"])],  # real files when present
                 id="images"),  # in-memory images with batchnorm nets
    # conditional: the images' labels, fake labels from the noise stream (the data's frequencies), class batchnorm
    pytest.param(["method=gan", "dataset=fashion_mnist", "arch=dcgan", "arch.g_width=8", "arch.d_width=8",
                  "metrics.inception=false", "metrics.classifier=false", "batch_size=16", "conditional=true",
                  "labels.fake=data", *([] if DEBIAN_FASHION_MNIST.is_dir() else ["synthetic_images=256"])],
                 id="conditional_images"),
    # ADA's p (moving every D step here), its statistic's sums and its draws; LeCam's anchors; bCR's draws
    pytest.param(["method=gan", "dataset=fashion_mnist", "arch=dcgan", "arch.g_width=8", "arch.d_width=8",
                  "metrics.inception=false", "metrics.classifier=false", "batch_size=16", "augment=ada",
                  "augment.p=0.2", "augment.interval=1", "augment.speed_images=2000", "loss.lecam=0.3",
                  "loss.consistency.bcr_real=1", *([] if DEBIAN_FASHION_MNIST.is_dir() else ["synthetic_images=256"])],
                 id="ada_lecam_bcr"),
    # conditional fargan: the chosen fakes join D's reals with their labels
    pytest.param(["method=fargan", "method.f=2", "method.N0=8", "conditional=true"], id="conditional_fargan"),
    # SGD's momentum buffers, the 2-D nets' init/input scale/softplus output, microbatch's mix reading and
    # its reuse of D's noise
    ["method=microbatch", "method.K=2", "method.reading=mix", "method.g_reuse=true", "optim=sgd",
     "optim.g.momentum=0.9", "optim.d.momentum=0.9", "arch.init=orthogonal", "arch.init_gain=0.8",
     "arch.d_out=softplus", "arch.d.in_scale=0.25"],
])
def test_stop_and_resume_is_bit_identical(tmp_path, extra):
    straight = tmp_path / "straight"
    train(compose(*BASE, *extra, "steps=40"), straight)

    parts = tmp_path / "parts"
    train(compose(*BASE, *extra, "steps=20"), parts)
    train(compose(*BASE, *extra, "steps=40", f"resume={parts}"), parts)

    a, b = final_state(straight), final_state(parts)
    assert a["step"] == b["step"] == 40
    assert_same_state(a, b)
    # the models sample identically, and the final metrics agree exactly
    for state in (a, b):
        model = build(compose(*BASE, *extra, "steps=40"))
        model.method.load_state_dict(state["method"])
        state["samples"] = model.method.sample(100, torch.Generator().manual_seed(0))[0]
    assert torch.equal(a["samples"], b["samples"])
    last = [json.loads(line) for line in (straight / "metrics.jsonl").read_text().splitlines()][-1]
    resumed = [json.loads(line) for line in (parts / "metrics.jsonl").read_text().splitlines()]
    assert resumed[-1] == {**last, "time": resumed[-1]["time"]}
    # evaluations of the killed part after its checkpoint are dropped: one record per step
    steps = [r["step"] for r in resumed]
    assert steps == sorted(set(steps))


@pytest.mark.slow  # trains three times, a second each
def test_pictures_never_move_the_training(tmp_path, monkeypatch):
    """The runs above draw no pictures (sample_every=null): a picture samples G from its own generator, in
    eval mode, so a run that draws one every 3 steps ends bit-identical to one that draws none. The
    nets have batchnorm, whose running statistics a forward pass in train mode would move. Negative
    control: a picture that runs D in train mode makes the two differ."""
    common = [*BASE, "arch.g.batchnorm=true", "arch.d.batchnorm=true", "ema.enabled=true", "steps=12"]
    train(compose(*common), tmp_path / "none")
    train(compose(*common, "sample_every=3"), tmp_path / "pictures")
    assert len(list((tmp_path / "pictures" / "samples").glob("*.png"))) == 4  # steps 3, 6, 9 and the end
    assert not (tmp_path / "none" / "samples").exists()
    a, b = final_state(tmp_path / "none"), final_state(tmp_path / "pictures")
    assert_same_state(a, b)
    assert_same_tree(a["method"], b["method"])

    import ganzoo.train
    real_picture = ganzoo.train.picture

    def in_train_mode(cfg, model, step):
        with torch.no_grad():
            model.method.D(torch.randn(64, 2))  # batchnorm's running statistics move
        return real_picture(cfg, model, step)

    monkeypatch.setattr(ganzoo.train, "picture", in_train_mode)
    train(compose(*common, "sample_every=3"), tmp_path / "moved")
    with pytest.raises(AssertionError):
        assert_same_tree(a["method"], final_state(tmp_path / "moved")["method"])


def assert_same_tree(a, b, where="method"):
    """Every tensor and number of two checkpoint trees equal, bit for bit."""
    if isinstance(a, dict):
        assert set(a) == set(b), where
        for k in a:
            assert_same_tree(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_tree(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    else:
        assert a == b, where


SMALL_NETS = ["arch.g.hidden=[32,32]", "arch.d.hidden=[32,32]"]


@pytest.mark.slow  # trains twice per case, seconds each
@pytest.mark.parametrize("extra", [
    ["method=fargan", "method.N0=8", "method.f=4"],
    ["method=aw", "loss=hinge", "loss.penalty=r1", "n_dis=2"],
    ["method=stackelberg", "method.I=3", "arch.g.batchnorm=true", "ema.enabled=true"],
    ["method=stackelberg", "method.I=2", "method.players=list", "method.classifier_weight=0.5"],
    ["method=microbatch", "method.K=4", "loss=wgan", "loss.penalty=gp"],
    ["method=microbatch", "method.K=2", "method.alpha=0.3", "method.alpha_act=null", "method.players=list"],
    ["method=sgan", "method.N=2", "arch.d.batchnorm=true", "ema.enabled=true"],
    ["method=sgan", "method.N=3", "method.schedule=each", "method.refresh=4"],
    ["method=stackelberg", "method.I=2", "method.classifier=separate", "method.classifier_weight=0.5",
     "arch.d.batchnorm=true"],
], ids=["fargan", "aw", "stackelberg", "stackelberg_list_classifier", "microbatch_gp", "microbatch_static_list",
        "sgan", "sgan_each_refresh4", "stackelberg_separate_bn_d"])
def test_every_method_resumes_bit_identically(tmp_path, extra):
    common = [*BASE, *SMALL_NETS, *extra]
    straight = tmp_path / "straight"
    train(compose(*common, "steps=20"), straight)
    parts = tmp_path / "parts"
    train(compose(*common, "steps=10"), parts)
    train(compose(*common, "steps=20", f"resume={parts}"), parts)
    a, b = final_state(straight), final_state(parts)
    assert a["step"] == b["step"] == 20
    assert_same_tree(a["method"], b["method"])
    assert_same_tree(a["rng"], b["rng"], "rng")
    last = json.loads((straight / "metrics.jsonl").read_text().splitlines()[-1])
    resumed = json.loads((parts / "metrics.jsonl").read_text().splitlines()[-1])
    assert resumed == {**last, "time": resumed["time"]}


@pytest.mark.slow  # trains twice per case, seconds each
def test_resume_after_a_kill_between_checkpoints(tmp_path, monkeypatch):
    """A run killed at step 27 restarts from its step-20 checkpoint and ends identical, with a
    linear lr decay and EMA (state the optimiser and scheduler carry)."""
    extra = ["optim.decay=linear", "ema.enabled=true", "ema.start=5", "steps=40"]
    straight = tmp_path / "straight"
    train(compose(*BASE, *extra), straight)

    from ganzoo.methods.gan import GAN
    original = GAN.step

    def killed_at_27(self, draw_real, log=False):
        if self.iteration == 26:
            raise KeyboardInterrupt
        return original(self, draw_real, log)

    killed = tmp_path / "killed"
    monkeypatch.setattr(GAN, "step", killed_at_27)
    with pytest.raises(KeyboardInterrupt):
        train(compose(*BASE, *extra), killed)
    monkeypatch.setattr(GAN, "step", original)
    assert final_state(killed)["step"] == 20
    train(compose(*BASE, *extra, f"resume={killed}"), killed)
    a, b = final_state(straight), final_state(killed)
    assert_same_state(a, b)
    for k in a["method"]["ema"]:
        assert torch.equal(a["method"]["ema"][k], b["method"]["ema"][k])


def test_resume_refuses_a_different_experiment(tmp_path):
    run = tmp_path / "run"
    train(compose(*BASE, "steps=10"), run)
    with pytest.raises(ConfigError, match="loss.name: 'ns' -> 'hinge'"):
        train(compose(*BASE, "steps=20", "loss=hinge", f"resume={run}"), run)


def test_resume_accepts_a_run_saved_before_a_key_existed():
    """A checkpoint written before `synthetic_images` and `paper` were config keys still resumes while they
    keep their defaults; set to anything else they are a different experiment."""
    from ganzoo.config import to_dict
    from ganzoo.resume import check_resumable

    saved = to_dict(compose(*BASE))
    del saved["synthetic_images"], saved["paper"]
    check_resumable(saved, compose(*BASE, "steps=20"))
    with pytest.raises(ConfigError, match="synthetic_images: 0 -> 512"):
        check_resumable(saved, compose(*BASE, "synthetic_images=512"))
    # a key under a group takes its schema's default too: unchanged at the default, a change otherwise
    saved["dataset"].pop("std")
    check_resumable(saved, compose(*BASE))
    with pytest.raises(ConfigError, match="dataset.std: 0.02 -> 0.5"):
        check_resumable(saved, compose(*BASE, "dataset.std=0.5"))


def test_atomic_write_keeps_the_old_file_when_interrupted(tmp_path):
    path = tmp_path / "ckpt" / "last.pt"
    checkpoint.save(path, {"format": checkpoint.FORMAT, "x": torch.ones(3)})

    def dies_halfway(fh):
        fh.write(b"partial")
        raise KeyboardInterrupt  # as a kill would, mid-write

    with pytest.raises(KeyboardInterrupt):
        checkpoint.atomic_write(path, dies_halfway)
    assert torch.equal(checkpoint.load(path)["x"], torch.ones(3))
    assert os.listdir(path.parent) == ["last.pt"]  # no temp file left behind



def test_atomic_write_leaves_the_permissions_a_plain_write_would(tmp_path):
    """mkstemp's temp file is 0o600; renamed as it was, a checkpoint or status.json would be unreadable
    to the rest of a shared project's group."""
    def mode(p):
        return p.stat().st_mode & 0o777

    saved = os.umask(0o027)
    try:
        checkpoint.atomic_write(tmp_path / "group.json", lambda fh: fh.write(b"{}"))
        os.umask(0o022)
        checkpoint.save(tmp_path / "ckpt" / "last.pt", {"format": checkpoint.FORMAT})
        with open(tmp_path / "plain", "w"):  # what the two must equal
            pass
    finally:
        os.umask(saved)
    assert (mode(tmp_path / "group.json"), mode(tmp_path / "ckpt" / "last.pt")) == (0o640, 0o644)
    assert mode(tmp_path / "plain") == 0o644
    os.chmod(tmp_path / "group.json", 0o600)  # a file's own mode is kept when it is rewritten
    checkpoint.atomic_write(tmp_path / "group.json", lambda fh: fh.write(b"[]"))
    assert mode(tmp_path / "group.json") == 0o600

def test_load_refuses_pickled_code_and_garbage(tmp_path):
    evil = tmp_path / "evil.pt"
    torch.save({"format": checkpoint.FORMAT, "f": np.dtype}, evil)  # arbitrary globals need weights_only=False
    with pytest.raises(CheckpointError, match="was refused for safety") as info:
        checkpoint.load(evil)
    assert "weights_only" not in str(info.value) and "corrupt" not in str(info.value)  # no advice to unpickle it
    os_system = tmp_path / "os_system.pt"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'PWNED'}",))
    torch.save({"format": checkpoint.FORMAT, "x": Payload()}, os_system)
    with pytest.raises(CheckpointError, match="was refused for safety"):
        checkpoint.load(os_system)
    assert not (tmp_path / "PWNED").exists()
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        checkpoint.load(junk)


@pytest.mark.slow
def test_cli_resume_extends_a_run_in_place(tmp_path):
    common = ["batch_size=32", "eval_every=0", "sample_every=null", "ckpt_every=15", "metrics.num_samples=200",
              "device=cpu", "loss=hinge", "seed=4", "optim.decay=none"]  # steps grow on resume: no decay (BASE)
    ganzoo_here("train", *common, "steps=30", "hydra.run.dir=straight", cwd=tmp_path)
    ganzoo_here("train", *common, "steps=15", "hydra.run.dir=parts", cwd=tmp_path)
    proc = ganzoo_here("train", f"resume={tmp_path / 'parts'}", "steps=30", cwd=tmp_path)
    assert "resuming" in proc.stdout + proc.stderr
    assert not (tmp_path / "outputs").exists()  # continued in place, no new folder
    for name in ("straight", "parts"):
        ganzoo_here("sample", f"run={name}", "n=200", f"out={name}.npz", cwd=tmp_path)
    with np.load(tmp_path / "straight.npz") as a, np.load(tmp_path / "parts.npz") as b:
        np.testing.assert_array_equal(a["samples"], b["samples"])


def test_the_readme_and_the_refusal_name_the_same_changeable_keys():
    from pathlib import Path
    from ganzoo.resume import resumable_text
    readme = " ".join((Path(__file__).resolve().parent.parent / "README.md").read_text().split())
    assert f"Only {resumable_text()} may change on resume" in readme
    from ganzoo.config import resolved, to_dict
    from ganzoo.resume import check_resumable
    saved = to_dict(resolved(compose("device=cpu", "method=gan", "loss=hinge")))
    with pytest.raises(ConfigError, match=re.escape(f"only {resumable_text().replace('`', '')} may change")):
        check_resumable(saved, compose("device=cpu", "method=gan"))


def test_resuming_a_finished_run_with_the_same_steps_appends_nothing(tmp_path):
    run = tmp_path / "run"
    train(compose(*BASE, "steps=10"), run)
    before = {p: (run / p).read_bytes() for p in ("metrics.jsonl", "status.json", "ckpt/last.pt")}
    train(compose(*BASE, "steps=10", f"resume={run}"), run)
    assert {p: (run / p).read_bytes() for p in before} == before
    # negative control: more steps do extend it
    train(compose(*BASE, "steps=12", f"resume={run}"), run)
    assert (run / "metrics.jsonl").read_bytes() != before["metrics.jsonl"]
