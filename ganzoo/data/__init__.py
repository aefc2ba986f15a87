"""Datasets and the seeded, resumable stream the training loop draws real batches from."""
from .stream import Stream


def build_data(cfg):
    """Dataset config -> dataset object: a 2-D distribution or an image set."""
    from ..config import ImageData
    if isinstance(cfg, ImageData):
        from .images import build_images
        return build_images(cfg)
    from .toy import build_toy
    return build_toy(cfg)


__all__ = ["Stream", "build_data"]
