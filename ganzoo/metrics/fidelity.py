"""Image metrics: IS, FID, KID (and precision/recall) with torch-fidelity, plus the classifier metrics.

torch-fidelity supplies the feature extractors (created through its registry) and the
metric formulas (isc_features_to_metric, fid_features_to_statistics /
fid_statistics_to_metric, kid_features_to_metric, prc_features_to_metric), so the
numbers are torch-fidelity's. ganzoo drives the extraction itself instead of calling
`calculate_metrics`, because that lets one pass over the generated images feed every
extractor and the class histogram, keeps only features in memory (never 50k images),
and lets the reference cache be keyed by the data's content and the weights file's hash,
which torch-fidelity's own cache (keyed by a name) does not know about.

Reference cache, under `metrics.cache_dir` (default ~/.cache/ganzoo):

    reference/<dataset>-<split>-<extractor>-<digest>.pt
        {"format", "key" (JSON of what the digest hashes), "n", "features" (float32, n x d),
         "mu", "sigma" (torch-fidelity's FID statistics; absent for precision/recall)}

`digest` = sha256 of {dataset name, split, the split's content fingerprint, extractor
name, weights file sha256, feature layer, number of reference images and how they were
chosen}. Written atomically (temp file, fsync, rename); a second evaluation loads it and
runs no real image through the extractor. An unreadable or mismatched file is recomputed.

Weights: with `metrics.inception_weights` the file is used as given; otherwise torch-fidelity's
file is looked up in (or downloaded to) torch.hub's cache, as torch-fidelity itself would.
Either way ganzoo first loads it with `weights_only=True` and accepts only a plain
{str: Tensor} dict, then hands torch-fidelity (which unpickles with weights_only=False) the
already-verified tensors, never the file.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import socket
import tempfile
import time
import urllib.error
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch_fidelity
from torch import Tensor
from torch.utils.data import DataLoader, Subset
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3
from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.metric_isc import KEY_METRIC_ISC_MEAN, KEY_METRIC_ISC_STD, isc_features_to_metric
from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric
from torch_fidelity.metric_prc import KEY_METRIC_PRECISION, KEY_METRIC_RECALL, prc_features_to_metric
from torch_fidelity.utils import create_feature_extractor

from ..checkpoint import atomic_write, sha256_file, torch_save, verify
from ..data.pixels import to_uint8
from ..distributed import Shard
from ..errors import GanzooError
from ..rundir import cache_lock
from . import classifier as clf
from . import stacked
from .prdc import knn_radii, prdc
from .stacked import StackedModes

from .registry import finite_or_none

log = logging.getLogger("ganzoo")

FORMAT = 2  # 2: entries hold the reals' labels
INCEPTION = "inception-v3-compat"
INCEPTION_FILE = URL_INCEPTION_V3.rsplit("/", 1)[-1]   # weights-inception-2015-12-05-6726825d.pth
VGG16 = "vgg16"
VGG16_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"  # torchvision's VGG16_Weights.IMAGENET1K_V1
DEFAULT_WEIGHTS = "torch-fidelity default"
# torch-fidelity's defaults, recorded in the protocol so a score says how it was computed
ISC_SPLITS, KID_SUBSETS, PRC_NEIGHBORHOOD, RNG_SEED = 10, 100, 3, 2020
# a download that gets no answer within this many seconds per socket operation counts as "no network";
# urllib's default is to wait forever on a firewall that drops packets
NET_TIMEOUT_S = 15.0
# on a CPU, Inception's 299x299 activations take ~10 MB per image; chunking keeps a 250-image batch
# from needing gigabytes, at no cost in speed (the CPU is saturated either way)
CPU_CHUNK = 50
# the reference subset (metrics.num_real smaller than the split) is a fixed permutation of the split
SUBSET_SEED = 0
# torch-fidelity's default layers. FID on 2048 features costs one 2048x2048 non-symmetric eigendecomposition
# (torch-fidelity's formula) per evaluation, whatever the number of samples
INCEPTION_LAYERS = {"isc": "logits_unbiased", "fid": "2048", "kid": "2048"}


def inception_fix_hint() -> str:
    return (f"download {URL_INCEPTION_V3} on a machine with internet and pass "
            f"metrics.inception_weights=/path/to/{INCEPTION_FILE}, or set metrics.inception=false")


def _one_line(exc: BaseException, limit: int = 160) -> str:
    text = " ".join(str(exc).split())
    return (text[:limit] + "...") if len(text) > limit else (text or type(exc).__name__)


# ---------------------------------------------------------------- weights
def check_weights_file(path: Union[str, Path], key: str = "metrics.inception_weights",
                       hint: Optional[str] = None) -> Dict[str, Tensor]:
    """Load a weights file safely: weights_only=True, and only a non-empty {str: Tensor} dict is accepted.
    Raises GanzooError with one line naming the key and how to fix it."""
    hint = hint or inception_fix_hint()
    p = Path(path).expanduser()
    if not p.is_file():
        raise GanzooError(f"{key}={path}: no such file; {hint}")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickled objects, TorchScript archives, truncated files, plain garbage
        raise GanzooError(f"{key}={path}: not a plain tensor weights file, refused without unpickling it "
                          f"({_one_line(exc, 100)}); {hint}") from None
    if not (isinstance(state, dict) and state
            and all(isinstance(k, str) and isinstance(v, Tensor) for k, v in state.items())):
        raise GanzooError(f"{key}={path}: expected a state dict (str -> Tensor), got {type(state).__name__}; {hint}")
    return state


def keep_rng(device: torch.device):
    """Evaluation must not move the training run's RNG streams (exact resume compares them): module
    construction and DataLoader iteration both draw from the global generator otherwise."""
    return torch.random.fork_rng(devices=[device] if device.type == "cuda" else [])


@contextmanager
def _socket_timeout(seconds: float):
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)


def hub_weights(url: str) -> Path:
    """torch.hub's cached copy of `url` (where torch-fidelity and torchvision keep it), downloaded if missing.
    Network failures raise OSError (URLError, timeouts) within NET_TIMEOUT_S per socket operation."""
    dst = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]
    if not dst.is_file():
        dst.parent.mkdir(parents=True, exist_ok=True)
        log.info(f"downloading {url} to {dst}")
        with _socket_timeout(NET_TIMEOUT_S):
            # writes to a temp file and renames it, so an interrupted download leaves nothing behind
            torch.hub.download_url_to_file(url, str(dst), progress=False)
    return dst


@dataclass
class Extractor:
    """A torch-fidelity feature extractor and what identifies its weights."""
    name: str                    # torch-fidelity registry name
    module: torch.nn.Module      # a torch_fidelity FeatureExtractorBase
    weights: str                 # the file given, or "torch-fidelity default"
    sha256: str                  # of the weights file: part of the reference cache key
    layers: Dict[str, str] = field(default_factory=dict)  # metric -> feature layer

    def __call__(self, rgb_u8: Tensor, device: torch.device) -> Dict[str, Tensor]:
        chunks = [rgb_u8] if device.type != "cpu" else rgb_u8.split(CPU_CHUNK)
        outs: Dict[str, List[Tensor]] = {}
        for chunk in chunks:
            feats = self.module.convert_features_tuple_to_dict(self.module(chunk))
            for k, v in feats.items():
                outs.setdefault(k, []).append(v.float().cpu())
        return {k: torch.cat(v) for k, v in outs.items()}


def _build(name: str, layers: Dict[str, str], state: Dict[str, Tensor], device: torch.device, where: str,
           hint: str, weights: str, sha: str) -> Extractor:
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    try:
        with keep_rng(device):  # building a module draws its initial weights from the global RNG
            module = create_feature_extractor(name, sorted(set(layers.values())), cuda=False,
                                              feature_extractor_weights_path=buf, verbose=False)
    except (RuntimeError, KeyError, ValueError) as exc:  # load_state_dict: missing/unexpected keys, shapes
        raise GanzooError(f"{where}: the weights do not fit torch-fidelity's {name} ({_one_line(exc, 120)}); "
                          f"{hint}") from None
    return Extractor(name, module.to(device), weights, sha, dict(layers))


def load_inception(metrics_cfg, device: Union[str, torch.device] = "cpu") -> Extractor:
    """torch-fidelity's InceptionV3 (features '2048' for FID/KID, 'logits_unbiased' for IS), from
    metrics.inception_weights or torch-fidelity's download. Fails in seconds with a GanzooError."""
    device = torch.device(device)
    layers = dict(INCEPTION_LAYERS)
    hint = inception_fix_hint()
    if metrics_cfg.inception_weights:
        path = Path(metrics_cfg.inception_weights).expanduser()
        state = check_weights_file(path, "metrics.inception_weights", hint)
        weights, where = str(path), f"metrics.inception_weights={metrics_cfg.inception_weights}"
    else:
        try:
            path = hub_weights(URL_INCEPTION_V3)
        except (OSError, urllib.error.URLError) as exc:
            raise GanzooError(f"metrics.inception=true needs torch-fidelity's InceptionV3 weights and downloading "
                              f"them failed ({_one_line(exc, 100)}); {hint}") from None
        state = check_weights_file(path, "cached Inception weights", f"delete {path} and retry; or {hint}")
        weights, where = DEFAULT_WEIGHTS, str(path)
    return _build(INCEPTION, layers, state, device, where, hint, weights, sha256_file(path))


def load_vgg16(device: Union[str, torch.device] = "cpu") -> Extractor:
    """torch-fidelity's VGG16 for precision/recall, from torch.hub's cache (or torchvision's download)."""
    device = torch.device(device)
    target = Path(torch.hub.get_dir()) / "checkpoints" / VGG16_URL.rsplit("/", 1)[-1]
    hint = f"put {VGG16_URL} at {target}, or set metrics.prc=false"
    try:
        path = hub_weights(VGG16_URL)
    except (OSError, urllib.error.URLError) as exc:
        raise GanzooError(f"metrics.prc=true needs torchvision's VGG16 weights and downloading them failed "
                          f"({_one_line(exc, 100)}); {hint}") from None
    state = check_weights_file(path, "VGG16 weights", hint)
    return _build(VGG16, {"prc": "fc2_relu"}, state, device, str(path), hint, DEFAULT_WEIGHTS, sha256_file(path))


def check_cache_dir(metrics_cfg) -> Path:
    root = Path(metrics_cfg.cache_dir).expanduser()
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise GanzooError(f"metrics.cache_dir={metrics_cfg.cache_dir}: cannot write there ({_one_line(exc, 100)}); "
                          f"point metrics.cache_dir at a writable folder") from None
    return root


def preflight(metrics_cfg, device: Union[str, torch.device] = "cpu") -> Dict[str, Extractor]:
    """Load every pretrained extractor the config asks for, and check the cache folder is writable,
    without touching any data: a missing file, a bad file or no network fails here, in seconds,
    with one line saying how to fix it, instead of after training. Returns {"inception": ..., "prc": ...}."""
    out: Dict[str, Extractor] = {}
    if metrics_cfg.inception or metrics_cfg.prc or metrics_cfg.classifier:
        check_cache_dir(metrics_cfg)
    if metrics_cfg.inception:
        out["inception"] = load_inception(metrics_cfg, device)
    if metrics_cfg.prc:
        out["prc"] = load_vgg16(device)
    return out


# ---------------------------------------------------------------- conversions
def to_rgb(images_u8: Tensor) -> Tensor:
    """torch-fidelity's extractors take 3 channels: grayscale is repeated."""
    return images_u8.expand(-1, 3, -1, -1) if images_u8.shape[1] == 1 else images_u8


# ---------------------------------------------------------------- FID / KID / IS on features
def fid_from_features(fake: Tensor, real_stats: dict) -> float:
    return float(fid_statistics_to_metric(fid_features_to_statistics(fake), real_stats, False)[KEY_METRIC_FID])


def kid_from_features(fake: Tensor, real: Tensor, subset_size: int) -> Tuple[float, float]:
    out = kid_features_to_metric(fake, real, kid_subsets=KID_SUBSETS, kid_subset_size=subset_size,
                                 rng_seed=RNG_SEED, verbose=False)
    return float(out[KEY_METRIC_KID_MEAN]), float(out[KEY_METRIC_KID_STD])


# ---------------------------------------------------------------- reference features, cached
def reference_indices(n_total: int, n: Optional[int]) -> Tuple[Sequence[int], str]:
    """The reference images: the whole split, or a fixed seeded subset of it (nested: a smaller
    subset is part of a larger one), sorted so a folder-backed dataset is read in order."""
    if n is None or n >= n_total:
        return range(n_total), "all"
    perm = torch.randperm(n_total, generator=torch.Generator().manual_seed(SUBSET_SEED))
    return sorted(perm[:n].tolist()), f"randperm(seed={SUBSET_SEED})[:{n}]"


class ReferenceCache:
    """Features of the real images per (data content, extractor, weights, layer, subset), on disk."""

    def __init__(self, root: Union[str, Path]):
        self.root = Path(root).expanduser() / "reference"
        self.hits = self.misses = 0

    def path(self, key: dict, data_name: str, split: str, extractor: str) -> Path:
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        return self.root / f"{data_name}-{split}-{extractor}-{digest}.pt"

    def get(self, key: dict, path: Path) -> Optional[dict]:
        if not path.is_file():
            return None
        try:
            verify(path)  # every record's CRC-32: damaged feature bytes would give a wrong score, silently
            entry = torch.load(path, map_location="cpu", weights_only=True)
            if entry.get("format") == FORMAT and json.loads(entry["key"]) == key:
                return entry
            log.warning(f"reference cache {path} holds something else; recomputing")
        except Exception as exc:  # a damaged or foreign file: recomputing costs time, trusting it costs the score
            log.warning(f"reference cache {path} is damaged or unreadable ({_one_line(exc, 100)}); recomputing")
        return None

    def put(self, path: Path, entry: dict) -> None:
        atomic_write(path, lambda fh: torch_save(entry, fh))  # with the CRC-32s `get` checks


def _real_loader(data, split: str, indices, batch_size: int, workers: int) -> DataLoader:
    dataset = data.images(split)
    if not isinstance(indices, range) or len(indices) != len(dataset):
        dataset = Subset(dataset, list(indices))
    # an explicit generator: without one, each DataLoader iteration draws a seed from the global RNG
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                      generator=torch.Generator())


# ---------------------------------------------------------------- the entry point
class ImageMetrics:
    """Every image metric the config asks for, for the training loop and `ganzoo eval`.

        metrics = ImageMetrics(cfg.metrics, data, device)
        metrics.preflight()                      # before training: fails in seconds if weights are missing
        values = metrics(method.sample, seed)    # at each evaluation

    `sample(n, generator) -> (images in [-1, 1] (n, C, H, W), generator index (n,))` is called in
    batches of metrics.batch_size with a torch.Generator seeded by `seed` (on `device`), so an
    evaluation is reproducible and never moves the training RNG.

    Under several ranks (`shard`) every rank is called: each extracts the features of its own
    contiguous block of the batches (drawing every batch, so the seeded sequence is one process's),
    the features are gathered in batch order, and rank 0 scores them: the numbers one process gets.

    Keys: fid, is_mean, is_std, kid_mean, kid_std (metrics.inception); precision, recall
    (metrics.prc); cfid, ckid_mean, ckid_std, classes_covered, class_kl, class_hist
    (metrics.classifier on a labelled dataset); protocol (a dict: per family the extractor,
    weights, weights sha256, split, number of real and generated images and the metric settings).
    """

    def __init__(self, metrics_cfg, data, device: Union[str, torch.device] = "cpu", workers: int = 0,
                 recipe: clf.Recipe = clf.Recipe(), shard: Shard = Shard()):
        self.cfg = metrics_cfg
        self.shard = shard
        self.data = data
        self.device = torch.device(device)
        self.workers = workers
        self.recipe = recipe
        self.cache = ReferenceCache(metrics_cfg.cache_dir)
        # a stacked set's modes are named by its base set's classifier on each channel (metrics/stacked.py)
        self.stacked = bool(metrics_cfg.classifier) and getattr(data, "base", None) is not None
        self.use_classifier = bool(metrics_cfg.classifier) and int(getattr(data, "num_classes", 0) or 0) >= 2 \
            and not self.stacked
        self.extractors: Optional[Dict[str, Extractor]] = None
        self.classifier: Optional[clf.Classifier] = None
        self._split_info: Dict[str, Tuple[int, str]] = {}

    def split_info(self, split: str) -> Tuple[int, str]:
        """(size, content fingerprint) of a split, asked once: hashing a large split takes a while."""
        if split not in self._split_info:
            self._split_info[split] = (len(self.data.images(split)), self.data.fingerprint(split))
        return self._split_info[split]

    @property
    def enabled(self) -> bool:
        return bool(self.cfg.inception or self.cfg.prc or self.use_classifier or self.stacked)

    def preflight(self) -> "ImageMetrics":
        """Load the pretrained extractors (no data); raises GanzooError with a one-line fix."""
        if self.extractors is None:
            with keep_rng(self.device):
                self.extractors = preflight(self.cfg, self.device)
        return self

    def prepare(self) -> "ImageMetrics":
        """preflight + the class-metric classifier (trained once per dataset, a minute or two on a CPU).
        Under several ranks rank 0 trains and caches it first, and the others load it."""
        self.preflight()
        wanted = ("classifier" if self.use_classifier else "stacked" if self.stacked else None)
        if wanted and wanted not in self.extractors:
            for turn in (True, False) if self.shard.world > 1 else (self.shard.leader,):
                if turn == self.shard.leader:
                    with keep_rng(self.device):
                        self._prepare_classifier() if wanted == "classifier" else self._prepare_stacked()
                if self.shard.world > 1 and turn:
                    self.shard.barrier()
        return self

    def warm(self) -> None:
        """Every reference the evaluations will read, computed (or found in the cache) now: before
        training, so a long first computation happens while nothing waits on it mid-run."""
        if not self.enabled:
            return
        self.prepare()
        n_fake = self.cfg.samples(image=True)
        equal = self._prc_reals(n_fake)  # the k-NN scores' reference: as many reals as fakes
        for name, e in self.extractors.items():
            if name == "inception" or name == "classifier":  # FID's first: it is the one with statistics
                self._reference(e, e.layers["fid"], self.cfg.num_real, stats=True)
            knn = {"prc": ["prc"], "classifier": ["fid"], "stacked": ["modes", "features"],
                   "inception": ["fid"] if self.cfg.inception_prdc else []}
            for layer in knn.get(name, []):
                self._reference(e, e.layers[layer], equal, stats=False)

    def _prepare_stacked(self) -> None:
        base = self.data.base()
        self.classifier = clf.load_or_train_classifier(base, self.cfg.cache_dir, self.recipe, self.device)
        self.extractors["stacked"] = StackedModes(self.classifier, base.name, base.images("test"), self.device)

    def _prepare_classifier(self) -> None:
        whole = self.data.full() if getattr(self.data, "full", None) is not None else self.data
        self.classifier = clf.load_or_train_classifier(whole, self.cfg.cache_dir, self.recipe, self.device)
        module = create_feature_extractor(clf.EXTRACTOR_NAME, ["features", "logits"], cuda=False,
                                          feature_extractor_weights_path=str(self.classifier.path), verbose=False)
        self.extractors["classifier"] = Extractor(
            clf.EXTRACTOR_NAME, module.to(self.device), str(self.classifier.path), self.classifier.sha256,
            {"fid": "features", "kid": "features", "classes": "logits"})

    # -------------------------------------------------------------- reference
    def reference_key(self, ext: Extractor, layer: str, n: Optional[int]):
        """(cache key, cache file, indices) of the reference features for this extractor and layer."""
        split = self.cfg.reference_split
        n_total, fingerprint = self.split_info(split)
        indices, chosen = reference_indices(n_total, n)
        key = {"format": FORMAT, "dataset": self.data.name, "split": split,
               "fingerprint": fingerprint, "extractor": ext.name, "weights_sha256": ext.sha256,
               "layer": layer, "n": len(indices), "subset": chosen, "input": "uint8 rgb"}
        return key, self.cache.path(key, self.data.name, split, ext.name), indices

    def _reference(self, ext: Extractor, layer: str, n: Optional[int], stats: bool) -> dict:
        key, path, indices = self.reference_key(ext, layer, n)
        # jobs starting together: one computes, the others wait and load its file
        with cache_lock(path.with_suffix(".lock"), f"{ext.name} reference features"):
            entry = self.cache.get(key, path)
            if entry is None:
                self.cache.misses += 1
                return self._compute_reference(ext, layer, key, path, indices, stats)
        self.cache.hits += 1
        return entry

    def _compute_reference(self, ext: Extractor, layer: str, key: dict, path: Path, indices, stats: bool) -> dict:
        split = self.cfg.reference_split
        log.info(f"computing {ext.name} features of {self.data.name}/{split} ({len(indices)} images; "
                 f"once, cached in {path.parent})")
        start = time.time()
        parts, labels = [], []
        with torch.no_grad():
            for images, y in _real_loader(self.data, split, indices, self.cfg.batch_size, self.workers):
                parts.append(ext(to_rgb(images.to(self.device)), self.device)[layer])
                labels.append(torch.as_tensor(y, dtype=torch.long))
        features = torch.cat(parts)
        # the labels (-1: none) let a conditional run's intra-FID take each class's reals
        entry = {"format": FORMAT, "key": json.dumps(key, sort_keys=True), "n": len(features),
                 "features": features, "fingerprint": key["fingerprint"], "labels": torch.cat(labels)}
        if stats:
            st = fid_features_to_statistics(features)
            entry["mu"], entry["sigma"] = torch.from_numpy(st["mu"]), torch.from_numpy(st["sigma"])
        self.cache.put(path, entry)
        log.info(f"{ext.name} reference features: {len(features)} images in {time.time() - start:.0f} s")
        return entry

    # -------------------------------------------------------------- evaluation
    def _generate(self, sample_fn: Callable, seed: int, extractors: Dict[str, Extractor], classes: int = 0):
        """Features of n samples, their generator index, and in a conditional run (`classes`) the class each
        was asked for: 0, 1, ..., classes - 1 in turn, so every class gets n / classes samples."""
        n, bs = self.cfg.samples(image=True), int(self.cfg.batch_size)
        asked = torch.arange(n) % classes if classes else None
        gen = torch.Generator(device=self.device).manual_seed(int(seed))
        feats: Dict[str, Dict[str, List[Tensor]]] = {k: {} for k in extractors}
        index: List[Tensor] = []
        starts = list(range(0, n, bs))
        mine = set(self.shard.local_block(len(starts)))  # this rank's batches (all of them in one process)
        with torch.no_grad():
            for i, start in enumerate(starts):
                # every batch drawn: the generator's sequence
                if asked is None:
                    x, g = sample_fn(min(bs, n - start), gen)
                else:
                    x, g = sample_fn(min(bs, n - start), gen, y=asked[start:start + bs].to(self.device))
                if i not in mine:
                    continue
                if tuple(x.shape[1:]) != tuple(self.data.shape):
                    raise GanzooError(f"generated images have shape {tuple(x.shape[1:])} but {self.data.name} "
                                      f"images are {tuple(self.data.shape)}")
                rgb = to_rgb(to_uint8(x))
                for name, ext in extractors.items():
                    for layer, v in ext(rgb, self.device).items():
                        feats[name].setdefault(layer, []).append(v)
                index.append(g.detach().long().cpu())
        if self.shard.world > 1:  # every rank's features, in batch order (ranks hold contiguous blocks)
            parts = self.shard.gather_objects(({k: {layer: [t.cpu() for t in v] for layer, v in d.items()}
                                                for k, d in feats.items()}, index))
            feats = {k: {layer: [t for f, _ in parts for t in f[k][layer]] for layer in feats[k]} for k in feats}
            index = [t for _, i in parts for t in i]
        return {k: {layer: torch.cat(v) for layer, v in d.items()} for k, d in feats.items()}, torch.cat(index), asked

    def __call__(self, sample_fn: Callable, seed: int, num_generators: Optional[int] = None,
                 classes: int = 0) -> Dict[str, object]:
        if not self.enabled:
            return {}
        with keep_rng(self.device):
            return self._evaluate(sample_fn, seed, num_generators, classes)

    def _evaluate(self, sample_fn: Callable, seed: int, num_generators: Optional[int],
                  classes: int = 0) -> Dict[str, object]:
        """One pass over the generated images feeds every extractor; then each extractor's family
        turns its features into scores (registry.py names them) and a protocol record; a conditional
        run's class-aware scores follow."""
        self.prepare()
        fake, gen_index, asked = self._generate(sample_fn, seed, self.extractors, classes)
        if not self.shard.leader:
            return {}  # rank 0 scores (and computes or reads the reference features)
        out: Dict[str, object] = {}
        protocol: Dict[str, dict] = {}
        for name, e in self.extractors.items():
            scores, protocol[name] = FAMILIES[name](self, e, fake[name], gen_index, num_generators)
            out.update(scores)
            if asked is not None and name in ("classifier", "inception"):
                scores, extra = self._per_class(name, e, fake[name], asked)
                out.update(scores)
                protocol[name].update(extra)
        out = {k: finite_or_none(v) for k, v in out.items()}
        out["protocol"] = protocol
        return out

    def _protocol(self, e: Extractor, ref: dict, n_fake: int) -> dict:
        return {"extractor": e.name, "weights": e.weights, "weights_sha256": e.sha256,
                "split": self.cfg.reference_split, "reference_fingerprint": ref["fingerprint"],
                "num_real": int(ref["n"]), "num_fake": n_fake, "torch_fidelity": torch_fidelity.__version__}

    def _fid_kid(self, e: Extractor, feats: Dict[str, Tensor], n_fake: int, prefix: str):
        """FID and KID in this extractor's feature space, against the cached reference."""
        layer = e.layers["fid"]
        ref = self._reference(e, layer, self.cfg.num_real, stats=True)
        stats = {"mu": ref["mu"].numpy(), "sigma": ref["sigma"].numpy()}
        subset = min(int(self.cfg.kid_subset_size), n_fake, int(ref["n"]))
        kid_mean, kid_std = kid_from_features(feats[e.layers["kid"]], ref["features"], subset)
        scores = {f"{prefix}fid": fid_from_features(feats[layer], stats),
                  f"{prefix}kid_mean": kid_mean, f"{prefix}kid_std": kid_std}
        return scores, {**self._protocol(e, ref, n_fake), "layer": layer, "kid_subset_size": subset,
                        "kid_subsets": KID_SUBSETS, "rng_seed": RNG_SEED}

    def _inception(self, e: Extractor, feats, gen_index: Tensor, num_generators) -> Tuple[dict, dict]:
        """fid, kid_mean/std, is_mean/std."""
        n_fake = len(gen_index)
        scores, protocol = self._fid_kid(e, feats, n_fake, "")
        splits = min(ISC_SPLITS, n_fake)
        isc = isc_features_to_metric(feats[e.layers["isc"]], splits, True, RNG_SEED)
        scores["is_mean"], scores["is_std"] = float(isc[KEY_METRIC_ISC_MEAN]), float(isc[KEY_METRIC_ISC_STD])
        protocol["isc_splits"] = splits
        if self.cfg.inception_prdc:
            manifold, k = self._manifolds(e, e.layers["fid"], feats[e.layers["fid"]])
            scores.update({f"i{name}": value for name, value in manifold.items()})
            protocol.update(nearest_k=k, manifold_num_real=self._prc_reals(n_fake), manifold_layer=e.layers["fid"])
        return scores, protocol

    def _prc(self, e: Extractor, feats, gen_index: Tensor, num_generators) -> Tuple[dict, dict]:
        """precision, recall (torch-fidelity's), density, coverage (VGG16 features)."""
        n_fake = len(gen_index)
        layer = e.layers["prc"]
        ref = self._reference(e, layer, self._prc_reals(n_fake), stats=False)
        prc = prc_features_to_metric(feats[layer], ref["features"],
                                     prc_neighborhood=PRC_NEIGHBORHOOD, save_cpu_ram=True, verbose=False)
        scores = {"precision": float(prc[KEY_METRIC_PRECISION]), "recall": float(prc[KEY_METRIC_RECALL])}
        manifold, k = self._manifolds(e, layer, feats[layer])
        scores.update(density=manifold["density"], coverage=manifold["coverage"])
        return scores, {**self._protocol(e, ref, n_fake), "layer": layer, "neighborhood": PRC_NEIGHBORHOOD,
                        "nearest_k": k}

    def _manifolds(self, e: Extractor, layer: str, fake: Tensor) -> Tuple[dict, int]:
        """metrics/prdc.py's four scores against a reference as large as the fake set, its k-NN radii
        cached beside its features (computed once per reference and k)."""
        k = int(self.cfg.nearest_k)
        _, path, _ = self.reference_key(e, layer, self._prc_reals(len(fake)))
        ref = self._reference(e, layer, self._prc_reals(len(fake)), stats=False)
        radii = ref.get(f"radii_k{k}")
        if radii is None and len(ref["features"]) > k:
            radii = ref[f"radii_k{k}"] = knn_radii(ref["features"].to(self.device), k).cpu()
            self.cache.put(path, ref)
        return prdc(ref["features"].to(self.device), fake.to(self.device), k, radii), k

    def _prc_reals(self, n_fake: int) -> int:
        """precision/recall compares equal-sized sets (Kynkaanniemi et al.): the reference is cut to n_fake."""
        n_real = self.split_info(self.cfg.reference_split)[0] if self.cfg.num_real is None else int(self.cfg.num_real)
        return min(n_real, n_fake)

    def _classes(self, e: Extractor, feats, gen_index: Tensor, num_generators) -> Tuple[dict, dict]:
        """cfid, ckid_mean/std, classes_covered, class_kl, class_hist (ganzoo's classifier)."""
        scores, protocol = self._fid_kid(e, feats, len(gen_index), "c")
        pred = feats[e.layers["classes"]].argmax(1)
        share = float(self.cfg.min_class_share)
        scores.update(clf.class_coverage(pred, gen_index, int(self.data.num_classes), num_generators, share))
        manifold, k = self._manifolds(e, e.layers["fid"], feats[e.layers["fid"]])
        scores.update({f"c{name}": value for name, value in manifold.items()})
        return scores, {**protocol, "accuracy": round(self.classifier.accuracy, 4), "accuracy_split": "test",
                        "min_class_share": share, "nearest_k": k,
                        "manifold_num_real": self._prc_reals(len(gen_index))}


    def _per_class(self, name: str, e: Extractor, feats, asked: Tensor) -> Tuple[dict, dict]:
        """A conditional run's scores per asked-for class: the classifier's accuracy on them and intra-FID
        (each class's samples against that class's reals) in the classifier's features (intra_cfid), and
        in Inception's with metrics.intra_fid (Miyato and Koyama 2018's intra-FID)."""
        scores: Dict[str, object] = {}
        if name == "classifier":
            hit = (feats[e.layers["classes"]].argmax(1).cpu() == asked).float()
            per = [float(hit[asked == c].mean()) for c in range(int(asked.max()) + 1)]
            scores.update(class_acc=float(hit.mean()), class_acc_min=min(per), class_acc_per_class=per)
        elif not self.cfg.intra_fid:
            return {}, {}
        prefix = "intra_cfid" if name == "classifier" else "intra_fid"
        layer = e.layers["fid"]
        ref = self._reference(e, layer, self.cfg.num_real, stats=True)
        fids = []
        for c in range(int(asked.max()) + 1):
            real, fake = ref["features"][ref["labels"] == c], feats[layer][asked == c]
            if len(real) < 2 or len(fake) < 2:  # a class without two samples on either side has no covariance
                fids.append(None)
                continue
            st = fid_features_to_statistics(real)
            fids.append(fid_from_features(fake, {"mu": st["mu"], "sigma": st["sigma"]}))
        known = [f for f in fids if f is not None]
        scores[prefix] = sum(known) / len(known) if known else None
        scores[f"{prefix}_per_class"] = fids
        return scores, {f"{prefix}_classes": len(known), "asked": "classes 0..C-1 in turn"}

    def _stacked(self, e, feats, gen_index: Tensor, num_generators) -> Tuple[dict, dict]:
        """stacked_modes, stacked_kl, beside real images' (as many) and a perfect generator's expected count."""
        n = len(gen_index)
        real = self._reference(e, "modes", self._prc_reals(n), stats=False)
        fake, seen = stacked.mode_scores(feats["modes"]), stacked.mode_scores(real["features"])
        scores = {"stacked_modes": fake["modes"], "stacked_kl": fake["kl"], "stacked_modes_real": seen["modes"],
                  "stacked_kl_real": seen["kl"], "stacked_modes_expected": stacked.expected_modes(e.confusion, n)}
        manifold, k = self._manifolds(e, "features", feats["features"])  # the three channels' features
        scores.update({f"c{name}": value for name, value in manifold.items()})
        accuracy = float(e.confusion.diag().sum() / e.confusion.sum())
        return scores, {**self._protocol(e, real, n), "channel_accuracy": round(accuracy, 4),
                        "classifier_dataset": e.base_name, "modes": stacked.MODES, "nearest_k": k,
                        "manifold_features": "the classifier's features of the 3 channels, concatenated"}


# extractor -> the family of scores its features give (ImageMetrics' extractors are keyed the same)
FAMILIES = {"inception": ImageMetrics._inception, "prc": ImageMetrics._prc, "classifier": ImageMetrics._classes,
            "stacked": ImageMetrics._stacked}


def write_random_inception_weights(path) -> Path:
    """A weights file for torch-fidelity's InceptionV3 with RANDOM weights, for tests and benchmarks
    on machines without internet: it exercises the plumbing and the network's cost, never the numbers."""
    from unittest import mock
    import torch_fidelity.feature_extractor_inceptionv3 as fi
    with torch.random.fork_rng(devices=[]), \
            mock.patch.object(fi.FeatureExtractorInceptionV3, "load_state_dict", lambda self, *a, **k: None), \
            mock.patch.object(fi, "load_state_dict_from_url", lambda *a, **k: {}):
        torch.manual_seed(0)
        net = fi.FeatureExtractorInceptionV3(INCEPTION, ["2048"])
    torch.save(net.state_dict(), path)
    return Path(path)
