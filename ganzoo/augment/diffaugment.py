"""DiffAugment (Zhao, Liu, Lin, Zhu and Han, "Differentiable Augmentation for Data-Efficient GAN
Training", NeurIPS 2020), written from the paper's description: three policies applied to every image D
scores, real or fake, each differentiable so G learns through them.

- color: brightness (add U(-0.5, 0.5)), saturation (scale each pixel's distance to its channel mean by
  U(0, 2)), contrast (scale the distance to the image mean by U(0.5, 1.5)), in that order;
- translation: shift by a whole number of pixels in [-H/8, H/8] and [-W/8, W/8], zeros moving in;
- cutout: zero a square of half the image's side at a uniformly random centre (clipped at the border).

`draw(n, ...)` makes the random parameters of n images (a pure function of the generator's state, so a
caller can draw a global batch and keep its rows); `apply(x, params)` transforms.
"""
from __future__ import annotations

from typing import Dict, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

TRANSLATE, CUTOUT = 1 / 8, 1 / 2   # the paper's ratios


def draw(n: int, size: Sequence[int], generator: torch.Generator, device) -> Dict[str, Tensor]:
    """Every policy's parameters for n images of size (H, W), drawn whatever the policy (so the stream
    moves alike for every policy)."""
    h, w = size
    u = torch.rand(n, 3, generator=generator, device=device)
    sh, sw = int(h * TRANSLATE), int(w * TRANSLATE)
    shift = torch.stack([torch.randint(-sh, sh + 1, (n,), generator=generator, device=device),
                         torch.randint(-sw, sw + 1, (n,), generator=generator, device=device)], 1)
    centre = torch.stack([torch.randint(0, h, (n,), generator=generator, device=device),
                          torch.randint(0, w, (n,), generator=generator, device=device)], 1)
    return {"brightness": u[:, 0] - 0.5, "saturation": u[:, 1] * 2, "contrast": u[:, 2] + 0.5,
            "shift": shift, "centre": centre}


def color(x: Tensor, p: Dict[str, Tensor]) -> Tensor:
    x = x + p["brightness"].view(-1, 1, 1, 1).to(x.dtype)
    mean = x.mean(1, keepdim=True)
    x = (x - mean) * p["saturation"].view(-1, 1, 1, 1).to(x.dtype) + mean
    mean = x.mean((1, 2, 3), keepdim=True)
    return (x - mean) * p["contrast"].view(-1, 1, 1, 1).to(x.dtype) + mean


def translation(x: Tensor, p: Dict[str, Tensor]) -> Tensor:
    """Pixel (i, j) moves to (i + dy, j + dx); zeros fill what comes in."""
    n, c, h, w = x.shape
    sh, sw = int(h * TRANSLATE), int(w * TRANSLATE)
    padded = F.pad(x, (sw, sw, sh, sh))
    rows = torch.arange(h, device=x.device) + sh - p["shift"][:, 0:1]          # (n, h)
    cols = torch.arange(w, device=x.device) + sw - p["shift"][:, 1:2]          # (n, w)
    out = padded.gather(2, rows.view(n, 1, h, 1).expand(n, c, h, padded.shape[3]))
    return out.gather(3, cols.view(n, 1, 1, w).expand(n, c, h, w))


def cutout(x: Tensor, p: Dict[str, Tensor]) -> Tensor:
    """Zero the rows [cy - H/4, cy - H/4 + H/2) x columns [cx - W/4, ...) of each image (clipped)."""
    n, _, h, w = x.shape
    ch, cw = int(h * CUTOUT), int(w * CUTOUT)
    top = (p["centre"][:, 0] - ch // 2).view(n, 1)
    left = (p["centre"][:, 1] - cw // 2).view(n, 1)
    i = torch.arange(h, device=x.device).view(1, h)
    j = torch.arange(w, device=x.device).view(1, w)
    inside_rows = (i >= top) & (i < top + ch)                                   # (n, h)
    inside_cols = (j >= left) & (j < left + cw)                                 # (n, w)
    keep = ~(inside_rows.view(n, 1, h, 1) & inside_cols.view(n, 1, 1, w))
    return x * keep.to(x.dtype)


POLICY = {"color": color, "translation": translation, "cutout": cutout}


def apply(x: Tensor, params: Dict[str, Tensor], policy: Sequence[str]) -> Tensor:
    for name in ("color", "translation", "cutout"):  # the paper's order, whatever order the config lists
        if name in policy:
            x = POLICY[name](x, params)
    return x
