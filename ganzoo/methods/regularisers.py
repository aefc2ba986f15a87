"""Terms of D's (and, for zCR, G's) loss that compose with every loss family and penalty: LeCam
regularisation and consistency regularisation (bCR, zCR). The baseline's d_terms and g_loss add them
(methods/gan.py), so every method built on them has them; config.py refuses the ones a method cannot take.

- LeCam (Tseng, Jiang, Liu, Yang, "Regularizing Generative Adversarial Networks under Limited Data", CVPR
  2021): R = E[relu(D(x) - a_F)^2] + E[relu(a_R - D(G(z)))^2], a_R and a_F exponential moving averages
  of D's mean real and fake outputs. The paper writes the squared differences; the authors' released code
  clamps each at 0 first (a one-sided penalty), which is followed here.
- bCR (Zhao, Singh, Lee, Zhang, Odena, Zhang, "Improved Consistency Regularization for GANs", AAAI 2021):
  lambda_real ||D(x) - D(T(x))||^2 + lambda_fake ||D(G(z)) - D(T(G(z)))||^2, T a random horizontal flip
  and a translation of up to 1/8 of the side (the paper's flip-and-translate; zeros move in here).
- zCR (same paper): D gets lambda_dis ||D(G(z)) - D(G(z + dz))||^2 and G gets
  -lambda_gen ||G(z) - G(z + dz)||^2 (mean over pixels), dz ~ N(0, sigma^2 I).
Random draws come from the method's noise stream, as the global batch and this rank's rows of it.
"""
from __future__ import annotations

from typing import Callable, Dict

import torch
import torch.nn.functional as F
from torch import Tensor

from ..augment import diffaugment


class LeCam:
    def __init__(self, weight: float, decay: float, device: torch.device, shard):
        self.weight, self.decay, self.shard = weight, decay, shard
        self.anchors = torch.zeros(2, device=device)  # (a_R, a_F)

    def term(self, l_real: Tensor, l_fake: Tensor) -> Tensor:
        means = torch.stack([l_real.detach().mean(), l_fake.detach().mean()]).float()
        if self.shard.world > 1:  # equal shares: the mean of the ranks' means is one process's
            self.shard.mean_([means])
        self.anchors.lerp_(means, 1 - self.decay)
        a_real, a_fake = self.anchors.unbind()
        return self.weight * (F.relu(l_real - a_fake).pow(2).mean() + F.relu(a_real - l_fake).pow(2).mean())


def flip_translate(x: Tensor, draw: Callable[[Callable[[int], Tensor], int], Tensor], generator) -> Tensor:
    """bCR's T on a batch of images; `draw(fn, n_local)` returns this rank's rows of fn(global n)."""
    n, _, h, w = x.shape
    flip = draw(lambda m: torch.rand(m, generator=generator, device=x.device) < 0.5, n)
    sh, sw = int(h * diffaugment.TRANSLATE), int(w * diffaugment.TRANSLATE)
    shift = draw(lambda m: torch.stack([torch.randint(-sh, sh + 1, (m,), generator=generator, device=x.device),
                                        torch.randint(-sw, sw + 1, (m,), generator=generator, device=x.device)], 1), n)
    x = torch.where(flip.view(n, 1, 1, 1), x.flip(3), x)
    return diffaugment.translation(x, {"shift": shift})


def bcr_term(critic: Callable, real: Tensor, fake: Tensor, l_real: Tensor, l_fake: Tensor, weights,
             draw, generator, real_y=None, fake_y=None) -> Tensor:
    out = real.new_zeros(()).float()
    if weights.bcr_real > 0:
        out = out + weights.bcr_real * (l_real - critic(flip_translate(real, draw, generator), y=real_y).float()).pow(2).mean()
    if weights.bcr_fake > 0:
        out = out + weights.bcr_fake * (l_fake - critic(flip_translate(fake, draw, generator), y=fake_y).float()).pow(2).mean()
    return out


def state(lecam) -> Dict[str, Tensor]:
    return {"lecam_anchors": lecam.anchors.clone()} if lecam is not None else {}
