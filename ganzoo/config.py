"""Config schemas and validation.

Hydra composes the YAML tree; this module turns the composed tree into typed
dataclasses and refuses anything impossible with one readable line. It runs
before Hydra creates a run directory (see cli.py), so a typo costs a second
and leaves nothing behind.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Dict, List, Optional

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .errors import ConfigError
from .nets.schemas import ARCH_SCHEMAS, validate_conv_arch

DEVICES = ("auto", "cpu", "cuda")
LOSSES = ("ns", "minimax", "wgan", "hinge", "lsgan")
PENALTIES = ("none", "r1", "gp", "zgp")
OPTIMIZERS = ("adam", "rmsprop")
DECAYS = ("none", "linear")
ACTIVATIONS = ("relu", "leaky_relu", "tanh", "elu", "sigmoid", "identity")
NOISE = ("normal", "uniform")
AMP = ("off", "bf16", "fp16")


# ---------------------------------------------------------------- datasets
@dataclass
class RingData:
    name: str = "ring"
    modes: int = 8
    radius: float = 2.0
    std: float = 0.02


@dataclass
class GridData:
    name: str = "grid"
    size: int = 5
    spacing: float = 2.0
    std: float = 0.05


@dataclass
class SwissRollData:
    name: str = "swissroll"
    noise: float = 0.25
    scale: float = 0.25


@dataclass
class GaussianData:
    name: str = "gaussian"
    n: int = 200
    dim: int = 2
    mean: float = 0.0
    std: float = 1.0
    seed: int = 1234


@dataclass
class ImageData:
    """Every image dataset; `name` picks the loader (ganzoo/data/images.py)."""
    name: str = "fashion_mnist"
    root: Optional[str] = None        # where the files are; null = the dataset's usual place
    download: bool = False            # let torchvision download (needs internet)
    channels: int = 1
    resolution: int = 28
    num_classes: int = 0              # 0 = unlabelled (no class metrics)
    in_memory: Optional[bool] = None  # null = auto: one tensor on the device when it fits
    workers: int = 2                  # DataLoader workers when not in memory


IMAGE_DATASETS = ("mnist", "fashion_mnist", "cifar10", "cifar100", "stl10", "celeba", "tiny_imagenet",
                  "imagenet", "lsun_bedroom", "image_folder")


# ---------------------------------------------------------------- architectures
@dataclass
class MLPNet:
    hidden: List[int] = field(default_factory=lambda: [128, 128, 128])
    act: str = "relu"
    slope: float = 0.2
    batchnorm: bool = False
    spectral_norm: bool = False
    out: str = "identity"


@dataclass
class MLPArch:
    name: str = "mlp"
    type: str = "mlp"
    z_dim: int = 2
    z_dist: str = "normal"
    g: MLPNet = field(default_factory=MLPNet)
    d: MLPNet = field(default_factory=MLPNet)


# ---------------------------------------------------------------- loss, method, optim
@dataclass
class LossConfig:
    name: str = "ns"
    penalty: str = "none"
    k: float = 10.0


@dataclass
class GANMethod:
    name: str = "gan"


@dataclass
class FarganMethod:
    name: str = "fargan"
    f: int = 8            # candidates per selected fake-as-real sample
    N0: int = 32          # fakes in D's real set (of batch_size)
    k: float = 10.0       # zero-centred gradient penalty on D's whole real set


@dataclass
class AWMethod:
    name: str = "aw"
    normalized: bool = True   # false: the paper's Algorithm 2 (unit weights instead of 1/|g|)
    alpha1: float = 0.5
    alpha2: float = 0.75
    delta: float = 0.05
    eps: float = 0.05


@dataclass
class StackelbergMethod:
    name: str = "stackelberg"
    I: Optional[int] = None        # generators; null = 10 for images, 8 for 2-D data
    shared_noise: bool = False     # every generator gets the same z (the authors' scripts)
    classifier_weight: float = 0.0  # MGAN-style "which generator" head of the released code; 0 = off
    players: str = "auto"          # auto | list | stack


@dataclass
class MicrobatchMethod:
    name: str = "microbatch"
    K: int = 8                       # discriminators; microbatches of near-equal size when K does not divide the batch
    alpha: Optional[float] = None    # a number: static alpha (alpha_act is then unused)
    alpha_act: Optional[str] = "sigmoid"  # self-learned alpha = act(beta): sigmoid|softplus|tanh|identity
    alpha_init: float = 0.142        # alpha at step 0 (sigmoid(-1.8), the paper's beta0)
    players: str = "auto"           # auto | list | stack


@dataclass
class SGANMethod:
    name: str = "sgan"
    N: int = 5                       # local (G_i, D_i) pairs beside the global pair


@dataclass
class OptimizerConfig:
    name: str = "adam"
    lr: float = 2e-4
    betas: List[float] = field(default_factory=lambda: [0.5, 0.999])
    alpha: float = 0.99
    eps: float = 1e-8
    weight_decay: float = 0.0


@dataclass
class OptimConfig:
    name: str = "adam"
    g: OptimizerConfig = field(default_factory=OptimizerConfig)
    d: OptimizerConfig = field(default_factory=OptimizerConfig)
    decay: str = "none"


@dataclass
class EMAConfig:
    enabled: bool = False
    decay: float = 0.999
    start: int = 0


@dataclass
class MetricsConfig:
    num_samples: Optional[int] = None     # null = 2,500 for 2-D data, 10,000 for images (50,000 for paper numbers)
    # a sample is high quality when it lies within hq_std standard deviations of its nearest mode
    hq_std: float = 3.0
    # a mode counts as covered when it holds at least this fraction of the high-quality samples
    # a uniform generator would give it (1/modes); 0.1 of that share is the default
    min_mode_share: float = 0.1
    # images
    # a class counts as generated when it takes at least this share of the predictions a uniform
    # generator would give it; higher than min_mode_share because a real classifier confuses classes
    min_class_share: float = 0.5
    inception: bool = True                # IS, FID, KID with torch-fidelity's Inception
    inception_weights: Optional[str] = None  # a local weights file, for machines without internet
    prc: bool = False                     # precision/recall (needs torch-fidelity's VGG16 weights)
    kid_subset_size: int = 1000
    reference_split: str = "train"
    num_real: Optional[int] = None        # null = the whole reference split
    classifier: bool = True               # classifier FID/KID and class coverage on labelled datasets
    cache_dir: str = "~/.cache/ganzoo"    # reference statistics and trained classifiers
    batch_size: int = 250


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
    device: str = "auto"
    steps: int = 5000
    batch_size: int = 256
    n_dis: int = 1
    eval_every: int = 1000
    ckpt_every: int = 1000
    log_every: int = 50
    sample_every: int = 1000
    resume: Optional[str] = None
    dataset: Any = None
    arch: Any = None
    loss: LossConfig = field(default_factory=LossConfig)
    method: Any = None
    optim: OptimConfig = field(default_factory=OptimConfig)
    ema: EMAConfig = field(default_factory=EMAConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    amp: str = "off"                      # off | bf16 | fp16 (CUDA only; fp16 uses a GradScaler)
    channels_last: bool = False           # CUDA memory format for conv nets
    cudnn: CudnnConfig = field(default_factory=CudnnConfig)
    compile: bool = False                 # torch.compile the nets (not a D whose penalty needs double backward)
    deterministic: bool = False           # deterministic kernels, so exact resume holds on CUDA too
    tf32: bool = True                     # CUDA: TF32 matmuls and convolutions
    # n > 0: image datasets are replaced by n random images of their shape and classes, so a smoke run
    # exercises an experiment's nets, method and loop without its files (2-D data is unaffected)
    synthetic_images: int = 0
    paper: PaperInfo = field(default_factory=PaperInfo)


@dataclass
class SampleConfig:
    run: Optional[str] = None
    n: int = 2500
    out: str = "samples.npz"
    seed: int = 0
    ckpt: str = "last"
    device: str = "auto"


@dataclass
class EvalConfig:
    run: Optional[str] = None
    ckpt: str = "last"
    seed: Optional[int] = None  # None: the run's own seed, which reproduces its final evaluation
    device: str = "auto"


@dataclass
class ClassifierCacheConfig:
    cache_dir: str = "~/.cache/ganzoo"


@dataclass
class ClassifierConfig:
    dataset: Any = None
    device: str = "auto"
    metrics: ClassifierCacheConfig = field(default_factory=ClassifierCacheConfig)


# group -> option name (the `name` key of the group's YAML) -> schema
DATASETS = {"ring": RingData, "grid": GridData, "swissroll": SwissRollData, "gaussian": GaussianData,
            **{name: ImageData for name in IMAGE_DATASETS}}
ARCH_TYPES = {"mlp": MLPArch, **ARCH_SCHEMAS}
METHODS = {"gan": GANMethod, "fargan": FarganMethod, "aw": AWMethod, "stackelberg": StackelbergMethod,
           "microbatch": MicrobatchMethod, "sgan": SGANMethod}
ALPHA_ACTS = ("sigmoid", "softplus", "tanh", "identity")
PLAYERS = ("auto", "list", "stack")


def _typed(schema, node, where: str):
    """Merge a composed node into its schema; unknown keys and wrong types raise ConfigError."""
    base = OmegaConf.structured(schema)
    try:
        merged = OmegaConf.merge(base, node)
    except OmegaConfBaseException as exc:
        raise ConfigError(describe_omegaconf_error(exc, where, base)) from None
    return OmegaConf.to_object(merged)


def describe_omegaconf_error(exc: OmegaConfBaseException, where: str, node: Any = None) -> str:
    key = getattr(exc, "full_key", None) or getattr(exc, "key", None) or ""
    full = ".".join(p for p in (where, str(key)) if p)
    msg = str(getattr(exc, "msg", None) or exc).splitlines()[0].strip()
    if "not in struct" in msg or "not in" in msg and "Key" in msg:
        hint = _closest(node, str(key))
        if hint:
            return f"unknown config key '{full}'; did you mean '{hint}'?"
        if where == "method" and node is not None:  # an experiment pinned a knob the chosen method lacks
            return (f"unknown config key '{full}': method={node.name} has no '{key}'; if an experiment= config "
                    f"set it, drop it with '~{full}'")
        return f"unknown config key '{full}'"
    value = getattr(exc, "value", None)
    if "could not be converted" in msg or "Invalid type" in msg or "is not a subclass" in msg:
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


def _pick(group: str, node: Any, table: dict, key: str = "name"):
    if not isinstance(node, (dict, DictConfig)) or key not in node:
        raise ConfigError(f"{group}: missing '{key}' (one of: {', '.join(table)})")
    choice = node[key]
    if choice not in table:
        raise ConfigError(f"{group}.{key}: unknown value {choice!r}; allowed: {', '.join(table)}")
    return table[choice]


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


def _one_of(where: str, value: str, allowed) -> None:
    _check(value in allowed, f"{where}: {value!r} is not allowed; choose one of: {', '.join(allowed)}")


def _positive(where: str, value, zero_ok: bool = False) -> None:
    if zero_ok:
        _check(value >= 0, f"{where} must be >= 0, got {value}")
    else:
        _check(value > 0, f"{where} must be > 0, got {value}")


def load_train_config(cfg: DictConfig | dict) -> TrainConfig:
    """Composed Hydra config -> validated TrainConfig (raises ConfigError with one line)."""
    raw = OmegaConf.create(cfg) if not isinstance(cfg, DictConfig) else cfg
    raw = OmegaConf.masked_copy(raw, [k for k in raw.keys() if k != "hydra"]) if "hydra" in raw else raw
    top = _typed(TrainConfig, raw, "")
    top.dataset = _typed(_pick("dataset", raw.dataset, DATASETS), raw.dataset, "dataset")
    top.arch = _typed(_pick("arch", raw.arch, ARCH_TYPES, key="type"), raw.arch, "arch")
    top.method = _typed(_pick("method", raw.method, METHODS), raw.method, "method")
    validate(top)
    return top


def validate(c: TrainConfig) -> None:
    """Value checks the type system cannot express. Each raises one line naming the key."""
    _one_of("device", c.device, DEVICES)
    _positive("steps", c.steps)
    _positive("batch_size", c.batch_size)
    _check(c.n_dis >= 1, f"n_dis must be >= 1, got {c.n_dis}")
    for key in ("eval_every", "ckpt_every", "log_every", "sample_every"):
        _positive(f"{key} (0 turns it off)", getattr(c, key), zero_ok=True)

    _one_of("loss.name", c.loss.name, LOSSES)
    _one_of("loss.penalty", c.loss.penalty, PENALTIES)
    _positive("loss.k (penalty weight)", c.loss.k, zero_ok=True)

    _one_of("optim.decay", c.optim.decay, DECAYS)
    for player in ("g", "d"):
        o = getattr(c.optim, player)
        where = f"optim.{player}"
        _one_of(f"{where}.name", o.name, OPTIMIZERS)
        _positive(f"{where}.lr", o.lr)
        _check(len(o.betas) == 2 and all(0 <= b < 1 for b in o.betas),
               f"{where}.betas must be two numbers in [0, 1), got {list(o.betas)}")
        _check(0 <= o.alpha < 1, f"{where}.alpha (RMSprop smoothing) must be in [0, 1), got {o.alpha}")
        _positive(f"{where}.eps", o.eps)
        _positive(f"{where}.weight_decay", o.weight_decay, zero_ok=True)

    _check(0 < c.ema.decay < 1, f"ema.decay must be in (0, 1), got {c.ema.decay}")
    _positive("ema.start", c.ema.start, zero_ok=True)

    _one_of("amp", c.amp, AMP)
    _positive("synthetic_images (0 turns it off)", c.synthetic_images, zero_ok=True)
    _check(c.synthetic_images == 0 or c.synthetic_images >= c.batch_size or not is_image(c.dataset),
           f"synthetic_images={c.synthetic_images} must be 0 or at least batch_size={c.batch_size}")
    if c.metrics.num_samples is None:
        c.metrics.num_samples = 10_000 if is_image(c.dataset) else 2_500
    _positive("metrics.num_samples", c.metrics.num_samples)
    _positive("metrics.hq_std", c.metrics.hq_std)
    _positive("metrics.kid_subset_size", c.metrics.kid_subset_size)
    _positive("metrics.batch_size", c.metrics.batch_size)
    _one_of("metrics.reference_split", c.metrics.reference_split, ("train", "test"))
    _check(0 <= c.metrics.min_class_share <= 1,
           f"metrics.min_class_share must be in [0, 1], got {c.metrics.min_class_share}")
    _check(0 <= c.metrics.min_mode_share <= 1,
           f"metrics.min_mode_share must be in [0, 1], got {c.metrics.min_mode_share}")

    _validate_dataset(c.dataset)
    image = is_image(c.dataset)
    if isinstance(c.arch, MLPArch):
        _check(not image, f"arch={c.arch.name} is a 2-D net but dataset {c.dataset.name} holds images: "
                          f"pick an image arch, e.g. arch=dcgan (ganzoo train --help lists them)")
        _validate_arch(c.arch)
        _validate_reach(c)
    else:
        _check(image, f"arch={c.arch.name} is an image net but dataset {c.dataset.name} is 2-D: use arch=mlp "
                      f"or a *_toy preset")
        validate_conv_arch(c.arch, data_shape(c.dataset))
    _validate_method(c)


def _validate_method(c: TrainConfig) -> None:
    m = c.method
    if isinstance(m, FarganMethod):
        _check(m.f >= 1, f"method.f must be >= 1 (candidates per selected fake), got {m.f}")
        _check(0 <= m.N0 < c.batch_size, f"method.N0 must be in [0, batch_size={c.batch_size}): "
                                         f"D's real set needs at least one real sample, got N0={m.N0}")
        _positive("method.k (gradient penalty weight)", m.k, zero_ok=True)
        _check(c.loss.penalty == "none", f"fargan penalises D's whole real set itself (method.k={m.k}); "
                                         f"set loss.penalty=none instead of {c.loss.penalty}")
    elif isinstance(m, AWMethod):
        for key in ("alpha1", "alpha2"):
            _check(0 <= getattr(m, key) <= 1, f"method.{key} must be in [0, 1] (a mean sigmoid score), "
                                              f"got {getattr(m, key)}")
        _positive("method.delta", m.delta, zero_ok=True)
        _positive("method.eps", m.eps, zero_ok=True)
        _check(c.amp != "fp16", "method=aw combines D's gradients itself and has no loss scaling: "
                                "use amp=bf16 or amp=off")
    elif isinstance(m, StackelbergMethod):
        if m.I is None:
            m.I = 10 if is_image(c.dataset) else 8
        _check(m.I >= 1, f"method.I (generators) must be >= 1, got {m.I}")
        _positive("method.classifier_weight", m.classifier_weight, zero_ok=True)
        _check(m.classifier_weight == 0 or m.I >= 2, "method.classifier_weight tells generators apart: "
                                                      "it needs method.I >= 2")
        _validate_players(c, m.players)
    elif isinstance(m, MicrobatchMethod):
        _check(1 <= m.K <= c.batch_size, f"method.K (discriminators) must be in [1, batch_size={c.batch_size}]: "
                                         f"each needs at least one sample, got K={m.K}")
        if m.alpha is not None:  # a number is a static alpha, whatever alpha_act says
            _positive("method.alpha", m.alpha, zero_ok=True)
        else:
            _check(m.alpha_act is not None, "microbatch needs method.alpha (a number) or method.alpha_act")
            _one_of("method.alpha_act", m.alpha_act, ALPHA_ACTS)
            _check(m.alpha_init > 0, f"method.alpha_init must be > 0, got {m.alpha_init}")
            _check(m.alpha_act not in ("sigmoid", "tanh") or m.alpha_init < 1,
                   f"method.alpha_init must be < 1 with alpha_act={m.alpha_act}, got {m.alpha_init}")
        _validate_players(c, m.players)
        _check(m.players != "stack" or c.batch_size % m.K == 0,
               f"method.players=stack runs K equal microbatches: method.K={m.K} must divide batch_size="
               f"{c.batch_size}, or use method.players=list (or auto)")
    elif isinstance(m, SGANMethod):
        _check(m.N >= 1, f"method.N (local pairs) must be >= 1, got {m.N}")


def _validate_players(c: TrainConfig, players: str) -> None:
    _one_of("method.players", players, PLAYERS)
    if players == "stack":
        plain = isinstance(c.arch, MLPArch) and not (c.arch.g.spectral_norm or c.arch.d.spectral_norm)
        _check(plain, f"method.players=stack batches plain 2-D MLPs only; arch={c.arch.name} needs "
                      f"method.players=list (or auto)")


def is_image(d) -> bool:
    return isinstance(d, ImageData)


def data_shape(d) -> tuple:
    """The shape of one training sample, known from the config alone."""
    if isinstance(d, ImageData):
        return (d.channels, d.resolution, d.resolution)
    if isinstance(d, GaussianData):
        return (d.dim,)
    return (2,)


def _validate_reach(c: TrainConfig) -> None:
    """A tanh generator cannot reach data outside [-1, 1]: say so now, not after training."""
    d = c.dataset
    if c.arch.g.out != "tanh":
        return
    reach = {RingData: lambda: d.radius + 3 * d.std,
             GridData: lambda: (d.size - 1) / 2 * d.spacing + 3 * d.std}.get(type(d))
    if reach is not None and reach() > 1:
        raise ConfigError(f"arch.g.out=tanh keeps samples in [-1, 1] but dataset {d.name} reaches "
                          f"{reach():.2f}; scale the data (e.g. dataset.radius=0.8) or set arch.g.out=identity")


def _validate_dataset(d) -> None:
    if isinstance(d, RingData):
        _check(d.modes >= 1, f"dataset.modes must be >= 1, got {d.modes}")
        _positive("dataset.radius", d.radius)
        _positive("dataset.std", d.std)
    elif isinstance(d, GridData):
        _check(d.size >= 1, f"dataset.size must be >= 1, got {d.size}")
        _positive("dataset.spacing", d.spacing)
        _positive("dataset.std", d.std)
    elif isinstance(d, SwissRollData):
        _positive("dataset.noise", d.noise, zero_ok=True)
        _positive("dataset.scale", d.scale)
    elif isinstance(d, ImageData):
        _check(d.channels in (1, 3), f"dataset.channels must be 1 or 3, got {d.channels}")
        _check(d.resolution >= 8, f"dataset.resolution must be >= 8, got {d.resolution}")
        _positive("dataset.num_classes", d.num_classes, zero_ok=True)
        _positive("dataset.workers", d.workers, zero_ok=True)
    elif isinstance(d, GaussianData):
        _check(d.n >= 1, f"dataset.n must be >= 1, got {d.n}")
        _check(d.dim == 2, f"dataset.dim: only 2-D data is supported for plots and metrics, got {d.dim}")
        _positive("dataset.std", d.std)


def _validate_arch(a) -> None:
    _check(a.z_dim >= 1, f"arch.z_dim must be >= 1, got {a.z_dim}")
    _one_of("arch.z_dist", a.z_dist, NOISE)
    for player in ("g", "d"):
        net = getattr(a, player)
        _one_of(f"arch.{player}.act", net.act, ACTIVATIONS)
        _check(all(h >= 1 for h in net.hidden), f"arch.{player}.hidden: widths must be >= 1, got {list(net.hidden)}")
        _positive(f"arch.{player}.slope", net.slope, zero_ok=True)
        _one_of(f"arch.{player}.out", net.out, ACTIVATIONS)
    _check(a.d.out == "identity", "arch.d.out must be identity: D returns raw logits and the loss applies its own link")


def compose_train(*overrides: str) -> TrainConfig:
    """The validated TrainConfig `ganzoo train <overrides>` would run (for scripts and tests)."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="ganzoo.conf", version_base="1.3"):
        return load_train_config(compose("train", overrides=list(overrides)))


def load_classifier_config(cfg: DictConfig) -> ClassifierConfig:
    # an image dataset's config also picks a net (for training runs); the classifier has its own
    raw = OmegaConf.masked_copy(cfg, [k for k in cfg.keys() if k not in ("hydra", "arch")])
    c = _typed(ClassifierConfig, raw, "")
    c.dataset = _typed(_pick("dataset", raw.dataset, DATASETS), raw.dataset, "dataset")
    _one_of("device", c.device, DEVICES)
    _check(is_image(c.dataset) and c.dataset.num_classes >= 2,
           f"dataset {c.dataset.name} has no class labels; the classifier needs a labelled image dataset "
           f"(mnist, fashion_mnist, cifar10, cifar100, tiny_imagenet, imagenet)")
    return c


def load_simple(schema, cfg: DictConfig | dict):
    raw = OmegaConf.create(cfg) if not isinstance(cfg, DictConfig) else cfg
    raw = OmegaConf.masked_copy(raw, [k for k in raw.keys() if k != "hydra"]) if "hydra" in raw else raw
    c = _typed(schema, raw, "")
    if getattr(c, "run", None) in (None, ""):
        raise ConfigError("run=<run dir> is required, e.g. run=outputs/train/2026-01-01_12-00-00_gan_ring")
    _one_of("device", c.device, DEVICES)
    return c


def to_dict(obj) -> Any:
    """Dataclass tree -> plain dict (for checkpoints, hparams and comparisons)."""
    if is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in fields(obj)}
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
