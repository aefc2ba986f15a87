"""Metrics for 2-D data.

For mixtures (ring, grid), following the usual protocol of the mode-collapse
literature (VEEGAN, PacGAN, Unrolled GAN): a generated sample is *high
quality* when it lies within `hq_std` standard deviations of its nearest
mode; `modes_covered` counts modes holding at least `min_mode_share` of the
high-quality samples a uniform generator would give them; `reverse_kl` is
KL(q || uniform) of the mode histogram q of the high-quality samples. The
papers ganzoo follows do not fix these thresholds; the defaults are ours
(README, "Metrics").

For every 2-D set, `mmd` is the squared MMD (sum of Gaussian kernels at
several bandwidths) between the first 1,000 samples and as many fresh real ones; for a
finite training set, `nn_train` is the mean distance from a sample to its
nearest training point (small = memorised).
"""
from __future__ import annotations

from typing import Dict, Optional

import torch
from torch import Tensor

from .registry import finite_or_none


def mode_metrics(samples: Tensor, modes: Tensor, std: float, hq_std: float = 3.0,
                 min_mode_share: float = 0.1) -> Dict[str, Optional[float]]:
    samples = samples.float().cpu()
    modes = modes.float().cpu()
    dist = torch.cdist(samples, modes)
    nearest_dist, nearest = dist.min(1)
    hq = nearest_dist <= hq_std * std
    n_modes = len(modes)
    counts = torch.bincount(nearest[hq], minlength=n_modes).double()
    n_hq = int(hq.sum())
    threshold = min_mode_share * n_hq / n_modes
    covered = int(((counts > 0) & (counts >= threshold)).sum())
    if n_hq == 0:
        kl = None  # no high-quality sample: the mode histogram is undefined
    else:
        q = counts / n_hq
        nz = q > 0
        kl = float((q[nz] * (q[nz] * n_modes).log()).sum())
    return {"modes_covered": covered, "high_quality": n_hq / len(samples), "reverse_kl": kl}


def mmd(x: Tensor, y: Tensor, scales=(0.05, 0.2, 1.0), max_n: int = 1000) -> float:
    """Biased estimate of squared MMD with a sum of Gaussian kernels (first max_n of each)."""
    x, y = x[:max_n].double().cpu(), y[:max_n].double().cpu()
    xy = torch.cat([x, y])
    d2 = torch.cdist(xy, xy).pow(2)
    k = sum(torch.exp(-d2 / (2 * s * s)) for s in scales)
    n = len(x)
    return float(k[:n, :n].mean() + k[n:, n:].mean() - 2 * k[:n, n:].mean())


def toy_metrics(samples: Tensor, data, reference: Tensor, hq_std: float = 3.0,
                min_mode_share: float = 0.1) -> Dict[str, Optional[float]]:
    out: Dict[str, Optional[float]] = {}
    if data.modes is not None:
        out.update(mode_metrics(samples, data.modes, data.std, hq_std, min_mode_share))
    out["mmd"] = mmd(samples, reference)
    if data.finite is not None:
        # float64: cdist's matmul shortcut in float32 makes a point's distance to itself ~1e-3, not 0
        out["nn_train"] = float(torch.cdist(samples.double().cpu(), data.finite.double()).min(1).values.mean())
    return {k: finite_or_none(v) for k, v in out.items()}
