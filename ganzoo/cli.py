"""`ganzoo <subcommand> [Hydra overrides and flags]`.

Each subcommand is a Hydra app. Before Hydra starts (and makes a run
directory), every job the command line describes is composed and validated
here, so a typo fails in about a second with one line and leaves no files.
"""
from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

USAGE = """usage: ganzoo <command> [key=value ...] [Hydra flags]

commands:
  train    train a GAN (config groups: dataset, arch, loss, method, optim)
           ganzoo train method=gan dataset=ring loss=hinge steps=2000
           ganzoo train -m loss=ns,hinge seed=0,1          (a sweep: one job per combination)
           ganzoo train resume=<run dir> [steps=N]         (continue a run exactly)
  sample   draw samples from a trained run
           ganzoo sample run=<run dir> n=2500 out=samples.npz|samples.png [seed=0] [ckpt=last]
  eval     compute the metrics of a saved checkpoint and append them to the run's metrics.jsonl
           ganzoo eval run=<run dir> [ckpt=last|best]
  classifier  train and cache the classifier behind the offline class metrics (cfid, classes_covered)
           ganzoo classifier dataset=fashion_mnist [metrics.cache_dir=~/.cache/ganzoo]
  report   one table (report.md, report.csv) and plots for a sweep or a folder of runs
           ganzoo report multirun/<date>

Each command takes Hydra's flags too: --cfg job (print the config), --help (its options),
-m (sweep), hydra.run.dir=DIR (where a run writes).
"""

COMMANDS = ("train", "sample", "eval", "classifier", "report")
# Hydra flags followed by a value
_VALUE_FLAGS = {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn",
                "--config-dir", "-cd", "--experimental-rerun", "--shell-completion", "-sc"}
_INFO_VALUES = {"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"}
_NO_CHECK = {"--help", "-h", "--hydra-help", "--info", "--shell-completion", "-sc", "--version"}

log = logging.getLogger("ganzoo")
_sweep_failures: List[str] = []


def fail(message: str, code: int = 1) -> None:
    print(f"ganzoo: error: {message}", file=sys.stderr)
    sys.exit(code)


def split_args(args: Sequence[str]) -> Tuple[List[str], List[str]]:
    """Separate Hydra's flags (with their values) from key=value overrides."""
    flags, overrides = [], []
    it = iter(range(len(args)))
    for i in it:
        a = args[i]
        if a.startswith("-"):
            flags.append(a)
            takes_value = a in _VALUE_FLAGS or (a == "--info" and i + 1 < len(args) and args[i + 1] in _INFO_VALUES)
            if takes_value and "=" not in a and i + 1 < len(args):
                flags.append(args[i + 1])
                next(it, None)
        else:
            overrides.append(a)
    return flags, overrides


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def dedupe(overrides: Sequence[str]) -> List[str]:
    """Keep the last override of each key (a resumed run's new steps= beats its old one)."""
    last = {_key(o): i for i, o in enumerate(overrides)}
    return [o for i, o in enumerate(overrides) if last[_key(o)] == i]


def resume_overrides(overrides: List[str]) -> List[str]:
    """resume=<run dir>: recompose that run's own overrides, then the new ones, in its folder."""
    value = next((o.split("=", 1)[1] for o in overrides if _key(o) == "resume"), None)
    if value in (None, "", "null"):
        return overrides
    from .errors import CheckpointError
    import yaml

    run = Path(value).expanduser().resolve()
    saved = run / ".hydra" / "overrides.yaml"
    if not saved.is_file():
        raise CheckpointError(f"resume={value}: {saved} not found; pass the folder of a ganzoo train run")
    previous = [o for o in (yaml.safe_load(saved.read_text()) or [])
                if not _key(o).startswith("hydra.") and _key(o) != "resume"]
    new = [o for o in overrides if _key(o) != "resume"]
    merged = dedupe(previous + new) + [f"resume={run}"]
    if not any(_key(o) == "hydra.run.dir" for o in merged):
        merged.append(f"hydra.run.dir={run}")
    return merged


def folder_names(overrides: List[str]) -> str:
    """A sweep job's folder is named by the keys the sweep varies (e.g. 3_loss=hinge,seed=1),
    not by every fixed override."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    fixed = sorted({o.get_key_element().lstrip("+~") for o in parsed if not o.is_sweep_override()})
    return "hydra.job.config.override_dirname.exclude_keys=[" + ",".join(["resume", "device"] + fixed) + "]"


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
    for o in parsed:
        if o.is_sweep_override() and not multirun:
            key = o.get_key_element()
            raise ConfigError(f"{o.input_line} gives several values, a sweep: add -m to run one job per value "
                              f"(a single value that is a list is written {key}=[a,b])")


def _one_line_compose_error(exc: Exception) -> str:
    from hydra.errors import MissingConfigException
    from omegaconf.errors import OmegaConfBaseException
    from .config import describe_omegaconf_error

    if isinstance(exc, MissingConfigException) and exc.options is not None:
        missing = (exc.missing_cfg_file or "?")
        group, _, name = missing.rpartition("/")
        import difflib
        close = difflib.get_close_matches(name, exc.options, n=1, cutoff=0.7)
        hint = f"did you mean {group}={close[0]}? " if close else ""
        return f"{group}={name}: no such option; {hint}available: {', '.join(sorted(exc.options))}"
    cause = exc.__cause__
    if isinstance(cause, OmegaConfBaseException):
        return describe_omegaconf_error(cause, "", _BASE.get("cfg"))
    text = str(exc).strip().splitlines()
    return " ".join(line.strip() for line in text[:2] if line.strip()) or type(exc).__name__


_BASE: dict = {}


def compose_jobs(config_name: str, overrides: List[str], multirun: bool):
    """Every job's composed config, as Hydra's basic sweeper would make them."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="ganzoo.conf", version_base="1.3"):
        # the tree "did you mean" hints search: the default one with the command line's group choices
        groups = [o for o in overrides if "=" in o and "." not in o.split("=")[0] and "," not in o]
        try:
            _BASE["cfg"] = compose(config_name, overrides=groups)
        except Exception:
            _BASE["cfg"] = compose(config_name)
        if multirun:
            from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
            from hydra.core.override_parser.overrides_parser import OverridesParser

            parser = OverridesParser.create(config_loader=GlobalHydra.instance().config_loader())
            jobs = BasicSweeper.split_arguments(parser.parse_overrides(overrides), None)[0]
        else:
            jobs = [overrides]
        return [(list(job), compose(config_name, overrides=list(job), return_hydra_config=True)) for job in jobs]


# launchers whose jobs run on this machine (Hydra's basic one, joblib, submitit's local one)
LOCAL_LAUNCHERS = ("BasicLauncher", "JoblibLauncher", "LocalLauncher")


def runs_here(composed) -> bool:
    from omegaconf import OmegaConf
    target = OmegaConf.select(composed, "hydra.launcher._target_", default="") or ""
    return not target or target.rsplit(".", 1)[-1] in LOCAL_LAUNCHERS


def check_train(overrides: List[str], multirun: bool, runs: bool = True) -> None:
    """Compose and validate every job; `runs`: the command trains (not --cfg), so what a run needs
    (the device, data files, extractor weights, a checkpoint to resume) is checked too."""
    from .config import load_train_config
    from .errors import ConfigError, GanzooError
    from .preflight import preflight

    try:
        jobs = compose_jobs("train", overrides, multirun)
    except GanzooError:
        raise
    except Exception as exc:  # Hydra's composition errors, reduced to one line
        raise ConfigError(_one_line_compose_error(exc)) from None
    for job, composed in jobs:
        try:
            cfg = load_train_config(composed)
            if runs:
                preflight(cfg, device_here=runs_here(composed))
        except GanzooError as exc:
            if multirun:
                exc.args = (f"job [{' '.join(job)}]: {exc}",)
            raise


# ------------------------------------------------------------------ Hydra tasks
def _train_task(raw) -> Optional[dict]:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from .config import load_train_config
    from .errors import GanzooError
    from .preflight import checkpoint_path
    from .train import train, write_status

    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    multirun = hc.mode == RunMode.MULTIRUN
    try:
        cfg = load_train_config(raw)
        final = train(cfg, run_dir)
        from .logger import format_metrics
        print(f"final metrics: {format_metrics(final)}\noutputs: {run_dir}", flush=True)
        return final
    except KeyboardInterrupt:
        write_status(run_dir, "interrupted")
        raise
    except Exception as exc:
        user_error = isinstance(exc, GanzooError)
        message = str(exc) if user_error else f"{type(exc).__name__}: {exc}"
        write_status(run_dir, "failed", error=message)
        if multirun:  # one failing job must not stop the sweep; it is reported at the end
            (run_dir / "error.txt").write_text(traceback.format_exc())
            log.error(f"job failed: {message} (details: {run_dir / 'error.txt'})")
            _sweep_failures.append(str(Path(run_dir).resolve()))
            return None
        if not user_error:
            raise
        if not raw.get("resume") and not checkpoint_path(run_dir).exists():
            import shutil
            shutil.rmtree(run_dir, ignore_errors=True)  # nothing worth keeping was written
        fail(message, exc.exit_code)


def _sample_task(raw) -> None:
    from .config import SampleConfig, load_simple
    from .errors import GanzooError
    from .use import sample_command

    try:
        sample_command(load_simple(SampleConfig, raw))
    except GanzooError as exc:
        fail(str(exc), exc.exit_code)


def _eval_task(raw) -> None:
    from .config import EvalConfig, load_simple
    from .errors import GanzooError
    from .use import eval_command

    try:
        eval_command(load_simple(EvalConfig, raw))
    except GanzooError as exc:
        fail(str(exc), exc.exit_code)


def _classifier_task(raw) -> None:
    from .config import load_classifier_config
    from .errors import GanzooError
    from .use import classifier_command

    try:
        classifier_command(load_classifier_config(raw))
    except GanzooError as exc:
        fail(str(exc), exc.exit_code)


TASKS = {"train": _train_task, "sample": _sample_task, "eval": _eval_task, "classifier": _classifier_task}


def run_hydra(command: str, args: List[str]) -> None:
    import hydra

    app = hydra.main(config_path="pkg://ganzoo.conf", config_name=command, version_base="1.3")(TASKS[command])
    argv = sys.argv
    sys.argv = [f"ganzoo {command}"] + list(args)
    try:
        app()
    finally:
        sys.argv = argv


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE)
        return
    if args[0] in ("--version", "-V"):
        from . import __version__
        print(f"ganzoo {__version__}")
        return
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        fail(f"unknown command {command!r}; choose one of: {', '.join(COMMANDS)} (ganzoo --help)", 2)

    from .errors import GanzooError

    if command == "report":  # a plain command on a folder, not a Hydra app
        try:
            from .report import report_command
            report_command(rest)
        except GanzooError as exc:
            fail(str(exc), exc.exit_code)
        return
    flags, overrides = split_args(rest)
    multirun = "-m" in flags or "--multirun" in flags
    try:
        check_syntax(command, overrides, multirun)
        if command == "train":
            if multirun and any(_key(o) == "resume" for o in overrides):
                fail("resume= continues one run; it cannot be combined with -m", 2)
            overrides = resume_overrides(overrides)
            if not _NO_CHECK.intersection(flags):
                # --cfg prints the composed config: it needs no data, weights or GPU, only valid values
                check_train(overrides, multirun, runs=not {"--cfg", "-c"}.intersection(flags))
    except GanzooError as exc:
        fail(str(exc), exc.exit_code)
    if multirun and command == "train":
        overrides = overrides + [folder_names(overrides)]
    run_hydra(command, flags + overrides)
    if _sweep_failures:
        fail(f"{len(_sweep_failures)} job(s) of the sweep failed: " + ", ".join(_sweep_failures), 1)
