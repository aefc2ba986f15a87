"""A run folder: claiming a fresh one, locking it while a process writes it, and what
`resume=auto` finds in it. Free of torch imports: the CLI uses it before a job starts."""
from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Optional

from .errors import ConfigError, GanzooError

LOCK_NAME = ".lock"
# the CLI takes the lock, then replaces itself with the app: the locked descriptor is inherited,
# and the app finds it here instead of locking twice
LOCK_ENV = "GANZOO_RUN_LOCK"


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
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path = self.run_dir / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            holder = path.read_text().strip() or "?"
            raise FolderBusy(f"run folder {self.run_dir} is in use by another ganzoo process (pid {holder}); "
                             f"wait for it to end or pick another folder") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd
        return self

    def hand_to_child(self) -> None:
        """Keep the lock across exec: the app that replaces this process holds it."""
        os.set_inheritable(self.fd, True)
        os.environ[LOCK_ENV] = f"{self.fd}:{self.run_dir.resolve()}"

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def lock_run(run_dir: Path) -> Optional[RunLock]:
    """The lock of `run_dir` for this process: None when the CLI already took it before exec."""
    inherited = os.environ.get(LOCK_ENV, "")
    path = inherited.partition(":")[2]
    if path and Path(path) == Path(run_dir).resolve():
        return None
    return RunLock(run_dir).acquire()


def read_status(run_dir: Path) -> Optional[dict]:
    path = Path(run_dir) / "status.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def auto_resume(run_dir: Path, steps: int) -> Optional[str]:
    """What `resume=auto` does in `run_dir`: "done" (the run finished at `steps` or beyond: skip
    it), "resume" (a checkpoint to continue), or None (start fresh)."""
    run_dir = Path(run_dir)
    status = read_status(run_dir) or {}
    if status.get("status") == "done" and int(status.get("step") or 0) >= steps:
        return "done"
    if (run_dir / "ckpt" / "last.pt").is_file():
        return "resume"
    return None
