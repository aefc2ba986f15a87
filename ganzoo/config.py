"""Config schemas, registered with Hydra, and the checks that run before a job starts.

Each schema (a dataclass) holds its defaults; they are written nowhere else. The YAML
under conf/ only composes (train.yaml's defaults list) or sets what an option is (a
dataset's size, a preset's widths, a paper's setting), each on top of its schema, so Hydra
type-checks every key and value while composing. Choices are StrEnums defined beside what
they choose; each schema checks its own ranges in `check`, which never changes the config.
Nothing here imports torch: a typo costs about a second and leaves no files behind.
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field, fields, is_dataclass
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any, Dict, List, Optional, get_type_hints

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException, ValidationError

from .data.schemas import DATASET_SCHEMAS, TOY_DATASETS, ImageData, data_shape, is_image
from .errors import (ConfigError, check, check_writable, in_unit, non_negative, positive,
                     seed_in_range)
from .augment.schemas import AugmentConfig, AugmentKind
from .methods.schemas import METHOD_SCHEMAS
from .nets.schemas import ARCH_SCHEMAS, ConvArch, ImageMLPArch, MLPArch
from .rundir import check_run


class Device(StrEnum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class Amp(StrEnum):
    off = "off"
    bf16 = "bf16"
    fp16 = "fp16"      # with a GradScaler per player


class Loss(StrEnum):
    """Loss families (losses.py:LOSSES implements each)."""
    ns = "ns"
    minimax = "minimax"
    wgan = "wgan"
    hinge = "hinge"
    lsgan = "lsgan"


class Penalty(StrEnum):
    """Gradient penalties (losses.py): zero-centred on real, WGAN-GP, zero-centred on interpolates."""
    none = "none"
    r1 = "r1"
    gp = "gp"
    zgp = "zgp"


class Optimizer(StrEnum):
    """methods/common.py:make_optimizer builds each."""
    adam = "adam"
    rmsprop = "rmsprop"
    sgd = "sgd"


class Decay(StrEnum):
    none = "none"
    linear = "linear"    # to zero over `steps`


class Split(StrEnum):
    train = "train"
    test = "test"


# ---------------------------------------------------------------- labels
class FakeLabels(StrEnum):
    uniform = "uniform"   # every class equally often
    data = "data"         # the training set's class frequencies


class GCond(StrEnum):
    """How a wrapped G takes its class (nets/conditional.py)."""
    auto = "auto"         # cbn where G has batchnorm, concat where it has none
    cbn = "cbn"           # class-conditional batchnorm
    concat = "concat"     # one-hot class appended to z


@dataclass
class LabelConfig:
    """A conditional run's fake labels and G's conditioning (D is always a projection discriminator)."""
    fake: FakeLabels = FakeLabels.uniform
    g: GCond = GCond.auto


# ---------------------------------------------------------------- loss, optim
@dataclass
class ConsistencyConfig:
    """Consistency regularisation (Zhao et al., "Improved Consistency Regularization for GANs", AAAI 2021):
    bCR's weights on D's real and fake consistency under a flip-and-translate transform (the paper: 10
    and 10), zCR's on D's and G's latent consistency (the paper: 5 and 0.5, noise std 0.03). 0: off."""
    bcr_real: float = 0.0
    bcr_fake: float = 0.0
    zcr_dis: float = 0.0
    zcr_gen: float = 0.0
    zcr_sigma: float = 0.03

    def check(self) -> None:
        for key in ("bcr_real", "bcr_fake", "zcr_dis", "zcr_gen"):
            non_negative(f"loss.consistency.{key}", getattr(self, key))
        positive("loss.consistency.zcr_sigma", self.zcr_sigma)

    def bcr(self) -> bool:
        return self.bcr_real > 0 or self.bcr_fake > 0

    def zcr(self) -> bool:
        return self.zcr_dis > 0 or self.zcr_gen > 0


@dataclass
class LossConfig:
    name: Loss = Loss.ns
    penalty: Penalty = Penalty.none
    k: float = 10.0       # penalty weight
    consistency: ConsistencyConfig = field(default_factory=ConsistencyConfig)
    # LeCam regularisation (Tseng et al., CVPR 2021): its weight (0: off) and its anchors' EMA decay
    lecam: float = 0.0
    lecam_decay: float = 0.99

    def check(self) -> None:
        non_negative("loss.k (penalty weight)", self.k)
        self.consistency.check()
        non_negative("loss.lecam", self.lecam)
        in_unit("loss.lecam_decay", self.lecam_decay, closed=False)


@dataclass
class OptimizerConfig:
    name: Optimizer = Optimizer.adam
    lr: float = 2e-4
    betas: List[float] = field(default_factory=lambda: [0.5, 0.999])   # Adam
    alpha: float = 0.99                                                # RMSprop smoothing
    momentum: float = 0.0                                              # SGD (and RMSprop's own)
    eps: float = 1e-8
    weight_decay: float = 0.0

    def check(self, where: str) -> None:
        positive(f"{where}.lr", self.lr)
        check(len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas),
              f"{where}.betas must be two numbers in [0, 1), got {list(self.betas)}")
        in_unit(f"{where}.alpha (RMSprop smoothing)", self.alpha, closed=False)
        check(0 <= self.momentum < 1, f"{where}.momentum must be in [0, 1), got {self.momentum}")
        positive(f"{where}.eps", self.eps)
        non_negative(f"{where}.weight_decay", self.weight_decay)


@dataclass
class OptimConfig:
    g: OptimizerConfig = field(default_factory=OptimizerConfig)
    d: OptimizerConfig = field(default_factory=OptimizerConfig)
    decay: Decay = Decay.none

    def check(self) -> None:
        self.g.check("optim.g")
        self.d.check("optim.d")


@dataclass
class EMAConfig:
    enabled: bool = False
    decay: float = 0.999
    start: int = 0        # copy G's weights until this iteration, then average

    def check(self) -> None:
        check(0 < self.decay < 1, f"ema.decay must be in (0, 1), got {self.decay}")
        non_negative("ema.start", self.start)


@dataclass
class WatchdogConfig:
    """Divergence checks, at every log step and before every checkpoint. A non-finite loss or
    parameter always stops the run; these bound losses that explode without turning NaN."""
    max_loss: Optional[float] = None      # stop when |a logged loss| exceeds it (e.g. 1e6); null: off

    def check(self) -> None:
        if self.max_loss is not None:
            positive("watchdog.max_loss", self.max_loss)


@dataclass
class MetricsConfig:
    num_samples: Optional[int] = None     # null = 2,500 for 2-D data, 10,000 for images (50,000 for paper numbers)
    # a sample is high quality when it lies within hq_std standard deviations of its nearest mode
    hq_std: float = 3.0
    # a mode counts as covered when at least this many of the evaluation's samples are high-quality
    # samples of it (PacGAN's rule: 20 of 2,500)
    min_mode_count: int = 20
    # images
    # a class counts as generated when it takes at least this share of the predictions a uniform
    # generator would give it (a real classifier confuses classes, so a share, not a count)
    min_class_share: float = 0.5
    inception: bool = True                # IS, FID, KID with torch-fidelity's Inception
    inception_weights: Optional[str] = None  # a local weights file, for machines without internet
    prc: bool = False                     # precision/recall (needs torch-fidelity's VGG16 weights)
    nearest_k: int = 5                    # k of density/coverage and the classifier's precision/recall (Naeem et al.)
    kid_subset_size: int = 1000
    reference_split: Split = Split.train
    num_real: Optional[int] = None        # null = the whole reference split
    classifier: bool = True               # classifier FID/KID and class coverage on labelled datasets
    # a conditional run: intra-FID in Inception's features too (one FID per class: costly at 2048 features)
    intra_fid: bool = False
    # precision, recall, density, coverage in Inception's pool features too (iprecision, ...: StudioGAN's
    # space for them); a reference of as many reals as samples, its features and radii cached
    inception_prdc: bool = False
    cache_dir: str = "~/.cache/ganzoo"    # reference statistics and trained classifiers
    batch_size: int = 250
    best: Optional[str] = None            # the metric that picks ckpt/best.pt; null = fid, else cfid

    def samples(self, image: bool) -> int:
        """How many samples an evaluation draws."""
        if self.num_samples is not None:
            return self.num_samples
        return 10_000 if image else 2_500

    def check(self) -> None:
        # null is the documented default for both (the data's usual count, the whole split); a number
        # counts samples
        check(self.num_samples is None or self.num_samples > 0,
              f"metrics.num_samples must be > 0 (or null: 2,500 for 2-D data, 10,000 for images), "
              f"got {self.num_samples}")
        check(self.num_real is None or self.num_real > 0,
              f"metrics.num_real must be > 0 (or null: the whole reference split), got {self.num_real}")
        positive("metrics.hq_std", self.hq_std)
        positive("metrics.kid_subset_size", self.kid_subset_size)
        positive("metrics.batch_size", self.batch_size)
        in_unit("metrics.min_class_share", self.min_class_share)
        check(self.min_mode_count >= 1, f"metrics.min_mode_count must be >= 1, got {self.min_mode_count}")
        check(self.nearest_k >= 1, f"metrics.nearest_k must be >= 1, got {self.nearest_k}")
        if self.best is not None:
            _check_metric("metrics.best", self.best)


@dataclass
class PaperInfo:
    """What an experiment config reproduces, so a report can set the paper's numbers beside ours."""
    source: str = ""                  # paper, table or figure, setting
    reports: Dict[str, float] = field(default_factory=dict)  # ganzoo metric name -> the paper's number


@dataclass
class CudnnConfig:
    benchmark: bool = True


@dataclass
class TrainConfig:
    seed: int = 0
    device: Device = Device.auto
    steps: int = 2000                     # generator iterations
    batch_size: int = 256
    n_dis: int = 1                        # D steps per G step
    # G steps per iteration, after the D steps (PacGAN's Stacked MNIST runs step G twice)
    n_gen: int = 1
    eval_every: int = 1000                # 0 = only at the end
    ckpt_every: int = 1000                # 0 = only at the end
    log_every: int = 50                   # TensorBoard scalars
    # scatter / grid pictures; 0 = only at the end; null = none at all (numbers only: a large sweep, a test)
    sample_every: Optional[int] = 1000
    # a run folder to continue in place; auto: continue this run's own folder when it holds a
    # checkpoint and is not done (what a requeued cluster job needs), skip it when done, else start
    resume: Optional[str] = None
    # the chosen option of each group (conf/train.yaml's defaults list picks them)
    dataset: Any = None
    arch: Any = None
    loss: LossConfig = field(default_factory=LossConfig)
    method: Any = None
    optim: OptimConfig = field(default_factory=OptimConfig)
    ema: EMAConfig = field(default_factory=EMAConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    watchdog: WatchdogConfig = field(default_factory=WatchdogConfig)
    amp: Amp = Amp.off                    # CUDA only; fp16 uses a GradScaler
    channels_last: bool = False           # CUDA memory format for conv nets
    cudnn: CudnnConfig = field(default_factory=CudnnConfig)
    compile: bool = False                 # torch.compile the nets (not a D whose penalty needs double backward)
    deterministic: bool = False           # deterministic kernels, so exact resume holds on CUDA too; slower
    # torch's CPU threads; null: torch's default (one per core, or OMP_NUM_THREADS). A seed's result is
    # bit-for-bit the same on one machine at one thread count; <run>/environment.json records the count
    threads: Optional[int] = None
    tf32: bool = True                     # CUDA: TF32 matmuls and convolutions
    # several ranks (torchrun): batchnorm statistics over the global batch (torch's SyncBatchNorm, CUDA only);
    # false: each rank normalises its own rows (not the same training as one process)
    sync_bn: bool = True
    # n > 0: image datasets are replaced by n random images of their shape and classes, so a smoke run
    # exercises an experiment's nets, method and loop without its files (2-D data is unaffected)
    synthetic_images: int = 0
    picture_images: int = 64              # image data: samples per picture, in rows of 8 (several generators: a row each)
    # a metric's name: the job returns its final value (the number an optimising sweeper, e.g.
    # hydra/sweeper=optuna, maximises or minimises; conf/hparams_search/)
    objective: Optional[str] = None
    paper: PaperInfo = field(default_factory=PaperInfo)
    # true: G(z, y) and D(x, y) with the dataset's class labels (a 2-D mixture's: the mode index);
    # fake labels come from the seeded noise stream (labels.fake)
    conditional: bool = False
    labels: LabelConfig = field(default_factory=LabelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)  # what D sees (augment/schemas.py)

    def num_classes(self) -> int:
        """The classes G and D are conditioned on: 0 in an unconditional run."""
        return dataset_classes(self.dataset) if self.conditional else 0

    def check_world(self, world: int) -> None:
        """Under `world` ranks (torchrun, a SLURM job of several tasks) every batch the method draws
        splits into equal shares, so each rank's means average to one process's."""
        if world == 1:
            return
        check(not self.loss.consistency.bcr() or self.method.name in AUGMENT_RANKS,
              f"loss.consistency.bcr_* under {world} ranks: {self.method.name} scores several blocks' shares in one "
              f"D call, and bCR's transform draw would not be one process's; run it in one process")
        check(self.augment.name == "none" or self.method.name in AUGMENT_RANKS,
              f"augment={self.augment.name} under {world} ranks: {self.method.name} scores several blocks' "
              f"shares in one D call, and the augmentation's draw would not be one process's; run it in one "
              f"process, or with augment=none (methods that can: {', '.join(AUGMENT_RANKS)})")
        for what, count in self.method.shares(self).items():
            check(count == int(count) and int(count) % world == 0,
                  f"{what} = {count:g} does not split equally over {world} ranks; pick values that divide "
                  f"by {world} (batch_size stays the global batch under torchrun)")

    def check(self) -> None:
        """Value checks the types cannot express; each raises one line naming the key."""
        positive("steps", self.steps)
        positive("batch_size", self.batch_size)
        seed_in_range("seed", self.seed)
        check(self.n_dis >= 1, f"n_dis must be >= 1, got {self.n_dis}")
        check(self.n_gen >= 1, f"n_gen must be >= 1, got {self.n_gen}")
        for key, zero in (("eval_every", "0: only at the end"), ("ckpt_every", "0: only at the end"),
                          ("log_every", "0 turns it off"), ("sample_every", "0: only at the end; null: none")):
            if getattr(self, key) is not None:
                non_negative(f"{key} ({zero})", getattr(self, key))
        non_negative("synthetic_images (0 turns it off)", self.synthetic_images)
        positive("picture_images", self.picture_images)
        if self.threads is not None:
            positive("threads", self.threads)
        image = is_image(self.dataset)
        check(self.synthetic_images == 0 or self.synthetic_images >= self.batch_size or not image,
              f"synthetic_images={self.synthetic_images} must be 0 or at least batch_size={self.batch_size}")
        for part in (self.loss, self.optim, self.ema, self.metrics, self.watchdog, self.dataset):
            part.check()
        if self.objective is not None:
            _check_metric("objective", self.objective)
        if isinstance(self.arch, MLPArch):
            check(not image, f"arch={self.arch.name} is a 2-D net but dataset {self.dataset.name} holds images: "
                             f"pick an image arch, e.g. arch=dcgan (ganzoo train --help lists them)")
            self._check_reach()
        else:
            check(image, f"arch={self.arch.name} is an image net but dataset {self.dataset.name} is 2-D: "
                         f"use arch=mlp or a *_toy preset")
        self.arch.check(data_shape(self.dataset))
        if self.conditional:
            self._check_conditional()
        self.augment.check()
        self._check_regularisers(image)
        check(self.augment.name == "none" or image,
              f"augment={self.augment.name} transforms images and dataset {self.dataset.name} is 2-D: use augment=none")
        self.method.check(self)

    def _check_regularisers(self, image: bool) -> None:
        c, name = self.loss.consistency, self.method.name
        check(not c.bcr() or image, "loss.consistency.bcr_* flips and translates images; the data are 2-D")
        check(not (c.bcr() or self.loss.lecam > 0) or name != "microbatch",
              "loss.consistency.bcr_* and loss.lecam are terms of the baseline's D loss, and method=microbatch "
              "forms its K discriminators' losses its own way: use augment= with microbatch, or another method")
        check(not c.zcr() or name in ("gan", "aw"),
              f"loss.consistency.zcr_* perturbs the z of the baseline's D and G batches; method={name} makes its "
              f"batches its own way: use it with method=gan or method=aw")

    def _check_conditional(self) -> None:
        name = self.dataset.name
        check(dataset_classes(self.dataset) > 0,
              f"conditional=true needs class labels and dataset {name} has none"
              + (" (dataset.num_classes=0; image_folder: set it to the number of class sub-folders)"
                 if is_image(self.dataset) else " (ring and grid label each point by its mode)"))
        if isinstance(self.arch, MLPArch):
            check(self.arch.d_out == "identity",
                  "conditional=true adds the projection term to D's logit, which arch.d_out=softplus would "
                  "not be: use arch.d_out=identity")

    def _check_reach(self) -> None:
        """A tanh generator cannot reach data outside [-1, 1]: say so now, not after training."""
        reach = self.dataset.reach()
        if self.arch.g.out == "tanh" and reach is not None and reach > 1:
            raise ConfigError(f"arch.g.out=tanh keeps samples in [-1, 1] but dataset {self.dataset.name} reaches "
                              f"{reach:.2f}; scale the data (e.g. dataset.radius=0.8) or set arch.g.out=identity")


# under several ranks these methods hand D each batch as this rank's contiguous share (augment/pipeline.py)
AUGMENT_RANKS = ("gan", "aw", "sgan")


def dataset_classes(d) -> int:
    """A dataset's classes: an image set's num_classes, a ring's or grid's modes, 0 for the others."""
    if is_image(d):
        return d.num_classes
    if d.name == "ring":
        return d.modes
    if d.name == "grid":
        return d.size * d.size
    return 0


@dataclass
class SampleConfig:
    run: Optional[str] = None
    n: int = 2500
    out: str = "samples.npz"
    seed: int = 0
    ckpt: str = "last"
    device: Device = Device.auto
    # a conditional run's class to draw (also written class=3); null: classes 0, 1, ... in turn (a
    # picture: one row per class)
    label: Optional[int] = None

    def check(self) -> None:
        if self.label is not None:
            non_negative("class (label)", self.label)
        check(Path(self.out).suffix in (".npz", ".png"),
              f"out={self.out}: the file must end in .npz (arrays) or .png (a picture)")
        check(self.n >= 1, f"n (samples to draw) must be >= 1, got {self.n}")
        seed_in_range("seed", self.seed)
        _check_ckpt(self.ckpt)

    def ready(self) -> None:
        """What sampling needs of the files: the run's checkpoint, a folder `out` can be written in."""
        check_run(self.run, self.ckpt)
        check_writable("out", Path(self.out).expanduser().absolute().parent)


@dataclass
class EvalConfig:
    run: Optional[str] = None
    ckpt: str = "last"
    seed: Optional[int] = None  # None: the run's own seed, which reproduces its final evaluation
    device: Device = Device.auto

    def check(self) -> None:
        seed_in_range("seed", self.seed)
        _check_ckpt(self.ckpt)

    def ready(self) -> None:
        """The run's checkpoint, and its folder writable (eval appends to its metrics.jsonl)."""
        check_run(self.run, self.ckpt)
        check_writable("run", self.run)


@dataclass
class ClassifierCacheConfig:
    cache_dir: str = "~/.cache/ganzoo"


@dataclass
class ClassifierConfig:
    """The classifier's recipe (epochs, batch size) is fixed in metrics/classifier.py:Recipe, part of
    its cache key, so no count here can be out of range."""
    dataset: Any = None
    # an image dataset's config picks a net, an optimiser and a method for training runs; unused here
    arch: Any = None
    optim: Any = None
    method: Any = None
    device: Device = Device.auto
    metrics: ClassifierCacheConfig = field(default_factory=ClassifierCacheConfig)

    def ready(self) -> None:
        """The dataset's files, and a cache folder the trained classifier can be written to."""
        from .data.files import check_files
        check_files(self.dataset)
        check_writable("metrics.cache_dir", self.metrics.cache_dir)


def _check_ckpt(name: str) -> None:
    """ckpt= names a file in the run's ckpt/ folder (last, best): a name, not a path."""
    check(bool(name) and "/" not in name and "\\" not in name and name not in (".", ".."),
          f"ckpt={name}: name a checkpoint of the run's ckpt/ folder (last or best), not a path")


def _check_metric(where: str, name: str) -> None:
    """A metric of the registry (a part's score, "local1/<metric>", by its metric)."""
    from .metrics.registry import METRICS
    base = name.rpartition("/")[2]
    close = difflib.get_close_matches(base, list(METRICS), n=1) or [m for m in METRICS if m.startswith(base)][:1]
    hint = f" did you mean {close[0]!r}?" if close else ""
    check(base in METRICS, f"{where}: unknown metric {name!r};{hint} known: {', '.join(METRICS)}")


def register() -> None:
    """Every schema into Hydra's ConfigStore: the options that are a schema's defaults as they
    are (method=fargan, loss=hinge, dataset=ring, arch=mlp), and under schema/ the bases the YAML
    options extend (an image dataset, a conv or image-MLP preset)."""
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    cs.store(name="sample_schema", node=SampleConfig)
    cs.store(name="eval_schema", node=EvalConfig)
    cs.store(name="classifier_schema", node=ClassifierConfig)
    for name, schema in METHOD_SCHEMAS.items():
        # as plain values (the schema's defaults): typed while composing, an experiment's knob
        # (method: {N: 5}) would fail before `~method.N` could drop it for a baseline run;
        # load_train_config checks the node against the schema right after composing
        cs.store(group="method", name=name, node=to_dict(schema()))
    for name in Loss:
        cs.store(group="loss", name=name.value,
                 node=LossConfig(name=name, penalty=Penalty.gp if name == Loss.wgan else Penalty.none))
    # sgd: plain SGD at the rate of Thanh-Tung et al.'s released toy code (lr 3e-3, no momentum), which
    # FARGAN's 2-D experiments take their nets and rate from
    for name, lr in ((Optimizer.adam, 2e-4), (Optimizer.rmsprop, 1e-4), (Optimizer.sgd, 3e-3)):
        player = lambda: OptimizerConfig(name=name, lr=lr)  # noqa: E731
        cs.store(group="optim", name=name.value, node=OptimConfig(g=player(), d=player()))
    for kind in AugmentKind:
        cs.store(group="augment", name=kind.value, node=AugmentConfig(name=kind))
    for name, schema in TOY_DATASETS.items():
        cs.store(group="dataset", name=name, node=schema)
    cs.store(group="schema/dataset", name="image", node=ImageData)
    cs.store(group="arch", name="mlp", node=MLPArch)
    cs.store(group="schema/arch", name="conv", node=ConvArch)
    cs.store(group="schema/arch", name="image_mlp", node=ImageMLPArch)



def _typed(schema, node, where: str):
    """Merge a composed node into its schema; unknown keys and wrong types raise ConfigError."""
    base = OmegaConf.structured(schema)
    try:
        # a plain copy: a typed node keeps keys that `+key=` forced into it, a plain one cannot
        plain = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node
        merged = OmegaConf.merge(base, plain)
        return OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        raise ConfigError(describe_omegaconf_error(exc, where, base)) from None


def _field_type(exc: OmegaConfBaseException) -> Any:
    """The schema's type of the key an error is about (None where it is not a dataclass field)."""
    owner, key = getattr(exc, "object_type", None), str(getattr(exc, "key", "") or "")
    if not is_dataclass(owner):
        return None
    try:
        return get_type_hints(owner).get(key)
    except Exception:  # a hint that does not resolve
        return None


def describe_omegaconf_error(exc: OmegaConfBaseException, where: str, node: Any = None) -> str:
    key = getattr(exc, "full_key", None) or getattr(exc, "key", None) or ""
    full = ".".join(p for p in (where, str(key)) if p)
    msg = str(getattr(exc, "msg", None) or exc).splitlines()[0].strip()
    if isinstance(exc, (ConfigAttributeError, ConfigKeyError)):  # a key no schema has
        last = str(key).split(".")[-1]
        elsewhere = _anywhere(node, last)  # the same name deeper (lr -> optim.g.lr) wins
        owners = [m for m, schema in METHOD_SCHEMAS.items() if last in {f.name for f in fields(schema)}]
        if not elsewhere and owners and not full.startswith("method."):  # players= -> method.players
            return (f"unknown config key '{full}'; did you mean 'method.{last}'? (a key of "
                    f"{', '.join('method=' + m for m in owners)})")
        hint = None if elsewhere else _closest(node, str(key))
        if hint:
            return f"unknown config key '{full}'; did you mean '{hint}'?"
        method = None if node is None else OmegaConf.select(node, "name" if where == "method" else "method.name",
                                                            default=None)
        if full.startswith("method.") and method:  # an experiment pinned a knob the chosen method lacks
            knob = full[7:].split(".")[0]
            owners = [m for m, schema in METHOD_SCHEMAS.items() if knob in {f.name for f in fields(schema)}
                      and m != method]
            other = f" ({' and '.join('method=' + m for m in owners)} {'has' if len(owners) == 1 else 'have'} " \
                    f"it: add {'method=' + owners[0]})" if owners else ""
            return (f"unknown config key '{full}': method={method} has no '{knob}'{other}; if an experiment= "
                    f"config set it, drop it with '~{full}'")
        if elsewhere:
            return f"unknown config key '{full}'; did you mean {' or '.join(repr(k) for k in elsewhere)}?"
        return f"unknown config key '{full}'"
    value = getattr(exc, "value", None)
    kind = _field_type(exc)
    if isinstance(kind, type) and issubclass(kind, Enum):  # a choice: the enum beside the code lists them
        return f"{full}: {value!r} is not allowed; choose one of: {', '.join(str(e.value) for e in kind)}"
    if isinstance(exc, ValidationError):
        return f"{full}: {value!r} has the wrong type ({msg})"
    return f"{full}: {msg}"


def _closest(node: Any, key: str) -> Optional[str]:
    if node is None or not key:
        return None
    parts = key.split(".")
    parent = node
    for p in parts[:-1]:
        try:
            parent = parent[p]
        except Exception:
            return None
    try:
        keys = [str(k) for k in parent.keys()]
    except Exception:
        return None
    match = difflib.get_close_matches(parts[-1], keys, n=1)
    return ".".join(parts[:-1] + match) if match else None


def _anywhere(node: Any, name: str, prefix: str = "") -> List[str]:
    """Every key of the tree whose last part is `name` (`lr` -> optim.g.lr, optim.d.lr)."""
    found: List[str] = []
    try:
        keys = [str(k) for k in node.keys()]
    except Exception:
        return found
    for k in keys:
        full = f"{prefix}{k}"
        if k == name and full != name:
            found.append(full)
        try:
            child = node[k]
        except Exception:
            continue
        if isinstance(child, DictConfig):
            found += _anywhere(child, name, full + ".")
    return found[:4]


def _without(raw, keys) -> DictConfig:
    raw = OmegaConf.create(raw) if not isinstance(raw, DictConfig) else raw
    return OmegaConf.masked_copy(raw, [k for k in raw.keys() if k not in keys])


def _node_schema(group: str, node, table: dict, key: str):
    """The schema of a group's node: its own when Hydra composed it from one, else (a saved
    config, a plain dict) the one its `key` names."""
    if isinstance(node, DictConfig) and OmegaConf.get_type(node) not in (dict, None):
        return OmegaConf.get_type(node)
    if not isinstance(node, (dict, DictConfig)) or key not in node:
        raise ConfigError(f"{group}: missing '{key}' (one of: {', '.join(table)})")
    if node[key] not in table:
        raise ConfigError(f"{group}.{key}: unknown value {node[key]!r}; allowed: {', '.join(table)}")
    return table[node[key]]


# keys older versions wrote that no schema has any more (an older run's saved config still loads)
RETIRED = {"optim": ("name",), "metrics": ("min_mode_share",)}
# method keys added since v1 whose default changed what the method computes: a run saved without them
# loads with the value that reproduces what it computed
V1_METHOD_KEYS = {"sgan": {"opponent": "live"}}


def load_train_config(cfg: DictConfig | dict, saved: bool = False) -> TrainConfig:
    """Composed Hydra config (or a run's saved one, `saved`) -> checked TrainConfig; one-line
    ConfigError otherwise."""
    raw = _without(cfg, ("hydra",)) if saved or not isinstance(cfg, DictConfig) else cfg
    if saved:
        for group, keys in RETIRED.items():
            if group in raw:
                raw[group] = _without(raw[group], keys)
        method = raw.get("method")
        if isinstance(method, DictConfig):
            for key, value in V1_METHOD_KEYS.get(method.get("name"), {}).items():
                if key not in method:
                    method[key] = value
    schemas = {"dataset": _node_schema("dataset", raw.dataset, DATASET_SCHEMAS, "name"),
               "arch": _node_schema("arch", raw.arch, ARCH_SCHEMAS, "type"),
               "method": _node_schema("method", raw.method, METHOD_SCHEMAS, "name")}
    top = _as_composed(TrainConfig, raw, skip=(*schemas, "hydra"))
    if top is None:
        top = _typed(TrainConfig, _without(raw, (*schemas, "hydra")), "")
    for group, schema in schemas.items():
        setattr(top, group, _as_composed(schema, raw[group]) or _typed(schema, raw[group], group))
    _check_finite(to_dict(top))
    top.check()
    return top


def _as_composed(schema, node, skip: tuple = ()) -> Any:
    """`node` as a `schema` object when Hydra already merged it into that schema (so every value was
    checked then): OmegaConf's own conversion, without _typed's second merge, which dominates the checks
    of a sweep's every job. None (_typed then checks it and says what is wrong) for a plain node, one
    holding a key the schema lacks (`+key=`, which the conversion would keep) or a value that does not
    resolve. `skip`: keys left to the caller (None in the object)."""
    if not isinstance(node, DictConfig) or OmegaConf.get_type(node) is not schema or not _only_known(node, skip):
        return None
    names = [f.name for f in fields(schema) if f.name not in skip]
    try:
        values = {name: OmegaConf.to_object(node[name]) if isinstance(node[name], (DictConfig, ListConfig))
                  else node[name] for name in names}
    except OmegaConfBaseException:  # a missing value (???) or one that does not resolve
        return None
    return schema(**values, **{name: None for name in skip if name in {f.name for f in fields(schema)}})


def _only_known(node: DictConfig, skip: tuple = ()) -> bool:
    """No key outside its schema, at any depth of the typed nodes (skipped keys aside)."""
    names = {f.name for f in fields(OmegaConf.get_type(node))}
    for key in node.keys():
        if key in skip:
            continue
        if key not in names:
            return False
        child = node._get_node(key)
        if isinstance(child, DictConfig) and is_dataclass(OmegaConf.get_type(child)) and not _only_known(child):
            return False
    return True


def compose_config(config_name: str, overrides: List[str], return_hydra_config: bool = False) -> DictConfig:
    """Hydra's compose (inside an initialized Hydra context), its errors as one-line ConfigErrors."""
    from hydra import compose
    try:
        return compose(config_name, overrides=list(overrides), return_hydra_config=return_hydra_config)
    except Exception as exc:
        raise ConfigError(compose_error(exc, config_name, overrides)) from None


def compose_error(exc: Exception, config_name: str, overrides: List[str]) -> str:
    """A composition error in one line, with the closest name for a typo."""
    from hydra.errors import MissingConfigException
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(exc, MissingConfigException) and exc.options is not None:
        missing = (exc.missing_cfg_file or "?")
        group, _, name = missing.rpartition("/")
        import difflib
        close = difflib.get_close_matches(name, exc.options, n=1, cutoff=0.7)
        hint = f"did you mean {group}={close[0]}? " if close else ""
        return f"{group}={name}: no such option; {hint}available: {', '.join(sorted(exc.options))}"
    # an override's error is the cause; an error while merging a config file (an experiment's
    # knob the chosen method lacks) is only the context
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, OmegaConfBaseException):
        return describe_omegaconf_error(cause, "", _hint_tree(config_name, overrides))
    text = str(exc).strip().splitlines()
    return " ".join(line.strip() for line in text[:2] if line.strip()) or type(exc).__name__


def _hint_tree(config_name: str, overrides: List[str]):
    """The tree "did you mean" searches: the default one with the command line's group choices."""
    from hydra import compose
    groups = [o for o in overrides if "=" in o and "." not in o.split("=")[0] and "," not in o]
    for attempt in (groups, []):
        try:
            return compose(config_name, overrides=attempt)
        except Exception:
            continue
    return None


def compose_train(*overrides: str) -> TrainConfig:
    """The validated TrainConfig `ganzoo train <overrides>` would run (for scripts and tests)."""
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="ganzoo.conf", version_base="1.3"):
        return load_train_config(compose_config("train", list(overrides)))


def load_classifier_config(cfg: DictConfig) -> ClassifierConfig:
    # an image dataset's config also picks a net (for training runs); the classifier has its own
    raw = _without(cfg, ("hydra", "arch"))
    c = _typed(ClassifierConfig, _without(raw, ("dataset",)), "")
    c.dataset = _typed(_node_schema("dataset", raw.dataset, DATASET_SCHEMAS, "name"), raw.dataset, "dataset")
    check(is_image(c.dataset) and c.dataset.num_classes >= 2,
           f"dataset {c.dataset.name} has no class labels; the classifier needs a labelled image dataset "
           f"(mnist, fashion_mnist, cifar10, cifar100, tiny_imagenet, imagenet)")
    c.dataset.check()
    return c


def load_simple(schema, cfg: DictConfig | dict):
    c = _as_composed(schema, cfg, skip=("hydra",)) or _typed(schema, _without(cfg, ("hydra",)), "")
    if getattr(c, "run", None) in (None, ""):
        raise ConfigError("run=<run dir> is required, e.g. run=outputs/train/2026-01-01_12-00-00_gan_ring")
    c.check()
    return c


# each command's composed config -> its checked schema (values only: `--cfg job` needs no more); the
# schema's `ready()` then checks the files the command reads and writes (cli.check_command and the job)
LOADERS = {"train": load_train_config, "classifier": load_classifier_config,
           "sample": lambda raw: load_simple(SampleConfig, raw), "eval": lambda raw: load_simple(EvalConfig, raw)}


def resolved(c: TrainConfig) -> dict:
    """c as a dict with each null that means "the dataset's default" filled in, as a run uses it
    (a v1 checkpoint saved them filled)."""
    out = to_dict(c)
    image = is_image(c.dataset)
    out["metrics"]["num_samples"] = c.metrics.samples(image)
    if hasattr(c.method, "generators"):
        out["method"]["I"] = c.method.generators(image)
    return out


def _check_finite(tree: Any, where: str = "") -> None:
    """No config value may be an infinity or NaN (`lr=inf` would run until it diverges)."""
    if isinstance(tree, dict):
        for k, v in tree.items():
            _check_finite(v, f"{where}.{k}" if where else str(k))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            _check_finite(v, f"{where}[{i}]")
    elif isinstance(tree, float) and not math.isfinite(tree):
        raise ConfigError(f"{where} must be a finite number, got {tree}")


def to_dict(obj) -> Any:
    """Dataclass tree -> plain dict (for checkpoints, hparams and comparisons)."""
    if is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    return obj


def flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def safe_dirname(name: str) -> str:
    """A sweep job's folder name from its overrides: a `/` in a swept value (paper.source=../../x,
    dataset.root=/data/x) would move the job out of its sweep folder, so it becomes `_`; a name too long for
    a file system keeps its start and a hash of the rest."""
    import hashlib
    name = str(name).replace("/", "_").replace("\\", "_").replace("\0", "_")
    if len(name.encode()) > 200:
        digest = hashlib.sha1(name.encode()).hexdigest()[:12]
        name = name.encode()[:180].decode(errors="ignore") + "-" + digest
    return name


register()  # on import: every entry point that composes imports this module first
if not OmegaConf.has_resolver("safe_dirname"):
    OmegaConf.register_new_resolver("safe_dirname", safe_dirname)
