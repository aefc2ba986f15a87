"""`ganzoo <subcommand> [Hydra overrides and flags]`.

Each subcommand is a standard Hydra app (ganzoo/apps/). Before it starts (and
makes a run directory), every job the command line describes is composed with
Hydra's compose API and checked here, so a typo fails in about a second with one
line and leaves no files; then the app replaces this process.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

USAGE = """usage: ganzoo <command> [key=value ...] [Hydra flags]

commands:
  train    train a GAN (config groups: dataset, arch, loss, method, optim)
           ganzoo train method=gan dataset=ring loss=hinge steps=2000
           ganzoo train -m loss=ns,hinge seed=0,1          (a sweep: one job per combination)
           ganzoo train resume=<run dir> [steps=N]         (continue a run exactly)
  sample   draw samples from a trained run
           ganzoo sample run=<run dir> n=2500 out=samples.npz|samples.png [seed=0] [ckpt=last] [class=3]
  eval     compute the metrics of a saved checkpoint and append them to the run's metrics.jsonl
           ganzoo eval run=<run dir> [ckpt=last|best]
  classifier  train and cache the classifier behind the offline class metrics (cfid, classes_covered)
           ganzoo classifier dataset=fashion_mnist [metrics.cache_dir=~/.cache/ganzoo]
  report   one table (report.md, report.csv) and plots for a sweep or a folder of runs
           ganzoo report outputs/multirun/<date>

Each command takes Hydra's flags too: --cfg job (print the config), --help (its options),
-m (sweep), hydra.run.dir=DIR (where a run writes).
"""

COMMANDS = ("train", "sample", "eval", "classifier", "report")
# flags after which ganzoo checks nothing: Hydra answers them without running a job
_NO_CHECK = {"--help", "-h", "--hydra-help", "--info", "-i", "--shell-completion", "-sc", "--version"}


def fail(message: str, code: int = 1) -> None:
    print(f"ganzoo: error: {message}", file=sys.stderr)
    sys.exit(code)


def split_args(args: Sequence[str]) -> Tuple[List[str], List[str]]:
    """Separate Hydra's flags (with their values) from key=value overrides. An override has an
    "=" or starts with "~"; a flag starts with "-", and a following word that is neither is its
    value (--cfg job, -cn train); any other word is a slip check_syntax names."""
    flags, overrides = [], []
    previous = ""
    for a in args:
        takes_value = previous.startswith("-") and "=" not in previous and not _is_switch(previous)
        if a.startswith("-") or (takes_value and "=" not in a and not a.startswith("~")):
            flags.append(a)
        else:
            overrides.append(a)
        previous = a
    return flags, overrides


def _is_switch(flag: str) -> bool:
    """Hydra's flags that take no value."""
    return flag in ("-m", "--multirun", "--run", "-r", "--help", "-h", "--hydra-help", "--version",
                    "--resolve")


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def dedupe(overrides: Sequence[str]) -> List[str]:
    """Keep the last override of each key (a resumed run's new steps= beats its old one)."""
    last = {_key(o): i for i, o in enumerate(overrides)}
    return [o for i, o in enumerate(overrides) if last[_key(o)] == i]


# keys whose value is a path: a path with a space, `=`, `,` or a quote is quoted for Hydra's grammar
PATH_KEYS = {"train": ("resume", "hydra.run.dir", "hydra.sweep.dir"), "sample": ("run", "out", "hydra.run.dir"),
             "eval": ("run", "hydra.run.dir")}
_PLAIN = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./~:+@%-")


def quote_paths(command: str, overrides: List[str]) -> List[str]:
    """A path value as typed (`resume=/runs/my run=a,b`) made a quoted Hydra string; a value already
    quoted, or one that is a Hydra expression (${...}), is left to Hydra."""
    out = []
    for o in overrides:
        key, eq, value = o.partition("=")
        if eq and key in PATH_KEYS.get(command, ()) and value and value[0] not in "'\"" and "${" not in value \
                and not set(value) <= _PLAIN:
            o = f"{key}={_quoted(value)}"
        out.append(o)
    return out


def _value(override: str) -> Optional[str]:
    """An override's value as Hydra reads it (a quoted string unquoted; null is None)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    value = OverridesParser.create().parse_override(override).value()
    return None if value is None else str(value)


def resume_overrides(overrides: List[str]) -> List[str]:
    """resume=<run dir>: recompose that run's own overrides, then the new ones, in its folder."""
    value = next((_value(o) for o in overrides if _key(o) == "resume"), None)
    if value in (None, "", "null", "auto"):  # auto: the run's own folder, decided by the job
        return overrides
    from .errors import CheckpointError
    import yaml

    run = Path(value).expanduser().resolve()
    saved = run / ".hydra" / "overrides.yaml"
    if not saved.is_file():
        raise CheckpointError(f"resume={value}: {saved} not found; pass the folder of a ganzoo train run")
    try:
        items = yaml.safe_load(saved.read_bytes().decode("utf-8")) or []  # safe: a !!python tag builds nothing
        if not isinstance(items, list) or not all(isinstance(o, str) and ("=" in o or o.startswith("~"))
                                                  for o in items):
            raise ValueError("not a list of key=value overrides")
    except (yaml.YAMLError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise CheckpointError(f"resume={value}: {saved} is damaged ({reason}); nothing was run. Restore it "
                              f"(the run's config is in {run / '.hydra' / 'config.yaml'}) or start a new run") \
            from None
    previous = [o for o in items if not _key(o).startswith("hydra.") and _key(o) != "resume"]
    new = [o for o in overrides if _key(o) != "resume"]
    merged = dedupe(previous + new) + [f"resume={_quoted(str(run))}"]
    if not any(_key(o) == "hydra.run.dir" for o in merged):
        merged.append(f"hydra.run.dir={_quoted(str(run))}")
    return merged


def folder_names(overrides: List[str]) -> str:
    """A sweep job's folder is named by the keys the sweep varies (e.g. 3_loss=hinge,seed=1),
    not by every fixed override."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    fixed = {o.get_key_element().lstrip("+~") for o in parsed if not o.is_sweep_override()}
    return "hydra.job.config.override_dirname.exclude_keys=[" + ",".join(
        ["resume", "device"] + sorted(fixed - {"resume", "device"})) + "]"


# ------------------------------------------------------------------ composing and checking
def check_syntax(command: str, overrides: List[str], multirun: bool) -> None:
    """Every override parses, checked before Hydra: its own parse error is several lines and exit 1,
    and a run folder given bare (ganzoo sample outputs/...) is the usual slip."""
    from .errors import ConfigError

    for o in overrides:
        if "=" not in o and not o.startswith("~"):
            key = {"train": "resume", "sample": "run", "eval": "run"}.get(command)
            if key and Path(o).is_dir():
                raise ConfigError(f"{o!r} is a folder: name it as {key}={o}")
            raise ConfigError(f"{o!r} is not key=value (ganzoo {command} --help lists the keys)")
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except OverrideParseException as exc:
        reason = exc.message.splitlines()[0]
        raise ConfigError(f"cannot read {exc.override!r}: {reason} "
                          "(grammar: https://hydra.cc/docs/1.2/advanced/override_grammar/basic)") from None
    keys = {o.get_key_element() for o in parsed}
    if command == "train" and {"experiment", "benchmark"} <= keys:
        raise ConfigError("experiment= and benchmark= each pin a whole setting (data, nets, optimiser, budget): "
                          "pick one (a benchmark takes any method=; an experiment is one paper's run)")
    for o in parsed:
        if o.is_sweep_override() and not multirun:
            key = o.get_key_element()
            raise ConfigError(f"{o.input_line} gives several values, a sweep: add -m to run one job per value "
                              f"(a single value that is a list is written {key}=[a,b])")


def expand_sweep(overrides: List[str]) -> List[List[str]]:
    """The jobs of `-m <overrides>`: one per combination of the sweep values, in the order Hydra's
    basic sweeper runs them (the last key varies fastest)."""
    import itertools
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from .errors import ConfigError

    hydra = GlobalHydra.instance()  # glob(...) lists a group's options through Hydra's config loader
    parser = OverridesParser.create(config_loader=hydra.config_loader() if hydra.is_initialized() else None)
    choices: dict = {}
    for o in parser.parse_overrides(overrides):
        key = o.get_key_element()
        if not o.is_sweep_override():
            choices[key] = [f"{key}={o.get_value_element_as_str()}"]
        elif o.is_discrete_sweep():
            choices[key] = [f"{key}={v}" for v in o.sweep_string_iterator()]
        else:  # interval(...) needs an optimising sweeper, which checks its own search space
            raise ConfigError(f"{o.input_line}: an interval is a search space for hydra/sweeper=optuna "
                              f"(conf/hparams_search/), not a list of jobs")
    return [list(job) for job in itertools.product(*choices.values())]


_COMPOSED: dict = {}  # one command composes the same job for several checks; composing is the costly part


def compose_jobs(config_name: str, overrides: List[str], multirun: bool, sweeps: bool = True):
    """Every job's composed config, with Hydra's own compose API. `sweeps`: expand -m's values
    into jobs (an optimising sweeper picks its own values: only its fixed overrides are checked)."""
    import os
    key = (config_name, tuple(overrides), multirun, sweeps, os.getcwd(), tuple(CONFIG_DIRS))
    if key not in _COMPOSED:
        if len(_COMPOSED) > 16:
            _COMPOSED.clear()
        _COMPOSED[key] = _compose_jobs(config_name, overrides, multirun, sweeps)
    return _COMPOSED[key]


# --config-dir DIR (-cd DIR): Hydra adds DIR to its search path when the app runs; the checks compose with it too
CONFIG_DIRS: List[str] = []


def config_dirs(flags: List[str]) -> List[str]:
    """The folders --config-dir / -cd name (as `-cd DIR` or `--config-dir=DIR`), absolute."""
    import os
    found = []
    for i, f in enumerate(flags):
        name, eq, value = f.partition("=")
        if name in ("--config-dir", "-cd"):
            value = value if eq else (flags[i + 1] if i + 1 < len(flags) else "")
            if value:
                found.append(os.path.abspath(os.path.expanduser(value)))
    return found


def with_search_path(overrides: List[str], dirs: List[str]) -> List[str]:
    """`overrides` with `dirs` added to hydra.searchpath (joined to a searchpath the user gave)."""
    if not dirs:
        return overrides
    added = ",".join(_quoted(f"file://{d}") for d in dirs)
    out, merged = [], False
    for o in overrides:
        if _key(o) == "hydra.searchpath" and o.rstrip().endswith("]"):
            inner = o.split("=", 1)[1].strip()[1:-1].strip()
            o, merged = f"hydra.searchpath=[{inner + ',' if inner else ''}{added}]", True
        out.append(o)
    return out if merged else out + [f"hydra.searchpath=[{added}]"]


def _compose_jobs(config_name: str, overrides: List[str], multirun: bool, sweeps: bool):
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from .config import compose_config, compose_error

    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="ganzoo.conf", version_base="1.3"):
        try:
            jobs = expand_sweep(overrides) if multirun and sweeps else [overrides]
        except Exception as exc:
            from .errors import ConfigError, GanzooError
            if isinstance(exc, GanzooError):
                raise
            raise ConfigError(compose_error(exc, config_name, overrides)) from None
        return [(list(job), compose_config(config_name, with_search_path(list(job), CONFIG_DIRS),
                                           return_hydra_config=True)) for job in jobs]


# launchers whose jobs run on this machine (Hydra's basic one, joblib, submitit's local one)
LOCAL_LAUNCHERS = ("BasicLauncher", "JoblibLauncher", "LocalLauncher")


def runs_here(composed) -> bool:
    from omegaconf import OmegaConf
    target = OmegaConf.select(composed, "hydra.launcher._target_", default="") or ""
    return not target or target.rsplit(".", 1)[-1] in LOCAL_LAUNCHERS


def _world() -> int:
    """The ranks this command runs as (torchrun's WORLD_SIZE, a SLURM step's tasks); 1 alone."""
    from .ranks import world_size
    return world_size()


def _rank() -> int:
    from .ranks import rank
    return rank()


def check_train(overrides: List[str], multirun: bool, runs: bool = True, world: int = 1) -> None:
    """Compose and validate every job; `runs`: the command trains (not --cfg), so what a run needs
    (the device, data files, extractor weights, a checkpoint to resume) is checked too. A rank other
    than 0 checks the values only: rank 0 alone reads and writes the run folder."""
    from .config import load_train_config
    from .errors import GanzooError
    from .preflight import preflight

    optimising = multirun and _optimising(overrides)
    jobs = compose_jobs("train", [o for o in overrides if not (optimising and _is_sweep(o))], multirun,
                        sweeps=not optimising)
    for job, composed in jobs:
        try:
            cfg = load_train_config(composed)
            check_direction(cfg, composed)
            cfg.check_world(world)
            if runs and world > 1 and _rank() > 0:
                continue
            if runs:
                preflight(cfg, device_here=runs_here(composed))
                check_job_folder(composed, multirun)
                # a default (dated) folder name that exists already gets the next free suffix (claim_run)
                if not multirun and (cfg.resume is not None or any(_key(o) == "hydra.run.dir" for o in job)):
                    check_folder(cfg, composed)
        except GanzooError as exc:
            if multirun:
                exc.args = (f"job [{' '.join(job)}]: {exc}",)
            raise


def check_folder(cfg, composed) -> None:
    """What the job would find in its run folder: a checkpoint to continue (checked against the
    config now, so a refused resume never reaches the folder) or a run it must not overwrite."""
    from omegaconf import OmegaConf
    from .rundir import checkpoint_path

    run_dir = Path(OmegaConf.select(composed, "hydra.run.dir"))
    target = Path(cfg.resume) if cfg.resume not in (None, "auto") else run_dir
    if checkpoint_path(target).is_file():
        from .resume import check_fits, resume_state  # torch: only when there is a checkpoint to read
        state = resume_state(cfg, run_dir)
        if state is not None:
            check_fits(cfg, state)
    elif cfg.resume is None:  # refused here too, before Hydra writes the job's .hydra/ over the old run's
        from .rundir import refuse_records
        refuse_records(run_dir)


def claim_run(command: str, flags: List[str], overrides: List[str]):
    """The folder a `train` command will write, claimed before the job starts: a default folder
    name gets a suffix when another job took it in the same second, and a single run's folder is
    locked. -> (overrides naming the folder, the lock or None)."""
    from omegaconf import OmegaConf
    from .rundir import RunLock, claim_new

    if command != "train" or _NO_CHECK.intersection(flags) or {"--cfg", "-c"}.intersection(flags):
        return overrides, None
    multirun = "-m" in flags or "--multirun" in flags
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    given = any(_key(o) == key for o in overrides)
    # the folder-name rule check_command appended changes no folder: without it, the composition the
    # checks made is reused
    fixed = [o for o in overrides if not _is_sweep(o) and not _key(o).startswith("hydra.job.config.")]
    composed = compose_jobs("train", fixed, multirun=False)[0][1]
    folder = Path(OmegaConf.select(composed, key))
    if not given:
        folder = claim_new(folder)
        overrides = overrides + [f"{key}={_quoted(str(folder))}"]
    if multirun:  # each job locks its own folder when it starts
        return overrides, None
    return overrides, RunLock(folder).acquire()


def _quoted(value: str) -> str:
    """A value as Hydra's override grammar reads it back unchanged."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _requeues(overrides: List[str]) -> bool:
    """Whether the launcher requeues jobs (submitit's, on a time limit or preemption): a requeued
    job is started again with the same overrides, so it must continue its checkpoint (resume=auto),
    not start over and overwrite it."""
    from omegaconf import OmegaConf
    fixed = [o for o in overrides if not _is_sweep(o)]
    composed = compose_jobs("train", fixed, multirun=False)[0][1]
    target = OmegaConf.select(composed, "hydra.launcher._target_", default="") or ""
    return target.startswith("hydra_plugins.hydra_submitit_launcher.")


def _is_sweep(override: str) -> bool:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    return OverridesParser.create().parse_override(override).is_sweep_override()


def _optimising(overrides: List[str]) -> bool:
    """Whether the sweeper chooses the jobs' values itself (optuna), so -m's values are its
    search space rather than a list of jobs."""
    from omegaconf import OmegaConf
    fixed = [o for o in overrides if not _is_sweep(o)]
    composed = compose_jobs("train", fixed, multirun=False)[0][1]
    target = OmegaConf.select(composed, "hydra.sweeper._target_", default="") or ""
    return "BasicSweeper" not in target


def check_direction(cfg, composed) -> None:
    """An optimising sweeper must push `objective` the way the metric registry says is better."""
    from omegaconf import OmegaConf
    from .errors import ConfigError
    from .metrics.registry import higher_is_better

    direction = OmegaConf.select(composed, "hydra.sweeper.direction", default=None)
    if cfg.objective is None or direction is None:
        return
    want = "maximize" if higher_is_better(cfg.objective) else "minimize"
    direction = getattr(direction, "name", str(direction))  # optuna's sweeper holds an Enum
    if direction != want:
        raise ConfigError(f"objective={cfg.objective} is better {'higher' if want == 'maximize' else 'lower'}: "
                          f"set hydra.sweeper.direction={want} (it is {direction})")


def check_command(command: str, rest: List[str]) -> Tuple[List[str], List[str]]:
    """Everything ganzoo checks before a job starts; -> (Hydra flags, overrides) to start the app
    with. Raises GanzooError (one line) for anything that cannot run."""
    from .errors import ConfigError

    if command not in COMMANDS:
        raise ConfigError(f"unknown command {command!r}; choose one of: {', '.join(COMMANDS)} (ganzoo --help)")
    flags, overrides = split_args(rest)
    if command == "sample":  # `class` is a Python keyword, so the schema's key is `label`
        overrides = ["label=" + o[len("class="):] if o.startswith("class=") else o for o in overrides]
    CONFIG_DIRS[:] = config_dirs(flags)
    overrides = quote_paths(command, overrides)
    multirun = "-m" in flags or "--multirun" in flags
    check_syntax(command, overrides, multirun)
    if command == "train":
        world = _world()
        if multirun and world > 1:
            raise ConfigError(f"-m starts a sweep, and under torchrun ({world} ranks) every rank would start "
                              f"its own: run one job per torchrun, or the sweep without torchrun "
                              f"(hydra/launcher=slurm gives each job its ranks)")
        if multirun and any(_key(o) == "resume" and o.split("=", 1)[1] not in ("auto", "null")
                            for o in overrides):
            raise ConfigError("resume=<run dir> continues one run; with -m use resume=auto "
                              "(each job continues its own folder, done jobs are skipped)")
        overrides = resume_overrides(overrides)
        if multirun and not any(_key(o) == "resume" for o in overrides) and _requeues(overrides):
            overrides = overrides + ["resume=auto"]
        if not _NO_CHECK.intersection(flags):
            # --cfg prints the composed config: it needs no data, weights or GPU, only valid values
            check_train(overrides, multirun, runs=not {"--cfg", "-c"}.intersection(flags), world=world)
        if multirun:
            overrides = overrides + [folder_names(overrides)]
    elif _world() > 1:
        raise ConfigError(f"ganzoo {command} runs in one process; under torchrun ({_world()} ranks) every rank "
                          f"would run it: start it without torchrun")
    elif not _NO_CHECK.intersection(flags):
        check_other(command, overrides, multirun, runs=not {"--cfg", "-c"}.intersection(flags))
    return flags, overrides


def check_other(command: str, overrides: List[str], multirun: bool, runs: bool = True) -> None:
    """sample, eval, classifier: compose and validate every job like train's (one line, exit 2, before
    Hydra makes anything); `runs`: the command runs (not --cfg), so the files it reads and the folders
    it writes are checked too (the run's checkpoint, out=, the cache folder, hydra.run.dir)."""
    from .config import LOADERS
    from .errors import GanzooError

    for job, composed in compose_jobs(command, overrides, multirun):
        try:
            c = LOADERS[command](composed)
            if runs:
                c.ready()
                # these commands write nothing in Hydra's job folder (output_subdir: null, logging to
                # stdout); Hydra only makes it, so only a folder it must make is checked
                check_job_folder(composed, multirun, writes=False)
        except GanzooError as exc:
            if multirun:
                exc.args = (f"job [{' '.join(job)}]: {exc}",)
            raise


def check_job_folder(composed, multirun: bool, writes: bool = True) -> None:
    """The folder Hydra makes for the job (hydra.run.dir, or hydra.sweep.dir under -m) can be made and
    written; else Hydra's mkdir fails with a traceback after the checks. Its part up to the first
    ${...} (a date, the job's name) is what exists before the job, so that part is probed.
    `writes`: the job writes files there (train); otherwise an existing folder is enough."""
    import os
    from omegaconf import OmegaConf
    from .errors import check_writable

    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    raw = OmegaConf.to_container(composed.hydra, resolve=False)["sweep" if multirun else "run"]["dir"]
    raw = str(raw)
    folder = os.path.dirname(raw.split("${", 1)[0]) if "${" in raw else raw
    folder = folder or "."
    if writes or not Path(os.path.expanduser(folder)).is_dir():
        check_writable(key, folder)


def follow(overrides: List[str]) -> None:
    """A rank other than 0 of a distributed run: no Hydra app (it would write a folder and a log);
    it trains what rank 0 decides and exits as rank 0 does."""
    import logging
    from .config import load_train_config
    from .signals import Stopped
    from .train import follow as follow_rank0

    logging.basicConfig(level=logging.WARNING, format=f"[rank {_rank()}] %(message)s")
    cfg = load_train_config(compose_jobs("train", overrides, multirun=False)[0][1])
    try:
        follow_rank0(cfg)
    except Stopped as exc:  # rank 0 prints the line; this rank only exits as it does
        sys.exit(exc.exit_code)


# groups the user picks; the others are ganzoo's plumbing (schema/ bases, a budget's per-method knobs)
PUBLIC_GROUPS = ("dataset", "arch", "method", "loss", "optim", "augment", "experiment", "benchmark", "budget",
                 "hparams_search")


def command_help(command: str, overrides: List[str]) -> str:
    """`ganzoo <command> --help`: its groups (train only) and its keys with their values, as composed
    with the overrides given (`ganzoo train dataset=cifar10 --help` shows the image defaults)."""
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    composed = compose_jobs(command, overrides, multirun=False)[0][1]
    lines = [f"ganzoo {command} [key=value ...]   (-m: a sweep; --cfg job: the composed config; README.md has "
             f"the manual)", ""]
    if command == "train":
        GlobalHydra.instance().clear()
        with initialize_config_module(config_module="ganzoo.conf", version_base="1.3"):
            loader = GlobalHydra.instance().config_loader()
            lines += ["Groups (group=option):", ""]
            for group in PUBLIC_GROUPS:
                lines.append(f"{group}: {', '.join(sorted(loader.get_group_options(group)))}")
        lines.append("")
    config = OmegaConf.masked_copy(composed, [k for k in composed if k != "hydra"])
    lines += ["Keys (key=value), with this command's values:", "", OmegaConf.to_yaml(config, resolve=False).rstrip()]
    return "\n".join(lines)


def launch(command: str, flags: List[str], overrides: List[str]) -> None:
    """Replace this process with the command's Hydra app (ganzoo/apps/): its exit code and
    signals are the job's own."""
    import os
    os.execv(sys.executable, [sys.executable, "-m", f"ganzoo.apps.{command}", *flags, *overrides])


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE)
        return
    if args[0] in ("--version", "-V"):
        from . import __version__
        print(f"ganzoo {__version__}")
        return
    from .errors import GanzooError

    command, rest = args[0], args[1:]
    try:
        if command == "report":  # a plain command on a folder, not a Hydra app
            from .report import report_command
            report_command(rest)
            return
        if command in COMMANDS and {"--help", "-h"}.intersection(rest):
            print(command_help(command, quote_paths(command, split_args(rest)[1])))
            return
        flags, overrides = check_command(command, rest)
        if command == "train" and _world() > 1 and _rank() > 0 and not _NO_CHECK.intersection(flags) \
                and not {"--cfg", "-c"}.intersection(flags):
            follow(overrides)
            return
        overrides, lock = claim_run(command, flags, overrides)
    except GanzooError as exc:
        fail(str(exc), exc.exit_code)
    if lock is not None:
        lock.hand_to_child()
    launch(command, flags, overrides)
