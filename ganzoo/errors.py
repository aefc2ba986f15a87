"""Errors a user can fix. Each carries one readable line; the CLI prints it and exits non-zero.

Exit codes (README, Troubleshooting): 2 for what the user must change in the command or its files (a config
value, a refused resume, a bad checkpoint), 1 for the environment (disk, data files, network), 3 a diverged
run (watchdog.py), 4 ranks that disagree (distributed.py), 128 + n a signal n (signals.py)."""


class GanzooError(Exception):
    exit_code = 1  # the environment: a full disk, missing data, no permission


class ConfigError(GanzooError):
    """A config value that cannot work (wrong key, type or range)."""
    exit_code = 2


class DataError(GanzooError):
    """Missing or incomplete data."""


class CheckpointError(GanzooError):
    """A missing, corrupt or incompatible checkpoint: the command must name another."""
    exit_code = 2


# the one-line checks every schema's `check` is written with
def check(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


def positive(where: str, value) -> None:
    check(value > 0, f"{where} must be > 0, got {value}")


def non_negative(where: str, value) -> None:
    check(value >= 0, f"{where} must be >= 0, got {value}")


SEED_MAX = 2 ** 32 - 1  # numpy's range; ganzoo derives its streams' seeds from it, all within int64


def seed_in_range(where: str, value) -> None:
    check(value is None or 0 <= value <= SEED_MAX, f"{where} must be in [0, {SEED_MAX}], got {value}")


def in_unit(where: str, value, closed: bool = True) -> None:
    """value in [0, 1] (closed) or [0, 1)."""
    ok = 0 <= value <= 1 if closed else 0 <= value < 1
    check(ok, f"{where} must be in [0, 1{']' if closed else ')'}, got {value}")


# ---------------------------------------------------------------- files a command writes
def os_error_message(exc: OSError, doing: str = "") -> str:
    """An OSError (a full disk, no permission, a read-only or missing folder) as one line naming its
    path and the system's reason, e.g. "cannot write /data/run/ckpt/last.pt: No space left on device
    (ENOSPC): free space on that disk or write elsewhere". `doing`: what failed ("cannot write");
    empty: the path and reason alone. For train_task and the other commands' tasks."""
    import errno as errno_module
    import os

    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    code = exc.errno
    reason = exc.strerror or (os.strerror(code) if code else "") or str(exc) or type(exc).__name__
    if code in errno_module.errorcode:
        reason += f" ({errno_module.errorcode[code]})"
    hint = _OS_HINTS.get(errno_module.errorcode.get(code, ""), "")
    where = " -> ".join(paths) if paths else "a file"
    head = f"{doing} {where}" if doing else where
    return " ".join(f"{head}: {reason}".split()) + (f": {hint}" if hint else "")


_OS_HINTS = {
    "ENOSPC": "free space on that disk or write elsewhere",
    "EDQUOT": "your disk quota is used up: free space or write elsewhere",
    "EACCES": "no permission there: choose a folder you can write",
    "EPERM": "no permission there: choose a folder you can write",
    "EROFS": "that file system is read-only: write elsewhere",
}


def check_writable(where: str, folder) -> None:
    """A command may create files in `folder` (made with its parents if missing): its nearest existing
    ancestor is a folder this process can create a file in. Probed with a temporary file, removed at
    once, since os.access says yes to root on a read-only mount and in /proc. ConfigError (one line,
    naming `where` and the folder) otherwise. `where`: the key that set it, e.g. "out" or "hydra.run.dir"."""
    import os
    import tempfile
    from pathlib import Path

    target = Path(os.path.expanduser(str(folder))).absolute()
    existing = target
    try:
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            raise ConfigError(f"{where}: cannot make {target}: {existing} is a file, not a folder")
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".ganzoo-write-check-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        exc.filename, exc.filename2 = str(existing), None
        making = "" if existing == target else f"cannot make {target}: "
        raise ConfigError(f"{where}: {making}cannot write in {os_error_message(exc)}") from None
