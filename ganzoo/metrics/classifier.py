"""A small CNN classifier for labelled image datasets, trained once and cached.

It gives metrics that need no download: FID and KID in its own feature space
(`cfid`, `ckid_*`, through torch-fidelity, where it is registered as the
feature extractor "ganzoo-classifier") and class coverage of the generated
samples (`classes_covered`, `class_kl`, `class_hist`). Its test accuracy is
stored beside its weights and recorded with every score: a classifier that
cannot tell the classes apart makes class coverage meaningless.

Cache layout, under `metrics.cache_dir`:

    classifier/<dataset>-<digest>.pt    {"format", "key", "state_dict", "channels", "resolution",
                                         "num_classes", "accuracy", "train_seconds"}
    classifier/<dataset>-<digest>.json  the same without the weights, for a person to read

`digest` hashes the train and test splits' content fingerprints, the shape,
the number of classes, the architecture version and the training recipe, so
changed data or a changed recipe trains a new classifier and never reuses a
stale one.
"""
from __future__ import annotations

import contextlib

import hashlib
import io
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader
from torch_fidelity import FeatureExtractorBase, register_feature_extractor
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

from ..checkpoint import atomic_write, sha256_file, torch_save, verify
from ..data.pixels import to_float
from ..errors import GanzooError
from ..rundir import cache_lock

log = logging.getLogger("ganzoo")

EXTRACTOR_NAME = "ganzoo-classifier"
FORMAT = 1
# bump when SmallCNN or the recipe's meaning changes, so cached classifiers are retrained
ARCH_VERSION = 1
FEATURE_DIM = 128


@dataclass(frozen=True)
class Recipe:
    """How the classifier is trained: small enough to train on a laptop CPU in the time of a short run,
    accurate enough that class coverage reads the generator, not the classifier (its test accuracy is
    recorded with the cache entry and printed by `ganzoo classifier`)."""
    epochs: int = 2
    batch_size: int = 128
    lr: float = 3e-3
    seed: int = 0


class _Grid(nn.AdaptiveAvgPool2d):
    """Adaptive average pooling that passes a map already at its output size through unchanged (the
    mean of one cell is that cell): at 28x28 the pooling kernel alone took ~30% of the training time
    on a CPU, for the same numbers."""

    def forward(self, x: Tensor) -> Tensor:
        size = self.output_size if isinstance(self.output_size, tuple) else (self.output_size,) * 2
        return x if tuple(x.shape[-2:]) == size else super().forward(x)


class SmallCNN(nn.Module):
    """Two strided convolutions and a 128-unit hidden layer: small enough to train in under a minute on a CPU.
    The hidden layer (after ReLU) is the feature space of cfid/ckid."""

    def __init__(self, channels: int, resolution: int, num_classes: int):
        super().__init__()
        self.channels, self.resolution, self.num_classes = channels, resolution, num_classes
        # strided convs, no batchnorm or pooling: on a CPU the full-resolution activations of a
        # conv-bn-pool stack cost more time than the convolutions themselves, for little accuracy
        self.body = nn.Sequential(
            nn.Conv2d(channels, 32, 4, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(32, 64, 4, stride=2, padding=1), nn.ReLU(inplace=True),
            # a fixed grid whatever the resolution, so the head's size does not depend on it
            _Grid(7), nn.Flatten(),
            nn.Linear(64 * 7 * 7, FEATURE_DIM), nn.ReLU(inplace=True),
        )
        self.head = nn.Linear(FEATURE_DIM, num_classes)

    def forward(self, x: Tensor):
        """x: float images in [-1, 1], (N, channels, resolution, resolution) -> (features, logits)."""
        features = self.body(x)
        return features, self.head(features)


@dataclass
class Classifier:
    model: SmallCNN
    path: Optional[Path]
    accuracy: float
    sha256: str  # of the weights file: part of the reference-statistics cache key


# ---------------------------------------------------------------- the cache
def cache_key(data, recipe: Recipe) -> dict:
    return {"format": FORMAT, "arch": ARCH_VERSION, "dataset": data.name, "shape": list(data.shape),
            "num_classes": int(data.num_classes), "train": data.fingerprint("train"),
            "test": data.fingerprint("test"), "recipe": asdict(recipe)}


def cache_path(data, cache_dir: Union[str, Path], recipe: Recipe = Recipe(), key: Optional[dict] = None) -> Path:
    key = key or cache_key(data, recipe)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return Path(cache_dir).expanduser() / "classifier" / f"{data.name}-{digest}.pt"


def _load_file(source) -> dict:
    """Our own file format, unpickled with weights_only=True: nothing in it can run code. Every record is
    checked against its CRC-32 first: damaged weights would give wrong class metrics, silently."""
    try:
        verify(source)
    except ValueError as exc:
        raise GanzooError(f"{source}: {exc}; delete it to retrain") from None
    state = torch.load(source, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != FORMAT or "state_dict" not in state:
        raise GanzooError(f"{source}: not a ganzoo classifier file (format {FORMAT}); delete it to retrain")
    return state


def _model_from(state: dict) -> SmallCNN:
    model = SmallCNN(int(state["channels"]), int(state["resolution"]), int(state["num_classes"]))
    model.load_state_dict(state["state_dict"])
    return model.eval().requires_grad_(False)


def _check_labelled(data) -> None:
    if int(getattr(data, "num_classes", 0) or 0) < 2:
        raise GanzooError(f"dataset {data.name} has no class labels (num_classes={data.num_classes}); "
                          f"class metrics need a labelled dataset: set metrics.classifier=false")


# ---------------------------------------------------------------- training
def _loader(dataset, batch_size: int, shuffle: bool, seed: int = 0) -> DataLoader:
    gen = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=gen, num_workers=0)


def accuracy(model: SmallCNN, dataset, device: torch.device, batch_size: int = 1000) -> float:
    model.eval()
    right = total = 0
    with torch.no_grad():
        for x, y in _loader(dataset, batch_size, shuffle=False):
            pred = model(to_float(x.to(device)))[1].argmax(1)
            right += int((pred.cpu() == y).sum())
            total += len(y)
    return right / max(total, 1)


def train_classifier(data, cache_dir: Union[str, Path, None], recipe: Recipe = Recipe(),
                     device: Union[str, torch.device] = "cpu") -> Classifier:
    """Train SmallCNN on data.images("train"), measure accuracy on data.images("test"), and (when
    cache_dir is given) save both atomically under cache_dir/classifier/.

    Deterministic for a given recipe.seed and device (it draws from its own seeded RNG state and
    restores the global one afterwards, so calling it never moves a training run's RNG)."""
    _check_labelled(data)
    device = torch.device(device)
    channels, resolution, _ = data.shape
    train_set, test_set = data.images("train"), data.images("test")
    log.info(f"training the {data.name} classifier for class metrics ({recipe.epochs} epochs on "
             f"{len(train_set)} images; once, then cached)")
    start = time.time()
    fork_devices = [device] if device.type == "cuda" else []
    deterministic = torch.are_deterministic_algorithms_enabled()
    # a run with deterministic=true may train it: its adaptive pooling has no deterministic CUDA
    # backward, and the run's own determinism does not depend on it (it is cached, its sha256 recorded)
    with contextlib.ExitStack() as restore, torch.random.fork_rng(devices=fork_devices):
        if deterministic:  # the call imports torch's compiler stack: only when there is something to undo
            torch.use_deterministic_algorithms(False)
            restore.callback(torch.use_deterministic_algorithms, True)
        torch.manual_seed(recipe.seed)
        model = SmallCNN(channels, resolution, int(data.num_classes)).to(device)
        # channels-last on a CPU: oneDNN's convolutions (backward most) run faster in it; the weights
        # are the same tensors
        layout = torch.channels_last if device.type == "cpu" else torch.contiguous_format
        model = model.to(memory_format=layout)
        opt = torch.optim.Adam(model.parameters(), lr=recipe.lr)
        loader = _loader(train_set, recipe.batch_size, shuffle=True, seed=recipe.seed)
        total = recipe.epochs * len(loader)
        # one-cycle: warm up then anneal to zero; reaches a good accuracy in fewer epochs than a constant lr
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe.lr, total_steps=total, pct_start=0.15)
        for _ in range(recipe.epochs):
            model.train()
            for x, y in loader:
                x, y = to_float(x.to(device)).contiguous(memory_format=layout), y.to(device)
                loss = F.cross_entropy(model(x)[1], y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
    # back to the layout a loaded classifier has, so a fresh and a cached one compute the same way
    model = model.to(memory_format=torch.contiguous_format)
    acc = accuracy(model, test_set, device)
    seconds = time.time() - start
    model = model.eval().requires_grad_(False)
    log.info(f"{data.name} classifier: test accuracy {acc:.4f} after {seconds:.0f} s")
    path = None
    sha = ""
    if cache_dir is not None:
        key = cache_key(data, recipe)
        path = cache_path(data, cache_dir, recipe, key)
        state = {"format": FORMAT, "key": json.dumps(key, sort_keys=True),
                 "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                 "channels": channels, "resolution": resolution, "num_classes": int(data.num_classes),
                 "accuracy": float(acc), "train_seconds": round(seconds, 1)}
        buf = io.BytesIO()
        torch_save(state, buf)  # with the CRC-32s _load_file checks
        blob = buf.getvalue()
        atomic_write(path, lambda fh: fh.write(blob))
        side = {k: v for k, v in state.items() if k != "state_dict"} | {"key": key, "weights": path.name}
        atomic_write(path.with_suffix(".json"), lambda fh: fh.write(json.dumps(side, indent=1).encode()))
        sha = hashlib.sha256(blob).hexdigest()
    else:
        buf = io.BytesIO()
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buf)
        sha = hashlib.sha256(buf.getvalue()).hexdigest()
    return Classifier(model, path, float(acc), sha)


def load_or_train_classifier(data, cache_dir: Union[str, Path], recipe: Recipe = Recipe(),
                             device: Union[str, torch.device] = "cpu") -> Classifier:
    """The cached classifier for this dataset's content, training it first if there is none
    (or if the cached file is unreadable)."""
    _check_labelled(data)
    device = torch.device(device)
    path = cache_path(data, cache_dir, recipe)
    with cache_lock(path.with_suffix(".lock"), f"the {data.name} classifier"):
        if path.is_file():
            try:
                state = _load_file(path)
                model = _model_from(state).to(device)
                return Classifier(model, path, float(state["accuracy"]), sha256_file(path))
            except Exception as exc:  # a truncated or foreign file: retrain rather than fail the run
                log.warning(f"cached classifier {path} is unusable ({str(exc).splitlines()[0][:120]}); retraining")
        return train_classifier(data, cache_dir, recipe, device)


# ---------------------------------------------------------------- torch-fidelity feature extractor
class ClassifierFeatureExtractor(FeatureExtractorBase):
    """SmallCNN as a torch-fidelity feature extractor.

    torch-fidelity feeds uint8 (N, 3, H, W); the classifier was trained on the dataset's own
    channels and resolution, so grayscale is recovered as the channel mean (exact for the
    repeated-gray images ganzoo produces) and other sizes are resized. Weights come from
    `feature_extractor_weights_path`: a ganzoo classifier file (path or file object)."""

    def __init__(self, name, features_list, feature_extractor_weights_path=None, **kwargs):
        super().__init__(name, features_list)
        if feature_extractor_weights_path is None:
            raise GanzooError(f"feature extractor {name} needs feature_extractor_weights_path= a ganzoo "
                              f"classifier file (ganzoo.metrics.classifier.load_or_train_classifier makes one)")
        self.net = _model_from(_load_file(feature_extractor_weights_path))
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: Tensor):
        if x.dtype != torch.uint8 or x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected uint8 images of shape (N, 3, H, W), got {x.dtype} {tuple(x.shape)}")
        x = x.float()
        if self.net.channels == 1:
            x = x.mean(1, keepdim=True)
        if x.shape[-1] != self.net.resolution or x.shape[-2] != self.net.resolution:
            x = F.interpolate(x, size=(self.net.resolution,) * 2, mode="bilinear", antialias=True,
                              align_corners=False)
        features, logits = self.net(to_float(x))
        out = {"features": features, "logits": logits}
        return tuple(out[name] for name in self.features_list)

    @staticmethod
    def get_provided_features_list():
        return "features", "logits"

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        return {"isc": "logits", "fid": "features", "kid": "features", "prc": "features"}[metric]

    @staticmethod
    def can_be_compiled():
        return False

    @staticmethod
    def get_dummy_input_for_compile():
        return torch.zeros(1, 3, 28, 28, dtype=torch.uint8)


if EXTRACTOR_NAME not in FEATURE_EXTRACTORS_REGISTRY:  # re-imports (tests, reloads) must not register twice
    register_feature_extractor(EXTRACTOR_NAME, ClassifierFeatureExtractor)


# ---------------------------------------------------------------- class coverage
def class_coverage(pred: Tensor, generator_index: Tensor, num_classes: int, num_generators: Optional[int] = None,
                   min_share: float = 0.1) -> Dict[str, object]:
    """Predicted-class statistics of generated samples.

    classes_covered: classes that receive at least `min_share` of the count a uniform generator
      would give them (min_share * n / num_classes) and at least one sample. ganzoo passes
      metrics.min_class_share (0.5): an imperfect classifier leaks predictions into confusable
      classes (on Fashion-MNIST, test accuracy 0.90, real test images of classes 0, 3 and 7 alone
      are predicted as 5 classes at share 0.1: shirt 4.3%, coat 1.1%). Read it with the classifier's
      accuracy (recorded in the protocol) and class_hist.
    class_kl: KL(q || uniform) of the predicted-class histogram q; 0 = balanced, log(K) = one class.
    class_hist: per generator index g, the count of each predicted class among g's samples.
    With several generators, Stackelberg GAN's balance on images, by the same share rule within each
    generator's own samples: classes_per_generator (mean over generators with samples; _max the most
    any one covers) and generators_per_class (mean over the classes some generator covers)."""
    pred = pred.long().cpu()
    generator_index = generator_index.long().cpu()
    n = len(pred)
    counts = torch.bincount(pred, minlength=num_classes).double()
    threshold = min_share * n / num_classes
    covered = int(((counts > 0) & (counts >= threshold)).sum())
    q = counts / max(n, 1)
    nz = q > 0
    kl = float((q[nz] * (q[nz] * num_classes).log()).sum()) if n else None
    g = int(num_generators) if num_generators else (int(generator_index.max()) + 1 if n else 1)
    joint = torch.bincount(generator_index * num_classes + pred, minlength=g * num_classes)
    table = joint[: g * num_classes].view(g, num_classes)
    out = {"classes_covered": covered, "class_kl": kl, "class_hist": table.tolist()}
    if g > 1:
        own = table.sum(1, keepdim=True)
        holds = (table > 0) & (table >= min_share * own / num_classes) & (own > 0)
        per_gen = holds.sum(1)[own.squeeze(1) > 0].double()
        per_class = holds.sum(0)[holds.any(0)].double()
        out.update(classes_per_generator=float(per_gen.mean()) if len(per_gen) else None,
                   classes_per_generator_max=int(per_gen.max()) if len(per_gen) else None,
                   generators_per_class=float(per_class.mean()) if len(per_class) else None)
    return out
