"""Pixel conversions between how images are stored (uint8 [0, 255]) and what the nets see
(float [-1, 1]). Its own module so that metrics and data can both use it without importing
each other."""
from __future__ import annotations

import torch
from torch import Tensor


def to_float(x: Tensor) -> Tensor:
    """uint8 [0, 255] -> float [-1, 1], the generator's output range (a new tensor)."""
    return x.float().div(127.5).sub_(1.0)


def to_uint8(x: Tensor) -> Tensor:
    """float [-1, 1] (generator output) -> uint8 [0, 255], rounded (the inverse of to_float on the
    grid; what torch-fidelity expects and how the real data is stored)."""
    return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round_().to(torch.uint8)
