"""A run folder: claiming a fresh one, locking it while a process writes it, writing its files
atomically, and what `resume=auto` finds in it. Free of torch imports: the CLI uses it before a job
starts, and `ganzoo report` to write its tables."""
from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Optional

from .errors import CheckpointError, ConfigError, GanzooError, os_error_message

log = logging.getLogger("ganzoo")
LOCK_NAME = ".lock"
# the CLI takes the lock, then replaces itself with the app: the locked descriptor is inherited,
# and the app finds it here instead of locking twice
LOCK_ENV = "GANZOO_RUN_LOCK"


def checkpoint_path(run_dir: Path, which: str = "last") -> Path:
    return Path(run_dir) / "ckpt" / f"{which}.pt"


def check_run(run: str, which: str = "last") -> Path:
    """A trained run's folder and its checkpoint `which` exist -> the checkpoint's path. Torch-free: the
    CLI checks it before Hydra starts, and sample/eval again when they load it."""
    run_dir = Path(run).expanduser()
    if not run_dir.is_dir():
        raise ConfigError(f"run={run}: no such folder; pass a run folder (e.g. outputs/train/<date>_<...>)")
    path = checkpoint_path(run_dir, which)
    if path.is_file():
        return path
    if not any((run_dir / name).exists() for name in (".hydra", "status.json", "ckpt", "metrics.jsonl")):
        runs = sorted(p.parent.parent for p in run_dir.glob("**/ckpt/last.pt"))[-1:]
        example = f" (e.g. run={runs[0]})" if runs else ""
        raise ConfigError(f"run={run} is not a run folder (no .hydra/, status.json or ckpt/ in it): pass the "
                          f"folder of one run{example}")
    if which == "best" and checkpoint_path(run_dir).is_file():
        raise CheckpointError(f"ckpt=best: {run_dir} has no {path.name}: it is written when an evaluation "
                              "scores fid or cfid, and none of this run's did (2-D runs never do); use ckpt=last")
    saved = sorted(p.stem for p in path.parent.glob("*.pt")) if path.parent.is_dir() else []
    have = (f"it has: {', '.join(saved)}" if saved else
            "the run saved none yet (it writes ckpt/last.pt every ckpt_every steps and at its end)")
    raise CheckpointError(f"ckpt={which}: no checkpoint at {path}; {have}")


def atomic_write(path: Path, write) -> None:
    """Write through a temp file in the same folder, fsync, then rename over `path`:
    a kill at any moment leaves either the old file or the new one, never half of one.
    A failed write (a full disk, no permission) raises the OSError with `path` as its filename, also
    where torch.save has turned it into its own RuntimeError ("unexpected pos ..."), and leaves no
    temp file (errors.os_error_message makes it one line)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        if not exc.filename or str(exc.filename).startswith(str(path.parent) + os.sep + "."):
            exc.filename = str(path)  # mkstemp names its random temp file; the user named `path`
        raise
    fh = None
    try:
        os.fchmod(fd, _mode_of(path))
        with os.fdopen(fd, "wb") as raw:
            fh = _Recording(raw)
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        error = exc if isinstance(exc, OSError) else getattr(fh, "error", None)
        if error is None:
            raise
        error.filename, error.filename2 = str(path), None
        if error is exc:
            raise
        raise error from None


# atomic_write's temp names: mkstemp's ".<name>.<8 random characters>.tmp"
_TEMP = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")


@contextlib.contextmanager
def cache_lock(path: Path, what: str):
    """An exclusive lock on `path` while a shared cache entry is made: jobs of one sweep starting
    together make it once, the others wait and then load it (two makers of a classifier would write
    different weights, and a job would record the sha256 of a file another has since replaced). Where
    the folder cannot hold a lock file (read-only) it goes on unlocked: the cache's write fails there
    anyway, loudly."""
    import fcntl  # POSIX only, as the run lock

    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666 & ~_umask())
    except OSError:
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info(f"waiting for another process making {what} ({path})")
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock; the empty file stays (removing it would race a waiter)


def remove_stale_temps(run_dir: Path) -> None:
    """Delete what a killed atomic_write left in a run folder (its own temp pattern only; nothing else is
    touched): a 12 MB checkpoint cut by a kill would otherwise stay there unseen."""
    for folder in (run_dir, run_dir / "ckpt", run_dir / "samples"):
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            if _TEMP.match(name) and os.path.isfile(folder / name):
                try:
                    os.unlink(folder / name)
                except OSError:
                    pass


def _mode_of(path: Path) -> int:
    """The permissions a plain open(path, "w") would leave: the old file's, or 0o666 less the umask.
    mkstemp makes its file 0o600, which would hide checkpoints, pictures and status from the rest of a
    shared project's group (and from a TensorBoard server run by another user)."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    """This process's umask, read without setting it (os.umask sets it, a race with other threads)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return _UMASK_AT_IMPORT


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK_AT_IMPORT = _read_umask()  # where /proc is missing (macOS); imports run before any thread


class _Recording:
    """A file whose write() remembers the OSError it raised: torch.save reports a failed write (ENOSPC)
    as a RuntimeError of its own, without the OSError."""

    def __init__(self, fh):
        self._fh = fh
        self.error = None

    def write(self, data):
        try:
            return self._fh.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def __getattr__(self, name):
        return getattr(self._fh, name)


class FolderBusy(GanzooError):
    exit_code = 2


def claim_new(path: Path) -> Path:
    """Create `path`, or `path_2`, `path_3`, ... when it exists: two jobs started in the same
    second get two folders. mkdir is atomic, so two processes never claim the same name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for n in range(1, 10_000):
        candidate = path if n == 1 else path.with_name(f"{path.name}_{n}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise ConfigError(f"cannot find a free folder name next to {path}")


class RunLock:
    """An exclusive lock on <run>/.lock (flock: released by the kernel when the process dies, so
    a killed run never leaves a stale lock)."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.fd: Optional[int] = None

    def acquire(self) -> "RunLock":
        import fcntl
        path = self.run_dir / LOCK_NAME
        if path.is_dir():
            raise FolderBusy(f"{path} is a folder, not ganzoo's lock file: remove it (nothing of ganzoo's is in "
                             f"it) or pick another run folder")
        made = [p for p in (self.run_dir, *self.run_dir.parents) if not p.exists()]  # what a failure undoes
        had_lock = path.exists()
        fd = None
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                holder = path.read_text().strip() or "?"
                raise FolderBusy(f"run folder {self.run_dir} is in use by another ganzoo process (pid {holder}); "
                                 f"wait for it to end or pick another folder") from None
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
        except BaseException as exc:
            if fd is not None:
                os.close(fd)
            if not had_lock and not isinstance(exc, FolderBusy):  # a full disk leaves no empty .lock or folder
                _remove_quietly(path, made)
            if isinstance(exc, OSError):
                raise GanzooError(os_error_message(exc, "cannot lock the run folder:")) from None
            raise
        self.fd = fd
        remove_stale_temps(self.run_dir)  # under the lock: no writer of this folder is alive
        return self

    def hand_to_child(self) -> None:
        """Keep the lock across exec: the app that replaces this process holds it."""
        os.set_inheritable(self.fd, True)
        os.environ[LOCK_ENV] = f"{self.fd}:{self.run_dir.resolve()}"

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _remove_quietly(lock: Path, folders: list) -> None:
    try:
        lock.unlink()
    except OSError:
        pass
    for folder in folders:  # the innermost first
        try:
            folder.rmdir()
        except OSError:
            break


def lock_run(run_dir: Path) -> Optional[RunLock]:
    """The lock of `run_dir` for this process: None when the CLI already took it before exec."""
    inherited = os.environ.get(LOCK_ENV, "")
    path = inherited.partition(":")[2]
    if path and Path(path) == Path(run_dir).resolve():
        return None
    return RunLock(run_dir).acquire()


def write_status(run_dir: Path, status: str, **extra) -> None:
    """status.json: what the run is doing (running, done, preempted, failed, ...) and since when."""
    record = {"status": status, "time": round(time.time(), 3), **extra}
    atomic_write(Path(run_dir) / "status.json", lambda fh: fh.write(json.dumps(record).encode()))


def read_status(run_dir: Path) -> Optional[dict]:
    """status.json as a record; None when it is missing, unreadable or not a record."""
    path = Path(run_dir) / "status.json"
    try:
        record = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None
    return record if isinstance(record, dict) else None


def status_step(status: dict, run_dir: Path) -> int:
    """The step a status record says the run reached; a damaged one is refused in one line."""
    step = status.get("step") or 0
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise CheckpointError(f"{Path(run_dir) / 'status.json'} is damaged (step {step!r} is not a step "
                              f"count): delete it to let resume=auto use the checkpoint, or resume={run_dir}")
    return step


def run_records(run_dir: Path) -> list:
    """The files of a run's record a new run in `run_dir` would write over (Hydra's .hydra/ and train.log,
    written for this job before it starts, are not among them)."""
    run_dir = Path(run_dir)
    found = [name for name in ("metrics.jsonl", "status.json") if (run_dir / name).exists()]
    if (run_dir / "samples").is_dir() and any((run_dir / "samples").iterdir()):
        found.append("samples/")
    if any(run_dir.glob("events.out.tfevents.*")):
        found.append("TensorBoard events")
    return found


def refuse_records(run_dir: Path) -> None:
    """A new run (no resume) must not write over another run's records that have no checkpoint."""
    records = run_records(run_dir)
    if records:  # a run saved without a checkpoint (ckpt_every=0 cut short) or another tool's files
        raise ConfigError(f"{run_dir} already holds {', '.join(records)} and no checkpoint to continue: a new "
                          f"run would write over them; pick another folder (or move them away)")


def auto_resume(run_dir: Path, steps: int) -> Optional[str]:
    """What `resume=auto` does in `run_dir`: "done" (the run finished at `steps` or beyond: skip
    it), "resume" (a checkpoint to continue), or None (start fresh)."""
    run_dir = Path(run_dir)
    status = read_status(run_dir) or {}
    if status.get("status") == "done" and status_step(status, run_dir) >= steps:
        return "done"
    if (run_dir / "ckpt" / "last.pt").is_file():
        return "resume"
    return None
