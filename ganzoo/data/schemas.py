"""Config schemas of the datasets, and their checks (no torch: they run before a job starts).

ImageSet names every image dataset ganzoo can read: the records of data/files.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Optional

from omegaconf import MISSING

from ..errors import check, non_negative, positive
from .files import DATASETS


# every image dataset ganzoo can read: one record each in data/files.py
ImageSet = StrEnum("ImageSet", {name: name for name in DATASETS})


class StackPool(StrEnum):
    split = "split"  # a split's stacked images are made from that split's images
    all = "all"      # the training images from train and test together


@dataclass
class RingData:
    name: str = "ring"
    modes: int = 8
    radius: float = 2.0
    std: float = 0.02

    def check(self) -> None:
        check(self.modes >= 1, f"dataset.modes must be >= 1, got {self.modes}")
        positive("dataset.radius", self.radius)
        positive("dataset.std", self.std)

    def reach(self) -> float:
        """How far from the origin the data go (3 standard deviations past the modes)."""
        return self.radius + 3 * self.std


@dataclass
class GridData:
    name: str = "grid"
    size: int = 5
    spacing: float = 2.0
    std: float = 0.05

    def check(self) -> None:
        check(self.size >= 1, f"dataset.size must be >= 1, got {self.size}")
        positive("dataset.spacing", self.spacing)
        positive("dataset.std", self.std)

    def reach(self) -> float:
        return (self.size - 1) / 2 * self.spacing + 3 * self.std


@dataclass
class SwissRollData:
    name: str = "swissroll"
    noise: float = 0.25
    scale: float = 0.25

    def check(self) -> None:
        non_negative("dataset.noise", self.noise)
        positive("dataset.scale", self.scale)

    def reach(self) -> Optional[float]:
        return None


@dataclass
class GaussianData:
    """A finite sample of n points (a fixed training set, seed `seed`)."""
    name: str = "gaussian"
    n: int = 200
    dim: int = 2
    mean: float = 0.0
    std: float = 1.0
    seed: int = 1234

    def check(self) -> None:
        check(self.n >= 1, f"dataset.n must be >= 1, got {self.n}")
        check(self.dim == 2, f"dataset.dim: only 2-D data is supported for plots and metrics, got {self.dim}")
        positive("dataset.std", self.std)

    def reach(self) -> Optional[float]:
        return None


@dataclass
class ImageData:
    """Every image dataset; `name` picks the loader. conf/dataset/<option>.yaml sets its facts."""
    name: ImageSet = MISSING
    root: Optional[str] = None        # where the files are; null = the dataset's usual place
    download: bool = False            # let torchvision download (needs internet)
    channels: int = 1
    resolution: int = 28
    num_classes: int = 0              # 0 = unlabelled (no class metrics)
    in_memory: Optional[bool] = None  # null = auto: one tensor on the device when it fits
    workers: int = 2                  # DataLoader workers when not in memory
    # < 1: train on a seeded subset of this share of the training images (data-efficient GAN studies)
    fraction: float = 1.0
    fraction_seed: int = 0
    # a stacked set (stacked_fashion_mnist): where each channel's image comes from, `split` (the split's own
    # images) or `all` (train and test pooled, as PacGAN's Stacked MNIST code draws them), and how many
    # stacked training images to draw (null: as many as the base set's split)
    stack_pool: StackPool = StackPool.split
    stack_size: Optional[int] = None

    def check(self) -> None:
        check(0 < self.fraction <= 1, f"dataset.fraction must be in (0, 1], got {self.fraction}")
        if not DATASETS[str(self.name)].stacked_from:
            check(self.stack_pool == StackPool.split and self.stack_size is None,
                  f"dataset.stack_pool and dataset.stack_size apply to stacked sets "
                  f"({', '.join(n for n, r in DATASETS.items() if r.stacked_from)}), not {self.name}: drop them, or "
                  f"the benchmark= that sets them")
        if self.stack_size is not None:
            positive("dataset.stack_size", self.stack_size)
        check(self.channels in (1, 3), f"dataset.channels must be 1 or 3, got {self.channels}")
        check(self.resolution >= 8, f"dataset.resolution must be >= 8, got {self.resolution}")
        non_negative("dataset.num_classes", self.num_classes)
        non_negative("dataset.workers", self.workers)


# the 2-D datasets are group options as they are; image datasets extend ImageData in YAML
TOY_DATASETS = {"ring": RingData, "grid": GridData, "swissroll": SwissRollData, "gaussian": GaussianData}
# a dataset config's `name` -> its schema (a saved config names its schema by it)
DATASET_SCHEMAS = {**TOY_DATASETS, **{name.value: ImageData for name in ImageSet}}


def is_image(d) -> bool:
    return isinstance(d, ImageData)


def data_shape(d) -> tuple:
    """The shape of one training sample, known from the config alone."""
    if isinstance(d, ImageData):
        return (d.channels, d.resolution, d.resolution)
    if isinstance(d, GaussianData):
        return (d.dim,)
    return (2,)
