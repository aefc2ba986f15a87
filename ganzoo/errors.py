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
