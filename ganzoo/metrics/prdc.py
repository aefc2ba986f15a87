"""Precision, recall, density and coverage on k-nearest-neighbour balls (Naeem et al., "Reliable
Fidelity and Diversity Metrics for Generative Models", ICML 2020), on any feature space.

Each real feature r_i has a ball of radius rad(r_i), its distance to its k-th nearest other real
feature (fakes alike for recall). With d the Euclidean distance and [.] 1 when true:

    precision = mean_j [ exists i: d(f_j, r_i) < rad(r_i) ]         fakes inside the real manifold
    recall    = mean_i [ exists j: d(r_i, f_j) < rad(f_j) ]         reals inside the fake manifold
    density   = (1 / k) mean_j  sum_i [ d(f_j, r_i) < rad(r_i) ]     how many real balls hold a fake
    coverage  = mean_i [ min_j d(r_i, f_j) < rad(r_i) ]             real balls that hold any fake

density and coverage fix precision's and recall's sensitivity to outliers (one far real point makes
a huge ball). The comparisons are strict, as in the authors' `prdc` package. Distances are taken a
block of rows at a time on the features' device, so no N x N matrix is held beyond `block` rows.
"""
from __future__ import annotations

from typing import Dict, Optional

import torch
from torch import Tensor

BLOCK_ELEMENTS = 1 << 24  # distances held at once (64 MiB of float32)


def _rows(n_other: int) -> int:
    return max(1, BLOCK_ELEMENTS // max(1, n_other))


def knn_radii(x: Tensor, k: int) -> Tensor:
    """Each row's distance to its k-th nearest other row of x (the row itself, at distance 0, is not
    counted: the (k+1)-th smallest of its distances)."""
    if not 1 <= k < len(x):
        raise ValueError(f"k={k} nearest neighbours need more than k rows, got {len(x)}")
    x = x.float()
    step = _rows(len(x))
    return torch.cat([torch.cdist(x[a:a + step], x).kthvalue(k + 1, dim=1).values for a in range(0, len(x), step)])


def prdc(real: Tensor, fake: Tensor, k: int = 5, real_radii: Optional[Tensor] = None) -> Dict[str, float]:
    """The four scores of the module docstring; `real_radii`: knn_radii(real, k), when cached. With k
    or fewer rows on either side there are no k-th neighbours: every score is NaN (not a number to rank)."""
    if min(len(real), len(fake)) <= k:
        return dict.fromkeys(("precision", "recall", "density", "coverage"), float("nan"))
    real, fake = real.float(), fake.to(real.device).float()
    r_rad = knn_radii(real, k) if real_radii is None else real_radii.to(real.device).float()
    f_rad = knn_radii(fake, k)
    inside = torch.zeros(len(fake), dtype=torch.bool, device=real.device)
    balls = torch.zeros(len(fake), device=real.device)
    step = _rows(len(real))
    for a in range(0, len(fake), step):  # fakes against every real ball
        d = torch.cdist(fake[a:a + step], real)
        hit = d < r_rad.unsqueeze(0)
        inside[a:a + step], balls[a:a + step] = hit.any(1), hit.sum(1).float()
    reached = torch.zeros(len(real), dtype=torch.bool, device=real.device)
    covered = torch.zeros(len(real), dtype=torch.bool, device=real.device)
    step = _rows(len(fake))
    for a in range(0, len(real), step):  # reals against every fake ball, and their nearest fake
        d = torch.cdist(real[a:a + step], fake)
        reached[a:a + step] = (d < f_rad.unsqueeze(0)).any(1)
        covered[a:a + step] = d.min(1).values < r_rad[a:a + step]
    return {"precision": inside.float().mean().item(), "recall": reached.float().mean().item(),
            "density": (balls.mean() / k).item(), "coverage": covered.float().mean().item()}
