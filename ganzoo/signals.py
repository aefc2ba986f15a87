"""Stopping a run cleanly when the machine asks it to.

A scheduler preempts with SIGTERM (SLURM, Kubernetes), SIGUSR1/SIGUSR2 (SLURM's --signal,
submitit's requeue), SIGHUP (a closed terminal); a person presses Ctrl-C (SIGINT). The first
signal only sets a flag: the loop finishes its step, writes a checkpoint and stops. A second
one stops at once by raising, so an atomic write in progress removes its temp file and the
last checkpoint stays as it was.
"""
from __future__ import annotations

import signal
import threading
from typing import Dict, Optional

from .errors import GanzooError

SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGHUP", "SIGUSR1", "SIGUSR2")
                if hasattr(signal, name))


def exit_code(signum: int) -> int:
    """The shell's convention for a process ended by a signal."""
    return 128 + int(signum)


def name(signum: int) -> str:
    return signal.Signals(signum).name


class Stopped(GanzooError):
    """The run stopped at a signal after saving its state and its status."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum
        self.exit_code = exit_code(signum)


class Interrupted(BaseException):
    """A second signal: unwind now (BaseException, so no `except Exception` swallows it)."""

    def __init__(self, signum: int):
        super().__init__(name(signum))
        self.signum = signum


class StopSignals:
    """While active, SIGTERM/INT/HUP/USR1/USR2 request a stop instead of killing the process.

    Handlers that were installed before (submitit's requeue handler in a cluster job) are kept and
    called by `hand_over` once the run has saved its state, so the launcher still requeues the job.
    """

    def __init__(self) -> None:
        self.signum: Optional[int] = None
        self._previous: Dict[int, object] = {}

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():  # Python only allows it there
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame) -> None:
        if self.signum is not None:
            raise Interrupted(signum)
        self.signum = signum

    def join(self, signum: int) -> None:
        """Stop for a signal another rank received (distributed runs stop together)."""
        if self.signum is None and signum:
            self.signum = signum

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def status(self) -> str:
        return "interrupted" if self.signum == signal.SIGINT else "preempted"

    def hand_over(self) -> None:
        """Call the handler that was there before ours, if it is a program's own (submitit requeues
        the job and exits from it); Python's defaults would only raise a traceback or kill us."""
        previous = self._previous.get(self.signum)
        if callable(previous) and previous is not signal.default_int_handler:
            previous(self.signum, None)
