"""The default job (`ganzoo train` with no arguments) is FARGAN on the ring with the paper's toy nets and a
decayed lr 3e-3 (conf/train.yaml); scripts/default_job.py checks that it learns the ring over 10 seeds at 1 and
2 threads (docs/DEFAULT_JOB.md). Here: only what it composes to, and that the baseline differs in the method
alone (no training: 10 seeds x 2 thread counts take ~15 minutes)."""
from ganzoo.config import TrainConfig, compose_train, to_dict
from conftest import run_ganzoo


def test_the_default_job_is_fargan_on_the_ring_with_toy_nets_and_a_decayed_lr():
    cfg = compose_train()
    cfg.check()
    assert (cfg.dataset.name, cfg.arch.name, cfg.loss.name, cfg.loss.penalty) == ("ring", "fargan_toy", "ns", "none")
    assert (cfg.method.name, cfg.method.N0, cfg.method.f, cfg.method.k) == ("fargan", 16, 8, 10.0)
    assert cfg.arch.g.hidden == cfg.arch.d.hidden == [64, 64, 64]
    assert (cfg.optim.g.name, cfg.optim.g.lr, cfg.optim.d.lr, cfg.optim.decay) == ("adam", 3e-3, 3e-3, "linear")
    assert cfg.steps == TrainConfig.steps == 2000 and cfg.batch_size == TrainConfig.batch_size == 256


def test_the_baseline_command_changes_the_method_only():
    base, default = to_dict(compose_train("method=gan")), to_dict(compose_train())
    assert base.pop("method") == {"name": "gan"} and default.pop("method")["name"] == "fargan"
    assert base == default


def test_an_image_dataset_keeps_its_own_net(tmp_path):
    cfg = compose_train("dataset=cifar10")
    assert cfg.arch.name == "dcgan"


def test_the_command_prints_the_default_choice(tmp_path):
    out = run_ganzoo("train", "--cfg", "job", cwd=tmp_path).stdout
    assert "name: fargan\n" in out and "N0: 16" in out and "name: fargan_toy" in out and "decay: linear" in out
