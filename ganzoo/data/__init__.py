"""Datasets and the seeded, resumable stream the training loop draws real batches from.

Only data/schemas.py is imported eagerly (config checks read it without torch)."""


def build_data(cfg, synthetic: int = 0):
    """Dataset config -> dataset object: a 2-D distribution or an image set (`synthetic` random
    images of its shape in place of the files, for smoke runs)."""
    from .schemas import ImageData
    if isinstance(cfg, ImageData):
        from .images import build_images, build_synthetic
        return build_synthetic(cfg, synthetic) if synthetic else build_images(cfg)
    from .toy import build_toy
    return build_toy(cfg)


def __getattr__(name):
    if name == "Stream":
        from .stream import Stream
        return Stream
    raise AttributeError(name)


__all__ = ["Stream", "build_data"]
