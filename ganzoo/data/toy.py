"""2-D toy distributions. Each can draw fresh samples from a torch.Generator;
mixtures expose their mode centres and std for the toy metrics. Like an image set
(data/images.py) each says how a model trained on it is evaluated and pictured."""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor


class Toy2D:
    """What every 2-D distribution shares: its metrics and its picture."""
    shape = (2,)
    workers = 0
    modes: Optional[Tensor] = None
    std: Optional[float] = None
    finite: Optional[Tensor] = None
    finite_labels: Optional[Tensor] = None
    num_classes = 0  # a mixture labels each point by its mode
    score_parts = True  # cheap here: every evaluation also scores the players a method scores on their own

    def sample(self, n: int, generator: torch.Generator, device: torch.device) -> Tensor:
        raise NotImplementedError

    def sample_labelled(self, n: int, generator: torch.Generator, device: torch.device):
        raise NotImplementedError(f"{self.name} has no labels")

    def class_counts(self) -> Optional[Tensor]:
        """How often each class occurs in the data (a mixture's modes are equally likely)."""
        return torch.ones(self.num_classes) if self.num_classes else None

    def evaluator(self, metrics, seed: int, device: torch.device, shard=None):
        """-> evaluate(sample_fn, num_generators, surface=None) -> scores; with `surface` (D's logits) on a
        mixture, D's score per mode too. It draws from its own generators, so it never moves the training
        RNG streams (exact resume holds with or without evaluations). A few thousand 2-D points: every
        rank (`shard`) scores them all, alike."""
        from ..metrics.toy import mode_scores, toy_metrics

        def evaluate(sample_fn, num_generators, surface=None, classes: int = 0):
            # a conditional model samples its classes as training draws them (the mixture's modes)
            n = metrics.samples(image=False)
            samples, index = sample_fn(n, torch.Generator(device=device).manual_seed(seed + 99_991))
            ref = self.sample(n, torch.Generator(device=device).manual_seed(seed + 12_345), device)
            out = toy_metrics(samples, self, ref, metrics.hq_std, metrics.min_mode_count, index, num_generators)
            if surface is not None and self.modes is not None:
                out.update(mode_scores(surface, self.modes, self.std,
                                       torch.Generator(device=device).manual_seed(seed + 77_773), device))
            return out
        return evaluate

    def picture(self, method, seed: int, device: torch.device, title: str, images: int = 64, classes: int = 0):
        """The real data and 1000 samples (coloured by generator) over D's decision surface (`images`,
        `classes`: the image datasets' picture size and class rows, not used here)."""
        from ..plots import figure_to_array, scatter_2d
        fixed = torch.Generator(device=device).manual_seed(seed + 31_337)
        gen = torch.Generator(device=device).manual_seed(seed + 4_242)
        real = self.finite if self.finite is not None else self.sample(1000, gen, device)
        fake, index = method.sample(1000, fixed)
        return figure_to_array(scatter_2d(real, fake, index, lambda x: method.surface(x.to(device)), title=title))


class Mixture(Toy2D):
    """Equal-weight isotropic Gaussians at `modes` (M x 2)."""

    def __init__(self, name: str, modes: Tensor, std: float):
        self.name = name
        self.modes = modes
        self.std = std
        self.num_classes = len(modes)

    def sample(self, n: int, generator: torch.Generator, device: torch.device) -> Tensor:
        return self.sample_labelled(n, generator, device)[0]

    def sample_labelled(self, n: int, generator: torch.Generator, device: torch.device):
        """n points and the mode each was drawn from (the same draws as `sample`)."""
        modes = self.modes.to(device)
        idx = torch.randint(len(modes), (n,), generator=generator, device=device)
        return modes[idx] + self.std * torch.randn(n, 2, generator=generator, device=device), idx


def ring(modes: int = 8, radius: float = 2.0, std: float = 0.02) -> Mixture:
    angle = torch.arange(modes, dtype=torch.float64) * (2 * math.pi / modes)
    centres = torch.stack([radius * angle.cos(), radius * angle.sin()], 1).float()
    return Mixture("ring", centres, std)


def grid(size: int = 5, spacing: float = 2.0, std: float = 0.05) -> Mixture:
    # centred on the origin: size 5, spacing 2 gives the usual {-4,-2,0,2,4}^2
    axis = (torch.arange(size, dtype=torch.float32) - (size - 1) / 2) * spacing
    xs, ys = torch.meshgrid(axis, axis, indexing="ij")
    return Mixture("grid", torch.stack([xs.flatten(), ys.flatten()], 1), std)


class SwissRoll(Toy2D):
    """The 2-D swiss roll of scikit-learn's make_swiss_roll (x, z plane), scaled."""

    def __init__(self, noise: float = 0.25, scale: float = 0.25):
        self.name = "swissroll"
        self.noise = noise
        self.scale = scale

    def sample(self, n: int, generator: torch.Generator, device: torch.device) -> Tensor:
        t = 1.5 * math.pi * (1 + 2 * torch.rand(n, generator=generator, device=device))
        x = torch.stack([t * t.cos(), t * t.sin()], 1)
        x = x + self.noise * torch.randn(n, 2, generator=generator, device=device)
        return x * self.scale


class FiniteGaussian(Toy2D):
    """A FIXED set of n points drawn once from N(mean, std^2 I), as in FARGAN's synthetic
    experiment. Training sees only these points; `sample` draws from the full Gaussian
    (what a generator that generalises should produce)."""

    def __init__(self, n: int = 200, mean: float = 0.0, std: float = 1.0, seed: int = 1234, dim: int = 2):
        self.name = "gaussian"
        self.mean = mean
        self.std_ = std
        self.shape = (dim,)
        g = torch.Generator().manual_seed(seed)
        self.finite = mean + std * torch.randn(n, dim, generator=g)

    def sample(self, n: int, generator: torch.Generator, device: torch.device) -> Tensor:
        return self.mean + self.std_ * torch.randn(n, self.shape[0], generator=generator, device=device)


def build_toy(cfg):
    if cfg.name == "ring":
        return ring(cfg.modes, cfg.radius, cfg.std)
    if cfg.name == "grid":
        return grid(cfg.size, cfg.spacing, cfg.std)
    if cfg.name == "swissroll":
        return SwissRoll(cfg.noise, cfg.scale)
    if cfg.name == "gaussian":
        return FiniteGaussian(cfg.n, cfg.mean, cfg.std, cfg.seed, cfg.dim)
    raise ValueError(f"unknown toy dataset {cfg.name!r}")
