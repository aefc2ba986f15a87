import functools
import os
import shutil
import subprocess
from pathlib import Path

import pytest

# the commands a test starts get the cores of one test worker: with parallel workers (pytest -n, the
# default in pyproject.toml) torch's default of a thread per core would oversubscribe the machine
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _WORKERS)))


def pytest_configure(config):
    """One torch thread for the nets the tests build in this process: they are tiny, and on 2 shared cores
    a second thread mostly waits (a 128x128 Linear on 32 rows: 17 us at 1 thread, ms at 2 under load).
    The commands the tests start get a worker's share of the cores (above), all of them under -n 0: their
    image nets run ~1.8x faster on 2 threads. Not in pytest-xdist's controller, which runs no test:
    importing torch there (~2.5 s) only delays the workers' start."""
    if not hasattr(config, "workerinput") and config.getoption("numprocesses", default=0):
        return
    import torch
    torch.set_num_threads(1)

# a tiny budget every end-to-end run starts from; tests add their own overrides
TINY = ["steps=40", "batch_size=64", "eval_every=20", "ckpt_every=20", "log_every=10",
        "sample_every=null", "metrics.num_samples=500", "device=cpu"]


_BASES: dict = {}  # group choices -> Hydra's composition of them


def composed(*groups: str):
    """Hydra's composition of `train` with these group choices (method=..., arch=...), once per process.
    Shared: read it, or deep-copy it before changing it."""
    if groups not in _BASES:
        from hydra import initialize_config_module
        from hydra.core.global_hydra import GlobalHydra
        from ganzoo.config import compose_config
        GlobalHydra.instance().clear()
        with initialize_config_module(config_module="ganzoo.conf", version_base="1.3"):
            _BASES[groups] = compose_config("train", list(groups))
    return _BASES[groups]


@functools.lru_cache(maxsize=1)
def _groups() -> frozenset:
    """The config groups: conf/'s folders and the groups ganzoo registers in Hydra's ConfigStore."""
    from hydra.core.config_store import ConfigStore
    import ganzoo.config  # noqa: F401  registers the schemas
    conf = Path(__file__).resolve().parents[1] / "conf"
    return frozenset({p.name for p in conf.iterdir() if p.is_dir()} | {
        name for name in ConfigStore.instance().list("") if not name.endswith(".yaml")})


def compose_fast(*overrides: str):
    """compose_train(*overrides), for tests that compose many lines which differ only in values: Hydra
    composes each set of group choices once (`composed`, ~0.15 s a composition), and each `key=value` of
    a key that composition has is then set with OmegaConf.update, as Hydra sets it after composing the
    defaults. Anything else (+key, ~key, a sweep, a key it lacks, a value of the wrong type, hydra.*)
    goes through compose_train itself. test_registries checks it against compose_train."""
    import copy

    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import OverrideType
    from omegaconf import OmegaConf

    from ganzoo.config import compose_train, load_train_config

    groups = _groups()
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    if any(o.type != OverrideType.CHANGE or o.is_sweep_override() or o.package is not None
           or o.key_or_group.startswith("hydra") for o in parsed):
        return compose_train(*overrides)
    raw = copy.deepcopy(composed(*(o.input_line for o in parsed if o.key_or_group in groups)))
    missing = object()
    try:
        for o in parsed:
            if o.key_or_group in groups:
                continue
            if OmegaConf.select(raw, o.key_or_group, default=missing) is missing:
                raise KeyError(o.key_or_group)
            OmegaConf.update(raw, o.key_or_group, o.value(), merge=True)
    except Exception:
        return compose_train(*overrides)  # Hydra's own error message
    return load_train_config(raw)


def ganzoo_exe() -> str:
    exe = shutil.which("ganzoo")
    if exe is None:
        pytest.fail("the `ganzoo` command is not installed (pip install -e .[test])")
    return exe


def run_ganzoo(*args, cwd, check=True, env=None, timeout=300):
    proc = subprocess.run([ganzoo_exe(), *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"ganzoo {' '.join(map(str, args))} failed ({proc.returncode}):\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


def ganzoo_here(*args, cwd, check=True, env=None, timeout=None):
    """`ganzoo <args>` in this process: the command's checks (cli.check_command), then its Hydra app
    with that command line, exactly as the installed command runs them minus the process start (~5 s
    a command here: two interpreters, torch, torch.compile's imports). For the tests that run several
    commands; the installed command itself is tested in test_cli_command.py and test_wheel.py.
    `env` is set for the command and restored after it; `timeout` is run_ganzoo's, unused here.
    Returns what subprocess.run would (returncode, stdout, stderr)."""
    import contextlib
    import importlib
    import io
    import sys

    from ganzoo import cli
    from ganzoo.errors import GanzooError

    out, err = io.StringIO(), io.StringIO()
    code = 0
    before, argv, environ = os.getcwd(), sys.argv, dict(os.environ)
    try:
        os.environ.update(env or {})
        os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            command, rest = str(args[0]), [str(a) for a in args[1:]]
            lock = None
            try:
                flags, overrides = cli.check_command(command, rest)
                overrides, lock = cli.claim_run(command, flags, overrides)
                if lock is not None:
                    lock.hand_to_child()  # sets the variable the app reads; nothing is exec'd here
                sys.argv = [f"ganzoo {command}", *flags, *overrides]
                importlib.import_module(f"ganzoo.apps.{command}").main()
            except GanzooError as exc:
                print(f"ganzoo: error: {exc}", file=sys.stderr)
                code = exc.exit_code
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            finally:
                if lock is not None:
                    lock.release()
    finally:
        os.chdir(before)
        sys.argv = argv
        os.environ.clear()
        os.environ.update(environ)
    proc = subprocess.CompletedProcess(["ganzoo", *map(str, args)], code, out.getvalue(), err.getvalue())
    if check and code != 0:
        raise AssertionError(f"ganzoo {' '.join(map(str, args))} failed ({code}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def only_run_dir(root: Path) -> Path:
    runs = [p for p in (root / "outputs" / "train").iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


@pytest.fixture
def tiny():
    return list(TINY)


class Split:
    """A labelled split with ganzoo's image-data item shape: (uint8 C x H x W, int label)."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], int(self.y[i])


def pytest_collection_modifyitems(items):
    """The end-to-end runs first, so that parallel workers (pytest -n) do not end on one long test
    while the other waits. A stable sort: every worker collects the same order."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
