"""Image datasets, read from local files (no network is assumed).

Small sets (MNIST-like, CIFAR, STL-10 at 48) are decoded once into one uint8
tensor and later batched by index on the training device; large ones
(CelebA, Tiny ImageNet, ImageNet, LSUN, any folder) are read through a
DataLoader. Pixels reach the nets in [-1, 1].
"""
from __future__ import annotations

import gzip
import hashlib
import logging
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from ..errors import DataError
from .files import DATASETS, check_files, expected_files, resolve_root
from .pixels import to_float

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".ppm", ".tif", ".tiff")

log = logging.getLogger("ganzoo")

# An unreadable file in a folder of images (a truncated or corrupt JPEG, a file removed under a running
# job) is skipped with a warning naming it, up to this share of the files; one more stops the job with
# one line (UnreadableImages). Why skip: one bad JPEG among 200k must not end a 3-day run hours in,
# and a start-up check cannot find it cheaply (a header check misses truncated data, the usual damage;
# decoding every file costs an epoch). Why a bound: skipping changes the dataset, so it is never
# silent (each file is named once, with the running count, and FolderImages.skipped() lists them),
# and a broken mount or a folder of non-images stops the job instead of training on what is left.
# Below 100 files the bound is 0: any unreadable file stops the job. A skipped file's reads are served
# by the next readable file, so batches keep their size and a resumed stream its exact order.
MAX_UNREADABLE = 0.01


def resize_uint8(x: Tensor, size: int) -> Tensor:
    """N x C x h x w uint8 -> N x C x size x size, antialiased, in chunks to bound memory."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    out = []
    for i in range(0, len(x), 4096):
        part = F.interpolate(x[i:i + 4096].float(), size=(size, size), mode="bilinear",
                             antialias=True, align_corners=False)
        out.append(part.round_().clamp_(0, 255).to(torch.uint8))
    return torch.cat(out)



class Evaluator:
    """evaluator(sample_fn, num_generators, surface=None) -> scores (D's scores are a 2-D measure: `surface`
    is not used on images); `warm()` computes the reference features first."""

    def __init__(self, scores, seed: int):
        self.scores, self.seed = scores, seed

    def __call__(self, sample_fn, num_generators, surface=None, classes: int = 0):
        return self.scores(sample_fn, self.seed, num_generators, classes)

    def warm(self) -> None:
        self.scores.warm()

class TensorImages(Dataset):
    def __init__(self, images: Tensor, labels: Optional[Tensor]):
        self.x = images
        self.y = labels

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], int(self.y[i]) if self.y is not None else -1


def square(im, size: int, crop: Optional[int] = None):
    """A PIL image centre-cropped to a square (of side `crop`, default its short side) and resized
    to size x size (bicubic)."""
    from PIL import Image
    w, h = im.size
    s = crop or min(w, h)
    im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
    return im.resize((size, size), Image.BICUBIC)


def pil_item(im, size: int, channels: int, crop: Optional[int] = None) -> Tensor:
    """A PIL image -> uint8 C x size x size."""
    im = square(im.convert("L" if channels == 1 else "RGB"), size, crop)
    x = torch.from_numpy(np.asarray(im, dtype=np.uint8).copy())
    return x[None] if x.dim() == 2 else x.permute(2, 0, 1)


class UnreadableImages(DataError):
    """Too many image files could not be read (MAX_UNREADABLE). Raised in a DataLoader worker, it
    reaches the main process rebuilt from the worker's traceback as text; only its own line is kept."""

    def __init__(self, message: str):
        marker = f"{__name__}.{type(self).__name__}: "
        if "Traceback" in message and marker in message:
            message = message.rsplit(marker, 1)[1].strip().splitlines()[0]
        super().__init__(message)


class FolderImages(Dataset):
    """Image files (recursively), centre-cropped to a square and resized; label = class folder
    index when `labelled`, else -1. Unreadable files are skipped or stop the job: MAX_UNREADABLE."""

    def __init__(self, files: List[Path], size: int, channels: int, labels: Optional[List[int]] = None,
                 name: str = "image_folder"):
        self.files = files
        self.size = size
        self.channels = channels
        self.labels = labels
        self.name = name
        # the files found unreadable, in shared memory: DataLoader workers mark them, every process
        # (the main one too) sees the marks, so each file is tried and named once
        self.unreadable = torch.zeros(len(files), dtype=torch.bool).share_memory_()
        self.limit = int(MAX_UNREADABLE * len(files))

    def __len__(self) -> int:
        return len(self.files)

    crop: Optional[int] = None  # the square's side; None = the short side

    def __getitem__(self, i):
        j = i
        for _ in range(len(self.files)):
            if not self.unreadable[j]:
                try:
                    return self.read(j), self.labels[j] if self.labels is not None else -1
                except MemoryError:
                    raise
                except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError, zlib.error...
                    self._skip(j, exc)
            j = (j + 1) % len(self.files)
        raise UnreadableImages(f"dataset {self.name}: none of the {len(self.files)} image files could be read")

    def read(self, i: int) -> Tensor:
        from PIL import Image
        with Image.open(self.files[i]) as im:
            return pil_item(im, self.size, self.channels, self.crop)

    def _skip(self, i: int, exc: Exception) -> None:
        self.unreadable[i] = True
        count = int(self.unreadable.sum())
        reason = " ".join(str(exc).split())[:160] or type(exc).__name__
        if count > self.limit:
            raise UnreadableImages(
                f"dataset {self.name}: cannot read image {self.files[i]} ({reason}); {count} of {len(self.files)} "
                f"files are unreadable and a run skips at most {MAX_UNREADABLE:.0%} of them ({self.limit} here): "
                f"repair or remove the unreadable files") from None
        log.warning(f"dataset {self.name}: skipping unreadable image {self.files[i]} ({reason}); "
                    f"{count} of {len(self.files)} files skipped so far (at most {self.limit}); "
                    f"its reads get the next readable file")

    def skipped(self) -> List[Path]:
        """The files found unreadable so far (by this process and its DataLoader workers)."""
        return [self.files[i] for i in torch.nonzero(self.unreadable).flatten().tolist()]


PICTURE_CLASSES = 20  # rows of a conditional model's picture


class ImageData:
    """What the loop, the metrics and `sample` need of an image dataset."""

    modes = None
    std = None
    base = None  # a stacked set: () -> the dataset whose images it stacks (data/files.py, stacked_from)
    full = None  # a share of a training set (dataset.fraction): () -> the whole set, which the scoring
                 # classifier learns from, so a score means the same at any fraction
    score_parts = False  # an image evaluation is costly: `ganzoo eval` scores a method's parts on their own

    def __init__(self, cfg, splits: Dict[str, Callable[[], Dataset]], in_memory: bool):
        self.name = cfg.name
        self.cfg = cfg
        self.shape = (cfg.channels, cfg.resolution, cfg.resolution)
        self.num_classes = cfg.num_classes
        self.workers = cfg.workers
        self.in_memory = in_memory
        self._splits = splits
        self._cache: Dict[str, Dataset] = {}
        self._fingerprints: Dict[str, str] = {}
        self.finite: Optional[Tensor] = None
        self.finite_labels: Optional[Tensor] = None
        ds = self.images("train")  # opened now, so an empty or unreadable set fails at start-up
        if in_memory:  # decode once; the stream then batches by index on the device
            if not isinstance(ds, TensorImages):
                items = [ds[i] for i in range(len(ds))]
                if isinstance(ds, FolderImages):  # skipped files are left out, not served twice
                    items = [item for item, bad in zip(items, ds.unreadable.tolist()) if not bad]
                ds = TensorImages(torch.stack([x for x, _ in items]), torch.tensor([y for _, y in items]))
                self._cache["train"] = ds
            self.finite, self.finite_labels = ds.x, ds.y
        elif isinstance(ds, FolderImages) and len(ds):
            ds[0]  # one file decoded now: a folder of files PIL cannot read stops here, not at step 1

    decode = staticmethod(to_float)

    def class_counts(self) -> Tensor:
        """How often each class occurs in the training split; DataError when the split has no labels in
        0..num_classes-1 (what a conditional run trains on)."""
        ds = self.images("train")
        y = ds.y if isinstance(ds, TensorImages) else (
            torch.tensor(ds.labels) if getattr(ds, "labels", None) is not None else None)
        if y is None or len(y) == 0 or int(y.min()) < 0:
            raise DataError(f"dataset {self.name}: its training images carry no class labels, which "
                            f"conditional=true needs")
        if int(y.max()) >= self.num_classes:
            raise DataError(f"dataset {self.name}: labels go up to {int(y.max())} but dataset.num_classes="
                            f"{self.num_classes}; set dataset.num_classes={int(y.max()) + 1}")
        return torch.bincount(y, minlength=self.num_classes).float()

    def evaluator(self, metrics, seed: int, device: torch.device, shard=None):
        """-> evaluate(sample_fn, num_generators) -> the chosen image metrics (metrics/fidelity.py); under
        several ranks (`shard`) every rank extracts its share of the features and rank 0 scores."""
        from ..distributed import Shard
        from ..metrics.fidelity import ImageMetrics
        scores = ImageMetrics(metrics, self, device, workers=self.workers, shard=shard or Shard()).preflight()
        return Evaluator(scores, seed + 99_991)

    def picture(self, method, seed: int, device: torch.device, title: str, images: int = 64, classes: int = 0):
        """A grid of fixed-noise samples: one row of 8 per generator, or `images` (in rows of 8) from one; a
        conditional model (`classes`): a row of 8 per class (the first PICTURE_CLASSES classes)."""
        from ..plots import image_grid
        fixed = torch.Generator(device=device).manual_seed(seed + 31_337)
        if classes:
            y = torch.arange(min(classes, PICTURE_CLASSES), device=device).repeat_interleave(8)
            return image_grid([method.sample(len(y), fixed, y=y)[0]], nrow=8)
        return image_grid(method.sample_each(min(8, images) if method.picture_rows > 1 else images, fixed), nrow=8)

    def images(self, split: str) -> Dataset:
        """Items are (uint8 C x H x W at the training resolution, label or -1)."""
        if split not in self._splits:
            raise DataError(f"dataset {self.name} has no '{split}' split (it has: {', '.join(self._splits)})")
        if split not in self._cache:
            ds = self._splits[split]()
            fraction = getattr(self.cfg, "fraction", 1.0)
            if split == "train" and fraction < 1:
                ds = _subset(ds, fraction, self.cfg.fraction_seed, self.name)
            self._cache[split] = ds
        return self._cache[split]

    def fingerprint(self, split: str) -> str:
        """A content hash, stable across runs, for caching reference statistics."""
        ds = self.images(split)
        if split not in self._fingerprints:
            h = hashlib.sha256(f"{self.name}|{split}|{self.shape}".encode())
            if isinstance(ds, TensorImages):
                h.update(memoryview(ds.x.contiguous().numpy()).cast("B"))
            else:
                for f in ds.files:
                    st = f.stat()
                    h.update(f"{f}|{st.st_size}|{int(st.st_mtime)}".encode())
            self._fingerprints[split] = h.hexdigest()[:24]
        return self._fingerprints[split]


def _subset(ds, fraction: float, seed: int, name: str) -> "TensorImages":
    """A seeded share of a training set, in its original order (dataset.fraction)."""
    if not isinstance(ds, TensorImages):
        raise DataError(f"dataset {name}: dataset.fraction needs a set held in memory (mnist, fashion_mnist, cifar10, "
                        f"cifar100, stl10, or dataset.in_memory=true)")
    keep = max(1, int(len(ds) * fraction))
    idx = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed))[:keep].sort().values
    return TensorImages(ds.x[idx], ds.y[idx] if ds.y is not None else None)


# ---------------------------------------------------------------------- loaders
def _idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _find(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(stem)


def _mnist_like(cfg, folder: Path, split: str):
    prefix = "train" if split == "train" else "t10k"
    x = torch.from_numpy(_idx(_find(folder, f"{prefix}-images-idx3-ubyte")).copy())[:, None]
    y = torch.from_numpy(_idx(_find(folder, f"{prefix}-labels-idx1-ubyte")).astype(np.int64))
    return TensorImages(resize_uint8(x, cfg.resolution), y)


def _torchvision(cfg, root: Path, split: str):
    import torchvision.datasets as tvd
    kw = {"root": str(root), "download": cfg.download}
    if cfg.name in ("cifar10", "cifar100"):
        cls = tvd.CIFAR10 if cfg.name == "cifar10" else tvd.CIFAR100
        ds = cls(train=split == "train", **kw)
        x = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
        y = torch.as_tensor(ds.targets, dtype=torch.long)
    else:  # stl10: GANs train on the 100k unlabelled images (the aw paper, SN-GAN); with
        # dataset.num_classes=10 (a conditional run) on the 5,000 labelled training images
        unlabelled = split == "train" and cfg.num_classes == 0
        ds = tvd.STL10(split="unlabeled" if unlabelled else split, **kw)
        x = torch.from_numpy(ds.data)
        y = None if unlabelled else torch.from_numpy(ds.labels.astype(np.int64))
    if cfg.channels == 1:
        x = x.float().mean(1, keepdim=True).round().to(torch.uint8)
    return TensorImages(resize_uint8(x, cfg.resolution), y)


def _folder(cfg, folder: Path, labelled: bool):
    if labelled:
        classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
        if cfg.num_classes and len(classes) != cfg.num_classes:
            raise DataError(f"dataset {cfg.name}: {folder} has {len(classes)} class sub-folders but "
                            f"dataset.num_classes={cfg.num_classes}; set dataset.num_classes={len(classes)}")
        files, labels = [], []
        for k, c in enumerate(classes):
            found = sorted(p for p in (folder / c).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
            files += found
            labels += [k] * len(found)
    else:
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
        labels = None
    if not files:
        raise DataError(f"dataset {cfg.name}: no images ({', '.join(IMAGE_EXTENSIONS)}) under {folder}; "
                        f"set dataset.root to a folder of images")
    return FolderImages(files, cfg.resolution, cfg.channels, labels, name=cfg.name)


def _celeba(cfg, root: Path, split: str):
    folder = root / "celeba" / "img_align_celeba"
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    partition = root / "celeba" / "list_eval_partition.txt"
    if partition.is_file():  # 0 train, 1 valid, 2 test (the official split)
        want = {"train": "0", "test": "2"}[split]
        keep = {line.split()[0] for line in partition.read_text().splitlines()
                if len(line.split()) == 2 and line.split()[1] == want}
        files = [f for f in files if f.name in keep]
    # the usual GAN preprocessing: centre crop of the aligned face, then resize
    return CelebAImages(files, cfg.resolution, cfg.channels, name=cfg.name)


class CelebAImages(FolderImages):
    crop = 140  # the usual GAN preprocessing of the aligned 178x218 faces


class LSUNImages(Dataset):
    def __init__(self, root: Path, size: int, channels: int):
        import torchvision.datasets as tvd
        self.ds = tvd.LSUN(str(root), classes=["bedroom_train"])
        self.size = size
        self.channels = channels
        self.files: List[Path] = [root / "bedroom_train_lmdb" / "data.mdb"]

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i):
        im, _ = self.ds[i]
        return pil_item(im, self.size, self.channels), -1


def build_synthetic(cfg, n: int) -> ImageData:
    """n uniformly random images with balanced labels, seeded, in the dataset's shape: enough for the
    nets, the method and the loop to run exactly as on the real files. Scores on them mean nothing."""
    def split(seed: int):
        gen = torch.Generator().manual_seed(seed)
        x = torch.randint(0, 256, (n, cfg.channels, cfg.resolution, cfg.resolution), generator=gen,
                          dtype=torch.uint8)
        y = torch.arange(n) % cfg.num_classes if cfg.num_classes else None
        return TensorImages(x, y)
    data = ImageData(cfg, {"train": lambda: split(0), "test": lambda: split(1)}, in_memory=True)
    data.name = f"synthetic_{cfg.name}"  # its own classifier and reference-statistics cache entries
    return data


# Readers, named by the dataset records (data/files.py): reader(cfg, root) -> {split: loader}
def mnist_like(cfg, root: Path) -> Dict[str, Callable]:
    if cfg.download:
        import torchvision.datasets as tvd
        try:
            (tvd.MNIST if cfg.name == "mnist" else tvd.FashionMNIST)(str(root), download=True)
        except (RuntimeError, OSError) as exc:
            raise DataError(f"dataset {cfg.name}: the download failed (dataset.download=true needs internet: "
                            f"{str(exc).strip().splitlines()[-1][:160]}); "
                            f"{DATASETS[cfg.name].how_to_get(root, download_set=True)}") from None
    folder = expected_files(cfg, root)[0].parent
    return {s: (lambda s=s: _mnist_like(cfg, folder, s)) for s in ("train", "test")}


STACK_SEED = 0  # the stacked sets' index draws: seed STACK_SEED for train, STACK_SEED + 1 for test


def stacked_mnist_like(cfg, root: Path) -> Dict[str, Callable]:
    """Three images of the base set's split per stacked image, drawn with seeded independent indices, one
    per channel; label = 100 * class of channel 0 + 10 * class of channel 1 + class of channel 2.
    The training split's channels come from train and test together under dataset.stack_pool=all, and it
    holds dataset.stack_size stacked images when that is set (PacGAN's setting: both)."""
    base = mnist_like(_base_cfg(cfg), root)

    def split(name: str) -> TensorImages:
        one = base[name]()
        size = len(one.x)
        if name == "train":
            if cfg.stack_pool == "all":
                test = base["test"]()
                one = TensorImages(torch.cat([one.x, test.x]), torch.cat([one.y, test.y]))
            size = cfg.stack_size or size
        gen = torch.Generator().manual_seed(STACK_SEED + (name == "test"))
        idx = torch.randint(len(one.x), (3, size), generator=gen)
        x = torch.cat([one.x[i] for i in idx], dim=1)
        y = 100 * one.y[idx[0]] + 10 * one.y[idx[1]] + one.y[idx[2]]
        return TensorImages(x, y)
    return {s: (lambda s=s: split(s)) for s in ("train", "test")}


def _base_cfg(cfg):
    """The dataset config of a stacked set's base: one channel, its own classes, the same files and size."""
    import dataclasses
    from .schemas import ImageSet, StackPool
    return dataclasses.replace(cfg, name=ImageSet(DATASETS[cfg.name].stacked_from), channels=1, num_classes=10,
                               stack_pool=StackPool.split, stack_size=None)


def torchvision_set(cfg, root: Path) -> Dict[str, Callable]:
    return {s: (lambda s=s: _torchvision(cfg, root, s)) for s in ("train", "test")}


def celeba(cfg, root: Path) -> Dict[str, Callable]:
    return {s: (lambda s=s: _celeba(cfg, root, s)) for s in ("train", "test")}


def tiny_imagenet(cfg, root: Path) -> Dict[str, Callable]:
    return {"train": lambda: _folder(cfg, root / "tiny-imagenet-200" / "train", labelled=True)}


def imagenet(cfg, root: Path) -> Dict[str, Callable]:
    splits = {"train": lambda: _folder(cfg, root / "train", labelled=True)}
    if (root / "val").is_dir():
        splits["test"] = lambda: _folder(cfg, root / "val", labelled=True)
    return splits


def lsun(cfg, root: Path) -> Dict[str, Callable]:
    return {"train": lambda: LSUNImages(root, cfg.resolution, cfg.channels)}


def image_folder(cfg, root: Path) -> Dict[str, Callable]:
    """dataset.num_classes > 0: each sub-folder of root is a class (sorted by name), its images labelled so."""
    return {"train": lambda: _folder(cfg, root, labelled=cfg.num_classes > 0)}


def build_images(cfg) -> ImageData:
    check_files(cfg)
    root = resolve_root(cfg)
    record = DATASETS[cfg.name]
    splits = globals()[record.reader](cfg, root)
    in_memory = cfg.in_memory if cfg.in_memory is not None else record.in_memory
    try:
        data = ImageData(cfg, splits, in_memory)
        if record.stacked_from:  # its modes are counted by the base set's classifier, one channel at a time
            data.base = lambda: build_images(_base_cfg(cfg))
        if cfg.fraction < 1:
            import dataclasses
            data.full = lambda: build_images(dataclasses.replace(cfg, fraction=1.0))
        return data
    except DataError:
        raise
    except (RuntimeError, OSError, ImportError, ValueError) as exc:
        lines = str(exc).strip().splitlines() or [type(exc).__name__]
        reason, hint = lines[0], record.how_to_get(root, download_set=cfg.download)
        if cfg.download:  # it was already set: the download itself failed (its last line says why)
            reason, hint = lines[-1], "the download failed (dataset.download=true needs internet): " + hint
        raise DataError(f"dataset {cfg.name}: could not read {root} ({reason[:200]}); " + hint) from None
