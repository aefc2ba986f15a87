"""One record per image dataset: where its files are expected, how to tell that they are there,
what to tell a user who lacks them, and which reader (data/images.py) loads them. Torch-free,
so a missing dataset is reported before anything heavy is imported. Adding a dataset: a record
here, a reader in data/images.py, its YAML in conf/dataset/."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
DOWNLOAD = ", or set dataset.download=true on a machine with internet"
IDX_STEMS = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


@dataclass(frozen=True)
class DatasetRecord:
    folder: str                            # under $GANZOO_DATA (default ./data) when dataset.root is unset
    hint: str                              # how to get the files; {root} is the folder looked in
    files: Callable[[Path], List[Path]]    # root -> the paths that must exist
    reader: str                            # data/images.py's reader(cfg, root) -> {split: loader}
    in_memory: bool = False                # decoded once into one tensor (small sets) unless dataset.in_memory says
    download: bool = False                 # torchvision can fetch it (dataset.download=true)
    stacked_from: Optional[str] = None     # a stacked set: three images of this dataset, one per channel

    def how_to_get(self, root: Path, download_set: bool = False) -> str:
        """The hint, offering dataset.download=true only where it can help and is not set already."""
        return self.hint.format(root=root) + (DOWNLOAD if self.download and not download_set else "")


def _idx_file(folder: Path, stem: str) -> Path:
    raw = folder / stem
    return raw if raw.is_file() else folder / (stem + ".gz")


def _idx_files(torchvision_folder: str) -> Callable[[Path], List[Path]]:
    """The four idx files (raw or .gz) in root, or in torchvision's own layout under it."""
    def files(root: Path) -> List[Path]:
        layouts = [root, root / torchvision_folder / "raw", root / "raw"]
        folder = next((f for f in layouts if _idx_file(f, IDX_STEMS[0]).is_file()), root)
        return [_idx_file(folder, s) for s in IDX_STEMS]
    return files


def _under(*parts: str) -> Callable[[Path], List[Path]]:
    return lambda root: [root.joinpath(*parts)]


DATASETS = {
    "mnist": DatasetRecord(
        "mnist", "put train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and "
        "t10k-labels-idx1-ubyte.gz in {root} (or set dataset.root=<their folder>)",
        _idx_files("MNIST"), "mnist_like", in_memory=True, download=True),
    "fashion_mnist": DatasetRecord(
        "fashion_mnist", "run `apt-get install dataset-fashion-mnist` (files in /usr/share/datasets/fashion-mnist), "
        "or set dataset.root=<folder with the four idx files>",
        _idx_files("FashionMNIST"), "mnist_like", in_memory=True, download=True),
    # 1,000 modes: three Fashion-MNIST images of one split, one per channel (Stacked MNIST's construction,
    # used by VEEGAN, PacGAN, Unrolled GAN, D2GAN and MGAN, on the MNIST-like set this machine has)
    "stacked_fashion_mnist": DatasetRecord(
        "fashion_mnist", "run `apt-get install dataset-fashion-mnist` (files in /usr/share/datasets/fashion-mnist), "
        "or set dataset.root=<folder with the four idx files>",
        _idx_files("FashionMNIST"), "stacked_mnist_like", in_memory=True, download=True,
        stacked_from="fashion_mnist"),
    "cifar10": DatasetRecord(
        "cifar10", "download cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html and extract it "
        "in {root} (or set dataset.root=<folder holding cifar-10-batches-py>)",
        lambda root: [root / "cifar-10-batches-py" / f"data_batch_{i}" for i in range(1, 6)]
        + [root / "cifar-10-batches-py" / "test_batch"], "torchvision_set", in_memory=True, download=True),
    "cifar100": DatasetRecord(
        "cifar100", "download cifar-100-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html and extract "
        "it in {root} (or set dataset.root=<folder holding cifar-100-python>)",
        lambda root: [root / "cifar-100-python" / "train", root / "cifar-100-python" / "test"],
        "torchvision_set", in_memory=True, download=True),
    "stl10": DatasetRecord(
        "stl10", "download stl10_binary.tar.gz from https://cs.stanford.edu/~acoates/stl10/ and extract it in {root} "
        "(or set dataset.root=<folder holding stl10_binary>)",
        lambda root: [root / "stl10_binary" / f for f in ("unlabeled_X.bin", "test_X.bin", "test_y.bin")],
        "torchvision_set", in_memory=True, download=True),
    "celeba": DatasetRecord(
        "celeba", "put CelebA's img_align_celeba/ and list_eval_partition.txt in {root}/celeba "
        "(https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html), or set dataset.root=<folder holding celeba/>",
        _under("celeba", "img_align_celeba"), "celeba"),
    "tiny_imagenet": DatasetRecord(
        "tiny_imagenet", "download tiny-imagenet-200.zip (http://cs231n.stanford.edu/tiny-imagenet-200.zip) and "
        "extract it in {root}, or set dataset.root=<folder holding tiny-imagenet-200>",
        _under("tiny-imagenet-200", "train"), "tiny_imagenet"),
    "imagenet": DatasetRecord(
        "imagenet", "point dataset.root at an ImageNet folder with train/<class>/*.JPEG (val/ optional); "
        "it is resized to the configured resolution on the fly", _under("train"), "imagenet"),
    "lsun_bedroom": DatasetRecord(
        "lsun", "download bedroom_train_lmdb with LSUN's download.py (https://github.com/fyu/lsun) into {root}, "
        "`pip install lmdb`, or set dataset.root=<folder holding bedroom_train_lmdb>",
        _under("bedroom_train_lmdb"), "lsun"),
    "image_folder": DatasetRecord(
        "images", "set dataset.root=<a folder of images (png, jpg, ...), searched recursively>",
        lambda root: [root], "image_folder"),
}


def resolve_root(cfg) -> Path:
    if cfg.root:
        return Path(os.path.expanduser(str(cfg.root)))
    if DATASETS[cfg.name].folder == "fashion_mnist" and DEBIAN_FASHION_MNIST.is_dir():
        return DEBIAN_FASHION_MNIST
    base = Path(os.path.expanduser(os.environ.get("GANZOO_DATA", "data")))
    return base / DATASETS[cfg.name].folder


def expected_files(cfg, root: Path) -> List[Path]:
    """The paths that must exist; for idx files either the raw or the .gz name will do."""
    return DATASETS[cfg.name].files(root)


def missing_message(cfg, root: Path, missing: List[Path]) -> str:
    shown = ", ".join(str(p) for p in missing[:4]) + (f" (+{len(missing) - 4} more)" if len(missing) > 4 else "")
    return f"dataset {cfg.name}: missing {shown}; " + DATASETS[cfg.name].how_to_get(root)


def check_files(cfg) -> None:
    """Raise DataError naming the missing files, the key to set and how to get them."""
    from ..errors import DataError
    if getattr(cfg, "download", False):
        return
    root = resolve_root(cfg)
    missing = [f for f in expected_files(cfg, root) if not f.exists()]
    if missing:
        raise DataError(missing_message(cfg, root, missing))
