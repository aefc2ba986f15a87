"""Metrics for 2-D data.

For mixtures (ring, grid), the mode-collapse literature's protocol (VEEGAN, PacGAN, Unrolled GAN): a
generated sample is *high quality* when it lies within `hq_std` (3) standard deviations of its nearest
mode; a mode is *covered* when at least `min_count` (20) of the evaluation's samples are high-quality
samples of it (PacGAN counts 20 of 2,500 samples); `reverse_kl` is KL(q || uniform) of the mode
histogram q of the high-quality samples. With several generators, each generator's own coverage uses
the same rule with the count scaled to its share of the samples (at least 1 sample).

D's score per mode (aw's Fig. 6): D's mean logit on 100 fresh real samples of each mode, summarised as
its minimum, mean and spread (max - min) over the modes.

For every 2-D set, `mmd` is the squared MMD (sum of Gaussian kernels at several bandwidths) between the
first 1,000 samples and as many fresh real ones; for a finite training set, `nn_train` is the mean
distance from a sample to its nearest training point, `nn_train_fresh` the same for fresh samples of the
true distribution, and `nn_train_gap` their difference: below 0 the samples sit nearer the training
points than the distribution's own samples do (memorised), near 0 they do not.
"""
from __future__ import annotations

from typing import Callable, Dict, Optional

import torch
from torch import Tensor

from .registry import finite_or_none


def mode_metrics(samples: Tensor, modes: Tensor, std: float, hq_std: float = 3.0, min_count: int = 20,
                 index: Optional[Tensor] = None, num_generators: int = 1) -> Dict[str, Optional[float]]:
    samples = samples.float().cpu()
    modes = modes.float().cpu()
    nearest_dist, nearest = torch.cdist(samples, modes).min(1)
    hq = nearest_dist <= hq_std * std
    n_modes = len(modes)
    counts = torch.bincount(nearest[hq], minlength=n_modes)
    n_hq = int(hq.sum())
    covered = int((counts >= max(min_count, 1)).sum())
    if n_hq == 0:
        kl = None  # no high-quality sample: the mode histogram is undefined
    else:
        q = counts.double() / n_hq
        nz = q > 0
        kl = float((q[nz] * (q[nz] * n_modes).log()).sum())
    out = {"modes_covered": covered, "high_quality": n_hq / len(samples), "reverse_kl": kl}
    if index is not None and num_generators > 1:
        out.update(generator_modes(nearest, hq, index.cpu(), num_generators, n_modes, min_count, len(samples)))
    return out


def generator_modes(nearest: Tensor, hq: Tensor, index: Tensor, generators: int, n_modes: int,
                    min_count: int, n: int) -> Dict[str, object]:
    """Which generator covers which mode (Stackelberg GAN's "each generator learns a balanced number of
    modes"): generator i covers mode m when its high-quality samples of m reach min_count scaled by
    its share of all samples."""
    table = torch.zeros(generators, n_modes, dtype=torch.long)
    table.index_put_((index[hq], nearest[hq]), torch.ones(int(hq.sum()), dtype=torch.long), accumulate=True)
    share = torch.bincount(index, minlength=generators).double() / n
    need = (min_count * share).ceil().clamp_min(1).unsqueeze(1)
    covers = table >= need
    per_gen = covers.sum(1).double()
    per_mode = covers.sum(0).double()
    held = per_mode > 0
    return {"modes_per_generator": float(per_gen.mean()), "modes_per_generator_max": float(per_gen.max()),
            "generators_per_mode": float(per_mode[held].mean()) if held.any() else 0.0,
            "modes_by_generator": [int(v) for v in per_gen]}


def mode_scores(surface: Callable[[Tensor], Tensor], modes: Tensor, std: float, generator: torch.Generator,
                device: torch.device, per_mode: int = 100) -> Dict[str, float]:
    """D's mean logit on `per_mode` fresh real samples of each mode: min, mean and spread over modes."""
    m = len(modes)
    x = modes.to(device).repeat_interleave(per_mode, 0)
    x = x + std * torch.randn(x.shape, generator=generator, device=device)
    scores = surface(x).float().cpu().view(m, per_mode).mean(1)
    return {"d_mode_score_min": float(scores.min()), "d_mode_score_mean": float(scores.mean()),
            "d_mode_score_spread": float(scores.max() - scores.min())}


def mmd(x: Tensor, y: Tensor, scales=(0.05, 0.2, 1.0), max_n: int = 1000) -> float:
    """Biased estimate of squared MMD with a sum of Gaussian kernels (first max_n of each)."""
    x, y = x[:max_n].double().cpu(), y[:max_n].double().cpu()
    xy = torch.cat([x, y])
    d2 = torch.cdist(xy, xy).pow(2)
    k = sum(torch.exp(-d2 / (2 * s * s)) for s in scales)
    n = len(x)
    return float(k[:n, :n].mean() + k[n:, n:].mean() - 2 * k[:n, n:].mean())


def nn_distance(x: Tensor, points: Tensor) -> float:
    """Mean distance from each row of x to its nearest row of `points` (float64: cdist's float32 matmul
    shortcut makes a point's distance to itself ~1e-3, not 0)."""
    return float(torch.cdist(x.double().cpu(), points.double().cpu()).min(1).values.mean())


def toy_metrics(samples: Tensor, data, reference: Tensor, hq_std: float = 3.0, min_count: int = 20,
                index: Optional[Tensor] = None, num_generators: int = 1) -> Dict[str, Optional[float]]:
    """`reference`: fresh samples of the true distribution, as many as `samples`."""
    out: Dict[str, Optional[float]] = {}
    if data.modes is not None:
        out.update(mode_metrics(samples, data.modes, data.std, hq_std, min_count, index, num_generators))
    out["mmd"] = mmd(samples, reference)
    if data.finite is not None:
        out["nn_train"] = nn_distance(samples, data.finite)
        out["nn_train_fresh"] = nn_distance(reference, data.finite)
        out["nn_train_gap"] = out["nn_train"] - out["nn_train_fresh"]
    return {k: finite_or_none(v) for k, v in out.items()}
