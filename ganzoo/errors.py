"""Errors a user can fix. Each carries one readable line; the CLI prints it and exits non-zero."""


class GanzooError(Exception):
    exit_code = 1


class ConfigError(GanzooError):
    """A config value that cannot work (wrong key, type or range)."""
    exit_code = 2


class DataError(GanzooError):
    """Missing or incomplete data."""


class CheckpointError(GanzooError):
    """A missing, corrupt or incompatible checkpoint."""


# the one-line checks every schema's `check` is written with
def check(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


def positive(where: str, value) -> None:
    check(value > 0, f"{where} must be > 0, got {value}")


def non_negative(where: str, value) -> None:
    check(value >= 0, f"{where} must be >= 0, got {value}")


def in_unit(where: str, value, closed: bool = True) -> None:
    """value in [0, 1] (closed) or [0, 1)."""
    ok = 0 <= value <= 1 if closed else 0 <= value < 1
    check(ok, f"{where} must be in [0, 1{']' if closed else ')'}, got {value}")
