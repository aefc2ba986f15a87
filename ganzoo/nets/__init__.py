"""Networks, built from the `arch` config group."""
from .build import build_nets

__all__ = ["build_nets"]
