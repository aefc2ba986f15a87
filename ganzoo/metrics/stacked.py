"""Modes of a stacked dataset (data/files.py, `stacked_from`): each channel of an image is classified by
the base dataset's classifier, and the three classes name one of 1,000 modes (Stacked MNIST's protocol:
VEEGAN, PacGAN, Unrolled GAN). A classifier that errs sees fewer than 1,000 modes even in real data, so
every score comes with what real images of the same count score and what a perfect generator would be
expected to score under the classifier's confusion."""
from __future__ import annotations

from typing import Dict

import torch
import torch.nn.functional as F
from torch import Tensor

from ..data.pixels import to_float

MODES = 1000
CLASSES = 10


class StackedModes:
    """An extractor (fidelity.Extractor's call): uint8 (N, 3, H, W) -> {"modes": the mode of each image,
    "features": the classifier's features of the three channels side by side (the space the k-NN scores
    of metrics/prdc.py use on a stacked set)}."""
    name = "ganzoo-stacked-modes"

    def __init__(self, classifier, base_name: str, base_test, device: torch.device):
        self.net = classifier.model
        self.weights, self.sha256, self.base_name = str(classifier.path), classifier.sha256, base_name
        self.layers = {"modes": "modes", "features": "features"}
        self.confusion = confusion(self.net, base_test, device)

    def __call__(self, rgb_u8: Tensor, device: torch.device) -> Dict[str, Tensor]:
        parts = [run(self.net, rgb_u8[:, i:i + 1], device) for i in range(3)]
        c = [logits.argmax(1) for _, logits in parts]
        return {"modes": (100 * c[0] + 10 * c[1] + c[2]).float(), "features": torch.cat([f for f, _ in parts], 1)}


@torch.no_grad()
def run(net, x_u8: Tensor, device: torch.device):
    """(N, 1, H, W) uint8 -> the classifier's (features, logits) of each image, on the CPU."""
    net = net.to(device)
    feats, logits = [], []
    for chunk in x_u8.split(1000):
        x = chunk.to(device).float()
        if x.shape[-1] != net.resolution:
            x = F.interpolate(x, size=(net.resolution,) * 2, mode="bilinear", antialias=True, align_corners=False)
        f, g = net(to_float(x))
        feats.append(f.float().cpu())
        logits.append(g.float().cpu())
    return torch.cat(feats), torch.cat(logits)


def classify(net, x_u8: Tensor, device: torch.device) -> Tensor:
    """(N, 1, H, W) uint8 -> the classifier's class of each image."""
    return run(net, x_u8, device)[1].argmax(1)


def confusion(net, test, device: torch.device) -> Tensor:
    """(10, 10) counts: row = true class, column = the classifier's class, on the base test split."""
    pred = classify(net, test.x, device)
    return torch.bincount(test.y.long() * CLASSES + pred, minlength=CLASSES * CLASSES).view(CLASSES, CLASSES).double()


def mode_scores(modes: Tensor) -> Dict[str, float]:
    """modes: the 1,000 covered (with at least one sample) and KL(mode histogram || uniform)."""
    counts = torch.bincount(modes.long(), minlength=MODES).double()
    q = counts / counts.sum()
    nz = q > 0
    return {"modes": int(nz.sum()), "kl": float((q[nz] * (q[nz] * MODES).log()).sum())}


def expected_modes(confusion_counts: Tensor, n: int) -> float:
    """Modes a perfect generator (uniform over the 1,000) is expected to show in n samples when each
    channel is classified with this confusion: the classifier sees mode (a, b, c) with probability
    q_a q_b q_c, q the classes it predicts for a uniform true class; E = sum over modes of 1 - (1 - p)^n."""
    counts = confusion_counts.double()
    rows = counts / counts.sum(1, keepdim=True).clamp_min(1)
    q = rows.mean(0)
    p = (q[:, None, None] * q[None, :, None] * q[None, None, :]).flatten()
    return float((1 - (1 - p) ** n).sum())
