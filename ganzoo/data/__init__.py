"""Datasets and the seeded, resumable stream the training loop draws real batches from."""
from .stream import Stream, build_data

__all__ = ["Stream", "build_data"]
