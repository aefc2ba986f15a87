"""Everything `ganzoo` checks before a job starts, in-process (cli.check_command, the function the
command runs first; test_cli_command.py runs the installed command)."""
import sys

import pytest

from ganzoo import cli
from ganzoo.errors import GanzooError


def _refused(tmp_path, monkeypatch, command, *args) -> str:
    """The one-line message `ganzoo <command> <args>` stops with (exit 2: the command is the user's to
    change)."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(GanzooError) as info:
        cli.check_command(command, list(args))
    assert info.value.exit_code == 2, type(info.value)  # each is the command's to change
    return str(info.value)


@pytest.mark.parametrize("overrides, expected", [
    (["batch_size=0"], "batch_size must be > 0"),
    (["optim.g.lr=0"], "optim.g.lr must be > 0"),
    (["optim.d.lr=-1e-3"], "optim.d.lr must be > 0"),
    (["optim.g.lr=inf"], "optim.g.lr must be a finite number, got inf"),
    (["seed=-1"], "seed must be in [0, 4294967295], got -1"),
    (["lr=1e-3"], "unknown config key 'lr'; did you mean 'optim.g.lr' or 'optim.d.lr'?"),
    (["players=stack"], "unknown config key 'players'; did you mean 'method.players'? (a key of method=stackelberg, "
                        "method=microbatch)"),
    (["method.K=5"], "method=fargan has no 'K' (method=microbatch has it: add method=microbatch)"),
    (["objective=modes"], "objective: unknown metric 'modes'; did you mean 'modes_covered'? known:"),
    (["seed=4294967296"], "seed must be in [0, 4294967295], got 4294967296"),  # torch overflowed deep inside  # would run until it diverged
    (["optim.d.lr=nan"], "optim.d.lr must be a finite number, got nan"),
    (["optim.d.betas=[0.5,-inf]"], "optim.d.betas[1] must be a finite number, got -inf"),
    (["n_dis=0"], "n_dis must be >= 1"),
    (["experiment=stackelberg_fashion_mnist", "benchmark=stacked_pacgan"], "experiment= and benchmark= each pin"),
    (["benchmark=stacked_pacgan", "dataset=fashion_mnist"], "not fashion_mnist: drop them, or the benchmark="),
    (["sample_every=-1"], "sample_every (0: only at the end; null: none) must be >= 0, got -1"),
    (["loss.k=-1"], "loss.k"),
    (["loss.penalty=r3"], "loss.penalty: 'r3' is not allowed; choose one of: none, r1, gp, zgp"),
    (["method=nope"], "method=nope: no such option; available: aw, fargan, fargan_ring, gan, microbatch, sgan, stackelberg"),
    (["dataset=moons"], "dataset=moons: no such option; available: celeba, celeba32, cifar10, cifar100, "
                        "fashion_mnist, gaussian, grid, image_folder"),
    (["dataset=cifar10", "arch=mlp"], "arch=mlp is a 2-D net but dataset cifar10 holds images"),
    (["dataset=mnist", "arch=fargan_resnet32"], "arch=fargan_resnet32 supports 32x32 images"),
    (["dataset=cifar10", "arch=dcgan", "amp=bf16", "device=cpu"], "amp=bf16 needs a CUDA device"),
    (["metrics.min_class_share=2"], "metrics.min_class_share must be in [0, 1]"),
    (["stepz=10"], "unknown config key 'stepz'; did you mean 'steps'?"),
    (["+optim.g.lrr=1"], "unknown config key 'optim.g.lrr'; did you mean 'optim.g.lr'?"),
    (["steps=ten"], "steps: 'ten' has the wrong type"),
    (["device=tpu"], "device: 'tpu' is not allowed; choose one of: auto, cpu, cuda"),
    (["arch.g.act=swish"], "arch.g.act"),
    (["ema.decay=1.5"], "ema.decay must be in (0, 1)"),
    (["arch=stackelberg_toy"], "arch.g.out=tanh keeps samples in [-1, 1]"),
    (["resume=/nonexistent/run"], "resume=/nonexistent/run"),
])
def test_config_error_is_one_line_and_leaves_nothing(tmp_path, monkeypatch, overrides, expected):
    message = _refused(tmp_path, monkeypatch, "train", *overrides)
    assert expected in message and "\n" not in message, message
    assert list(tmp_path.iterdir()) == []  # no run folder, no log


@pytest.mark.parametrize("args, expected", [
    (["sample", "myrun"], "'myrun' is a folder: name it as run=myrun"),
    (["eval", "myrun"], "'myrun' is a folder: name it as run=myrun"),
    (["train", "myrun"], "'myrun' is a folder: name it as resume=myrun"),
    (["train", "methodfargan"], "'methodfargan' is not key=value (ganzoo train --help lists the keys)"),
    (["sample", "run=myrun", "n=["], "cannot read 'n=[': no viable alternative at input '['"),
    (["train", "method=fargan", "method.f=2,3"],
     "method.f=2,3 gives several values, a sweep: add -m to run one job per value"),
    (["eval", "run=myrun", "seed=range(3)"], "seed=range(3) gives several values, a sweep"),
])
def test_malformed_override_is_one_line_for_every_command(tmp_path, monkeypatch, args, expected):
    # checked before Hydra runs: its own parse errors are several lines and exit 1
    (tmp_path / "myrun").mkdir()
    message = _refused(tmp_path, monkeypatch, *args)
    assert expected in message and "\n" not in message, message
    assert [p.name for p in tmp_path.iterdir()] == ["myrun"] and not any((tmp_path / "myrun").iterdir())


@pytest.mark.parametrize("overrides, expected", [
    (["method=fargan", "method.N0=64", "batch_size=64"], "method.N0 must be in [0, batch_size=64)"),
    (["method=microbatch", "method.K=300"], "method.K (discriminators) must be in [1, batch_size=256]"),
    (["method=stackelberg", "method.I=0"], "method.I (generators) must be >= 1"),
    (["method=microbatch", "method.K=3", "method.players=stack"], "method.K=3 must divide batch_size=256, or "
                                                                    "use method.players=list"),
    (["method=fargan", "loss.penalty=gp"], "set loss.penalty=none"),
    (["method=aw", "method.Alpha1=0.3"], "did you mean 'method.alpha1'"),
    (["method=sgan", "method.N=0"], "method.N (local pairs) must be >= 1"),
    (["method=aw", "method.alpha1=0.8"], "method.alpha1 must be below method.alpha2 (the authors assert it), "
                                         "got 0.8 and 0.75"),
    (["method=aw", "method.alpha2=1.5"], "method.alpha2 (a mean sigmoid score) must be"),
    (["method=aw", "method.alpha1=0"], "method.alpha1 (a mean sigmoid score) must be"),
    (["method=sgan", "method.opponent=frozen"], "method.opponent"),
    (["method=sgan", "method.refresh=0"], "method.refresh (global updates between message copies) must be >= 1"),
    (["method=stackelberg", "method.classifier=head"], "method.classifier"),
])
def test_impossible_method_settings_fail_at_start(tmp_path, monkeypatch, overrides, expected):
    message = _refused(tmp_path, monkeypatch, "train", *overrides)
    assert expected in message and "\n" not in message, message
    assert not (tmp_path / "outputs").exists()


def test_a_sweep_is_checked_job_by_job_before_any_runs(tmp_path, monkeypatch):
    assert _refused(tmp_path, monkeypatch, "train", "-m", "batch_size=64,0") == \
        "job [batch_size=0]: batch_size must be > 0, got 0"
    flags, overrides = cli.check_command("train", ["-m", "loss=ns,hinge", "seed=0,1"])
    assert flags == ["-m"] and overrides[:2] == ["loss=ns,hinge", "seed=0,1"]
    assert cli.expand_sweep(["loss=ns,hinge", "seed=0,1", "steps=5"]) == [
        ["loss=ns", "seed=0", "steps=5"], ["loss=ns", "seed=1", "steps=5"],
        ["loss=hinge", "seed=0", "steps=5"], ["loss=hinge", "seed=1", "steps=5"]]  # Hydra's basic order
    jobs = cli.compose_jobs("train", ["seed=range(2)", "dataset=glob(c*)"], multirun=True)  # glob: group options
    assert sorted({str(composed.dataset.name) for _, composed in jobs}) == ["celeba", "cifar10", "cifar100"]
    assert len(jobs) == 8
    assert _refused(tmp_path, monkeypatch, "train", "-m", "optim.g.lr=interval(0.1,1)").startswith(
        "optim.g.lr=interval(0.1,1): an interval is a search space for hydra/sweeper=optuna")


def test_flags_and_overrides_are_told_apart_without_a_table_of_hydra_flags():
    assert cli.split_args(["-m", "seed=0,1", "--cfg", "job", "~method.N", "-cn", "train", "x=1"]) == (
        ["-m", "--cfg", "job", "-cn", "train"], ["seed=0,1", "~method.N", "x=1"])
    assert cli.split_args(["myrun"]) == ([], ["myrun"])  # a bare word is an override slip, named as such
    assert cli.split_args(["--cfg", "x=1", "myrun"]) == (["--cfg"], ["x=1", "myrun"])  # a value follows its flag


def test_an_optimising_sweep_must_push_its_objective_the_right_way(tmp_path, monkeypatch):
    assert _refused(tmp_path, monkeypatch, "train", "-m", "hparams_search=fargan_ring", "objective=mmd").endswith(
        "objective=mmd is better lower: set hydra.sweeper.direction=minimize (it is maximize)")
    assert "did you mean 'modes_covered'" in _refused(tmp_path, monkeypatch, "train", "objective=modes_covred")
    cli.check_command("train", ["-m", "hparams_search=fargan_ring"])  # its params are the sweeper's to pick


@pytest.mark.parametrize("args, expected", [
    (["eval", "run=x", "bogus=1"], "unknown config key 'bogus'"),
    (["sample", "run=x", "n=abc"], "n: 'abc' has the wrong type"),
    (["classifier", "dataset=ring"], "dataset ring has no class labels"),
    (["sample"], "run=<run dir> is required"),
    (["fit"], "unknown command 'fit'"),
])
def test_other_commands_check_their_keys_too(tmp_path, monkeypatch, args, expected):
    assert expected in _refused(tmp_path, monkeypatch, *args)


def test_checking_imports_no_torch():
    import subprocess
    code = ("import sys; from ganzoo import cli; cli.check_command('train', ['method=fargan', 'dataset=cifar10', "
            "'arch=fargan_resnet32', 'metrics.inception=false', 'synthetic_images=512', '--cfg', 'job']); "
            "assert 'torch' not in sys.modules, 'checking a command imported torch'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_a_config_dir_lends_its_group_options_to_the_checks(tmp_path, monkeypatch):
    """`--config-dir DIR method=mine` finds DIR/method/mine.yaml, as Hydra does when the app runs (and as
    hydra.searchpath did already); a typo of it gets the closest name."""
    (tmp_path / "mine" / "method").mkdir(parents=True)
    (tmp_path / "mine" / "method" / "mine.yaml").write_text("name: gan\n")
    monkeypatch.chdir(tmp_path)
    for flags in (["--config-dir", str(tmp_path / "mine")], ["-cd", "mine"], [f"--config-dir={tmp_path / 'mine'}"]):
        cli.check_command("train", [*flags, "method=mine", "--cfg", "job"])
    assert "did you mean method=mine?" in _refused(tmp_path, monkeypatch, "train", "-cd", "mine", "method=mien")
    # negative control: without the flag the option is unknown
    assert "method=mine: no such option" in _refused(tmp_path, monkeypatch, "train", "method=mine")


def test_help_lists_the_users_groups_and_each_commands_own_keys(capsys):
    cli.main(["train", "--help"])
    out = capsys.readouterr().out
    for group in ("dataset:", "arch:", "method:", "loss:", "optim:", "experiment:", "budget:"):
        assert f"\n{group} " in out, group
    for internal in ("budget_method", "schema/", "hydra/"):
        assert internal not in out, internal  # plumbing, not a choice
    assert "\nsteps: 2000" in out and "unrolled_toy" in out
    cli.main(["eval", "--help"])
    out = capsys.readouterr().out
    assert "\nrun: null" in out and "\nckpt: last" in out and "Groups" not in out and "steps:" not in out
    cli.main(["train", "dataset=cifar10", "--help"])  # composed with the command's own values
    assert "name: dcgan" in capsys.readouterr().out
