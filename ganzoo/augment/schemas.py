"""The `augment` group's schema (no torch: config checks read it before a job starts)."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import List

from ..errors import check, in_unit, positive


class AugmentKind(StrEnum):
    none = "none"
    diffaugment = "diffaugment"   # Zhao et al., NeurIPS 2020
    ada = "ada"                   # Karras et al., NeurIPS 2020


POLICIES = ("color", "translation", "cutout")  # DiffAugment's, applied in this order


@dataclass
class AugmentConfig:
    """What D sees: every image a discriminator scores in training (reals and fakes alike, G's step
    included) goes through the augmentation first; `none` is today's training, bit for bit."""
    name: AugmentKind = AugmentKind.none
    # diffaugment: its policies (the paper's CIFAR runs use all three)
    policy: List[str] = field(default_factory=lambda: list(POLICIES))
    # ada: the probability each transformation applies with: where it starts (adaptive) or stays (fixed)
    p: float = 0.0
    adaptive: bool = True         # p follows the overfitting heuristic r_t = E[sign(D(real))]
    target: float = 0.6           # r_t's target (the paper's)
    speed_images: int = 500_000   # p can move from 0 to 1 in this many real images (the paper's 500k)
    interval: int = 4             # D steps between p's adjustments (the paper's 4 minibatches)
    groups: str = "bgc"           # the pipeline's groups: b (blit), g (geometric), c (colour)

    def check(self) -> None:
        unknown = [p for p in self.policy if p not in POLICIES]
        check(not unknown and len(self.policy) == len(set(self.policy)),
              f"augment.policy: give some of {', '.join(POLICIES)} (each once), got {list(self.policy)}")
        in_unit("augment.p", self.p)
        in_unit("augment.target", self.target)
        positive("augment.speed_images", self.speed_images)
        positive("augment.interval", self.interval)
        check(self.groups and set(self.groups) <= set("bgc") and len(set(self.groups)) == len(self.groups),
              f"augment.groups: some of the letters b, g, c (each once), got {self.groups!r}")
