"""Where each image dataset's files are expected, and what to tell a user who lacks them.
Torch-free, so a missing dataset is reported before anything heavy is imported."""
from __future__ import annotations

import os
from pathlib import Path
from typing import List

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

FOLDERS = {
    "mnist": "mnist", "fashion_mnist": "fashion_mnist", "cifar10": "cifar10", "cifar100": "cifar100",
    "stl10": "stl10", "celeba": "celeba", "tiny_imagenet": "tiny_imagenet", "imagenet": "imagenet",
    "lsun_bedroom": "lsun", "image_folder": "images",
}

HINTS = {
    "mnist": "put train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and "
             "t10k-labels-idx1-ubyte.gz in {root} (or set dataset.root=<their folder>), or set "
             "dataset.download=true on a machine with internet",
    "fashion_mnist": "run `apt-get install dataset-fashion-mnist` (files in /usr/share/datasets/fashion-mnist), "
                     "or set dataset.root=<folder with the four idx files>, or dataset.download=true with internet",
    "cifar10": "download cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html and extract it "
               "in {root} (or set dataset.root=<folder holding cifar-10-batches-py>), or set dataset.download=true",
    "cifar100": "download cifar-100-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html and extract it "
                "in {root} (or set dataset.root=<folder holding cifar-100-python>), or set dataset.download=true",
    "stl10": "download stl10_binary.tar.gz from https://cs.stanford.edu/~acoates/stl10/ and extract it in {root} "
             "(or set dataset.root=<folder holding stl10_binary>), or set dataset.download=true",
    "celeba": "put CelebA's img_align_celeba/ and list_eval_partition.txt in {root}/celeba "
              "(https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html), or set dataset.root=<folder holding celeba/>",
    "tiny_imagenet": "download tiny-imagenet-200.zip (http://cs231n.stanford.edu/tiny-imagenet-200.zip) and "
                     "extract it in {root}, or set dataset.root=<folder holding tiny-imagenet-200>",
    "imagenet": "point dataset.root at an ImageNet folder with train/<class>/*.JPEG (val/ optional); "
                "it is resized to the configured resolution on the fly",
    "lsun_bedroom": "download bedroom_train_lmdb with LSUN's download.py (https://github.com/fyu/lsun) into {root}, "
                    "`pip install lmdb`, or set dataset.root=<folder holding bedroom_train_lmdb>",
    "image_folder": "set dataset.root=<a folder of images (png, jpg, ...), searched recursively>",
}


def resolve_root(cfg) -> Path:
    if cfg.root:
        return Path(os.path.expanduser(str(cfg.root)))
    if cfg.name == "fashion_mnist" and DEBIAN_FASHION_MNIST.is_dir():
        return DEBIAN_FASHION_MNIST
    base = Path(os.path.expanduser(os.environ.get("GANZOO_DATA", "data")))
    return base / FOLDERS[cfg.name]


def _idx_file(folder: Path, stem: str) -> Path:
    raw = folder / stem
    return raw if raw.is_file() else folder / (stem + ".gz")


def expected_files(cfg, root: Path) -> List[Path]:
    """The paths that must exist; for idx files either the raw or the .gz name will do."""
    name = cfg.name
    if name in ("mnist", "fashion_mnist"):
        stems = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"]
        # torchvision's own layout is accepted too
        layouts = [root, root / ("MNIST" if name == "mnist" else "FashionMNIST") / "raw", root / "raw"]
        folder = next((f for f in layouts if _idx_file(f, stems[0]).is_file()), root)
        return [_idx_file(folder, s) for s in stems]
    if name == "cifar10":
        base = root / "cifar-10-batches-py"
        return [base / f"data_batch_{i}" for i in range(1, 6)] + [base / "test_batch"]
    if name == "cifar100":
        return [root / "cifar-100-python" / "train", root / "cifar-100-python" / "test"]
    if name == "stl10":
        base = root / "stl10_binary"
        return [base / "unlabeled_X.bin", base / "test_X.bin", base / "test_y.bin"]
    if name == "celeba":
        return [root / "celeba" / "img_align_celeba"]
    if name == "tiny_imagenet":
        return [root / "tiny-imagenet-200" / "train"]
    if name == "imagenet":
        return [root / "train"]
    if name == "lsun_bedroom":
        return [root / "bedroom_train_lmdb"]
    return [root]


def missing_message(cfg, root: Path, missing: List[Path]) -> str:
    shown = ", ".join(str(p) for p in missing[:4]) + (f" (+{len(missing) - 4} more)" if len(missing) > 4 else "")
    return f"dataset {cfg.name}: missing {shown}; " + HINTS[cfg.name].format(root=root)


def check_files(cfg) -> None:
    """Raise DataError naming the missing files, the key to set and how to get them."""
    from ..errors import DataError
    if getattr(cfg, "download", False):
        return
    root = resolve_root(cfg)
    missing = [f for f in expected_files(cfg, root) if not f.exists()]
    if missing:
        raise DataError(missing_message(cfg, root, missing))
