"""Data parallelism across processes: torchrun, or a SLURM job of several tasks.

N ranks train ONE run, the same as one process with the global batch:

- global draw, local slice: every rank draws the global batch of every random
  quantity (noise, penalty interpolates, candidates, permutations, the data
  stream's order) from the same generators and keeps its own rows, so every
  generator's position, and so a checkpoint, is the same at any world size;
- reduce where one process would have averaged: each player's gradients are
  averaged between backward and the optimiser step (before fp16 unscaling, so
  every rank's GradScaler skips together); aw averages its gradients and scores
  before its nonlinear weights (methods/aw.py);
- rank 0 alone decides (the run folder, resume, evaluation) and writes; the
  others receive its decisions and write nothing.

Not DDP: aw forms D's gradient with autograd.grad, which bypasses DDP's hooks,
and DDP broadcasts buffers and renames checkpoint keys. A `Shard` of world 1
makes every call here a no-op, so one process runs exactly the v1 code path.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import torch
from torch import Tensor

from .errors import GanzooError
from .ranks import launcher_environment, local_rank

# every collective waits at most this long: rank 0 evaluates (FID reference features, samples) while
# the others wait in their next collective, so it must cover the longest evaluation
TIMEOUT_MIN_ENV = "GANZOO_DIST_TIMEOUT_MIN"
DEFAULT_TIMEOUT_MIN = 120


class RanksDiverged(GanzooError):
    exit_code = 4


@dataclass
class Shard:
    """This process's place in the run: rank of world. `groups` > 1 slices a batch made of that many
    equal blocks block by block (microbatch's K microbatches: every rank keeps its share of each)."""
    rank: int = 0
    world: int = 1
    groups: int = 1
    traffic: Dict[str, int] = field(default_factory=lambda: {"bytes": 0})  # reduced or gathered; shared by copies

    @property
    def leader(self) -> bool:
        return self.rank == 0

    def grouped(self, groups: int) -> "Shard":
        return Shard(self.rank, self.world, groups, self.traffic)

    def rows(self, n: int) -> int:
        """How many of n global rows this rank holds."""
        return n // self.world

    def local(self, t: Tensor, groups: Optional[int] = None) -> Tensor:
        """This rank's rows of a global batch t (its dim 0)."""
        if self.world == 1:
            return t
        g = self.groups if groups is None else groups
        n = t.shape[0]
        if n % (g * self.world):
            raise ValueError(f"{n} rows do not split into {g} block(s) over {self.world} ranks")
        blocks = t.view(g, self.world, n // (g * self.world), *t.shape[1:])
        return blocks[:, self.rank].reshape(n // self.world, *t.shape[1:])

    def rows_of(self, draw: Callable[[int], Tensor], n_local: int) -> Tensor:
        """This rank's rows of a global draw: draw(n_local * world), sliced (draw(n_local) alone)."""
        return self.local(draw(n_local * self.world))

    def global_index(self, n_local: int, device=None) -> Tensor:
        """The global row numbers of this rank's n_local rows (contiguous slicing)."""
        return torch.arange(self.rank * n_local, (self.rank + 1) * n_local, device=device)

    # ---------------------------------------------------------------- collectives
    def mean_(self, tensors: Sequence[Tensor]) -> None:
        """Average tensors across ranks in place, as one flat all-reduce."""
        if self.world == 1 or not tensors:
            return
        import torch.distributed as dist
        flat = torch.cat([t.reshape(-1) for t in tensors])
        dist.all_reduce(flat)
        flat /= self.world
        self.traffic["bytes"] += flat.numel() * flat.element_size()
        offset = 0
        for t in tensors:
            t.copy_(flat[offset:offset + t.numel()].view_as(t))
            offset += t.numel()

    def average_grads(self, params: Sequence[torch.nn.Parameter]) -> None:
        self.mean_([p.grad for p in params if p.grad is not None])

    def mean_stats(self, stats: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """A step's logged scalars averaged across ranks: each is a mean over this rank's equal share
        of the batch, or the same on every rank, so the average is what one process logs."""
        if self.world == 1 or not stats:
            return stats
        keys = sorted(stats)
        values = torch.stack([stats[k].detach().float().reshape(()).cpu() for k in keys])
        self.mean_([values])
        return dict(zip(keys, values.unbind()))

    def gather(self, t: Tensor) -> Tensor:
        """Every rank's t concatenated along dim 0 in rank order (equal shapes)."""
        if self.world == 1:
            return t
        import torch.distributed as dist
        parts = [torch.empty_like(t) for _ in range(self.world)]
        dist.all_gather(parts, t.contiguous())
        self.traffic["bytes"] += t.numel() * t.element_size() * self.world
        return torch.cat(parts)

    def local_block(self, n: int) -> range:
        """This rank's contiguous block of n items (the first n % world ranks hold one more)."""
        q, r = divmod(n, self.world)
        start = self.rank * q + min(self.rank, r)
        return range(start, start + q + (self.rank < r))

    def gather_objects(self, obj) -> list:
        """Every rank's obj (pickled; any sizes), in rank order."""
        if self.world == 1:
            return [obj]
        import torch.distributed as dist
        out = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def max(self, value: int) -> int:
        """The largest of the ranks' values (a signal that reached one rank stops all)."""
        if self.world == 1:
            return value
        import torch.distributed as dist
        t = torch.tensor([value], dtype=torch.int64)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return int(t.item())

    def broadcast(self, obj=None):
        """Rank 0's obj on every rank."""
        if self.world == 1:
            return obj
        import torch.distributed as dist
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist
            dist.barrier()

    def check_same(self, step: int, state: dict) -> None:
        """Stop before a checkpoint when the ranks' weights differ: a checksum of every floating
        tensor of the method's state, compared across ranks."""
        if self.world == 1:
            return
        sums = checksum(state)
        every = self.gather(sums.unsqueeze(0))
        if not torch.equal(every.min(0).values, every.max(0).values):
            raise RanksDiverged(f"the {self.world} ranks hold different weights at step {step} (checksums "
                                f"differ); not saving them. The last checkpoint is intact: a rank ran "
                                f"different code or data, or a nondeterministic kernel; resume from it")


def checksum(state) -> Tensor:
    """Float64 sums and sums of squares of every floating tensor in a nested state."""
    values: List[Tensor] = []

    def walk(x) -> None:
        if isinstance(x, Tensor):
            if x.is_floating_point():
                d = x.detach().double()
                values.append(torch.stack([d.sum(), d.square().sum()]).cpu())
        elif isinstance(x, dict):
            for k in sorted(x, key=str):
                walk(x[k])
        elif isinstance(x, (list, tuple)):
            for v in x:
                walk(v)
    walk(state)
    return torch.cat(values) if values else torch.zeros(1, dtype=torch.float64)


# ---------------------------------------------------------------- the process group
def join(device_type: str = "cpu") -> Shard:
    """This process's Shard; the process group is started when the world has several ranks."""
    os.environ.update(launcher_environment(dict(os.environ)))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Shard()
    import torch.distributed as dist
    rank = int(os.environ["RANK"])
    if not dist.is_initialized():
        minutes = float(os.environ.get(TIMEOUT_MIN_ENV, DEFAULT_TIMEOUT_MIN))
        backend = "cpu:gloo,cuda:nccl" if device_type == "cuda" else "gloo"
        if device_type == "cuda":
            torch.cuda.set_device(local_rank())
        dist.init_process_group(backend, timeout=datetime.timedelta(minutes=minutes))
    return Shard(rank, world)


def leave() -> None:
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
