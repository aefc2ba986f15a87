"""What the training loop, evaluation and sampling ask of a method: all they may use.

GAN (methods/gan.py) and every method built on it satisfy this; the loop is written against
it and never against a method's class, so a new method is a class with these members, a
record in methods/build.py and a schema (docs/ARCHITECTURE.md, "Adding a method").
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Protocol, Tuple, runtime_checkable

import torch
from torch import Tensor, nn

from ..distributed import Shard

Stats = Dict[str, Tensor]
SampleFn = Callable[..., Tuple[Tensor, Tensor]]


@runtime_checkable
class Method(Protocol):
    G: nn.Module               # the trained generator(s); its size is reported at start
    D: nn.Module               # the trained discriminator(s)
    shard: Shard               # this process's rank of the run: the data stream slices by it
    num_generators: int        # the generator indices a sample can carry
    picture_rows: int          # rows of `sample_each` in a picture
    conditional: bool          # G(z, y) and D(x, y): `sample` takes the classes asked for as `y`
    augment: Optional[object]  # what D sees (augment/pipeline.py), or None; pictured as reals seen through it

    def step(self, draw_real: Callable[..., Tensor], log: bool = False) -> Stats:
        """One generator iteration; detached scalars (the costly ones only when `log`)."""

    def sample(self, n: int, generator: Optional[torch.Generator] = None, chunk: int = 4096,
               y: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """n samples of the trained model and the index of the generator that made each; a conditional
        model makes class y[i] in row i (drawn when y is None)."""

    def sample_each(self, n: int, generator: torch.Generator, y: Optional[Tensor] = None) -> List[Tensor]:
        """n samples from every generator: one row each in a picture."""

    def surface(self, x: Tensor) -> Tensor:
        """D's logits on x in eval mode (pictures and per-mode scores on 2-D data)."""

    def scored_parts(self) -> Dict[str, SampleFn]:
        """Players `ganzoo eval` scores on their own besides the model's output."""

    def networks(self) -> List[nn.Module]:
        """Every trained net (compile, memory format, batchnorm sync)."""

    def double_backward(self) -> List[nn.Module]:
        """The nets whose loss differentiates an input gradient."""

    def state_dict(self) -> dict:
        """Everything a resume needs, bit for bit."""

    def load_state_dict(self, state: dict) -> None:
        ...
