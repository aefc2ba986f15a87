"""The real-data stream: seeded, and resumable to the exact batch.

Three sources, one interface (`stream(n)` -> a float batch on the device; with `labelled`, the
batch and its class labels):
an infinite 2-D distribution is sampled afresh; a finite set held in memory
(toy points, MNIST-like, CIFAR, STL) is visited in seeded permutations,
batched by index on the device; a large image set is read through a
DataLoader over the same seeded permutations. The whole position is a small
state dict that goes into the checkpoint.

Under several ranks a draw is global: `stream(n)` moves the one seeded order by
n items and returns this rank's share of them (distributed.Shard), so the
position, and a checkpoint, is the same at any world size. A DataLoader source
then reads and decodes only this rank's items of each draw: its loader runs
ahead over the draws to come, planned at the size of the last draw (a draw of
another size, or one across an epoch's end, is read on its own).
"""
from __future__ import annotations

from typing import Iterator, List, Optional

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Subset

from ..distributed import Shard


class Stream:
    def __init__(self, data, batch_size: int, seed: int, device: torch.device, workers: int = 0,
                 shard: Shard = Shard(), labelled: bool = False):
        self.data = data
        self.labelled = labelled
        self.shard = shard
        self.batch_size = batch_size
        self.device = device
        self.workers = workers
        self.generator = torch.Generator().manual_seed(seed + 7919)
        self.sampler_gen = torch.Generator(device=device).manual_seed(seed + 7919)
        self.items: Optional[Tensor] = None if data.finite is None else data.finite.to(device)
        self.labels: Optional[Tensor] = None
        if labelled and self.items is not None:
            self.labels = data.finite_labels.to(device)
        self.size = len(self.items) if self.items is not None else (
            len(data.images("train")) if hasattr(data, "images") else 0)
        self.decode = getattr(data, "decode", None)
        self.perm: Optional[Tensor] = None   # this epoch's order, on the CPU (it goes into checkpoints)
        self._perm_device: Optional[Tensor] = None  # the same, copied to the device once per epoch
        self.pos = 0
        self.epoch = 0
        self._loader: Optional[Iterator] = None
        self._buffer: List[Tensor] = []
        self._plan: Optional[tuple] = None  # sharded loader: (draw size, global position of its next draw)
        self.decoded = 0  # items this process read through a loader (the sharding test counts them)

    def __call__(self, n: Optional[int] = None):
        n = self.batch_size if n is None else n
        if self.size == 0:
            if self.labelled:
                x, y = self.data.sample_labelled(n, self.sampler_gen, self.device)
                return self.shard.local(x), self.shard.local(y)
            return self.shard.local(self.data.sample(n, self.sampler_gen, self.device))
        if self.items is not None:
            index = self.shard.local(self._indices(n))
            batch = self.items[index]
            batch = self.decode(batch) if self.decode is not None else batch
            return (batch, self.labels[index]) if self.labelled else batch
        x, y = self._sharded(n) if self.shard.world > 1 else self._from_loader(n)
        return (x, y) if self.labelled else x

    def _next_perm(self) -> None:
        self._set_perm(torch.randperm(self.size, generator=self.generator))
        self.pos = 0
        self.epoch += 1

    def _set_perm(self, perm: Optional[Tensor]) -> None:
        """The order is drawn on the CPU (the same on every device); a draw then slices a copy on the
        device, so an in-memory batch costs no host-to-device copy and no sync."""
        self.perm = perm
        self._perm_device = None
        if perm is not None and self.items is not None:
            if self.device.type == "cuda":
                self._perm_device = perm.pin_memory().to(self.device, non_blocking=True)
            else:
                self._perm_device = perm.to(self.device)

    def _take(self, n: int, order) -> Tensor:
        """The next n items of the seeded order (`order()`: this epoch's, on the device or the CPU), moving
        the position and opening new epochs as a draw does."""
        parts = []
        while n > 0:
            if self.perm is None or self.pos >= len(self.perm):
                self._next_perm()
            take = min(n, len(self.perm) - self.pos)
            parts.append(order()[self.pos:self.pos + take])
            self.pos += take
            n -= take
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def _indices(self, n: int) -> Tensor:
        return self._take(n, lambda: self._perm_device)

    # ------------------------------------------------------------ DataLoader source
    def _from_loader(self, n: int) -> Tensor:
        """Serve exactly the items perm[pos:pos+n]; the loader runs ahead with workers, and
        `pos` counts items served, so a resumed stream restarts its loader at perm[pos:]."""
        out, out_y, have = [], [], 0
        while have < n:
            if not self._buffer:
                if self.perm is None or self.pos >= len(self.perm):
                    self._next_perm()
                    self._loader = None
                if self._loader is None:
                    self._loader = self._open_loader()
                try:
                    self._buffer = [next(self._loader)]
                except BaseException:
                    self.close()
                    raise
            chunk, labels = self._buffer.pop()
            take = min(n - have, len(chunk), len(self.perm) - self.pos)
            self.decoded += take
            # each piece goes to the device as it comes (pinned, so without a sync); a cat on the host
            # first would make an unpinned copy whose transfer blocks
            out.append(chunk[:take].to(self.device, non_blocking=True))
            out_y.append(labels[:take])
            if take < len(chunk):
                self._buffer.append((chunk[take:], labels[take:]))
            self.pos += take
            have += take
            if self.pos >= len(self.perm):  # the epoch ends: the rest of its loader is stale
                self.close()
        return (self.decode(torch.cat(out) if len(out) > 1 else out[0]),
                torch.cat(out_y).to(self.device, non_blocking=True))

    def _global(self, n: int) -> Tensor:
        """The next n items of the seeded order, on the CPU (a loader reads them)."""
        return self._take(n, lambda: self.perm)

    def _sharded(self, n: int) -> Tensor:
        """This rank's items of the next n, read and decoded here alone."""
        start, epoch = self.pos, self.epoch
        if self.perm is None or self.pos >= len(self.perm):
            start, epoch = 0, self.epoch + 1  # the draw opens a new epoch
        within = start + n <= self.size
        index = self.shard.local(self._global(n))
        if not within:  # across an epoch's end: read on its own
            self.close()
            batch, labels = _read(self.data.images("train"), index)
        else:
            if self._plan != (n, start, epoch):
                self.close()
                self._loader = self._open_sharded(n, start)
            batch, labels = next(self._loader)
            self._plan = (n, start + n, epoch)
            if start + n >= self.size:
                self.close()
        self.decoded += len(index)
        return self.decode(batch.to(self.device, non_blocking=True)), labels.to(self.device, non_blocking=True)

    def _open_sharded(self, n: int, start: int) -> Iterator:
        """A loader over this rank's items of the draws of n from `start` to the epoch's end."""
        draws = [self.shard.local(self.perm[p:p + n]).tolist() for p in range(start, self.size - n + 1, n)]
        loader = DataLoader(self.data.images("train"), batch_sampler=draws, num_workers=self.workers,
                            pin_memory=self.device.type == "cuda", persistent_workers=False,
                            collate_fn=_stack_images)
        return iter(loader)

    def close(self) -> None:
        """Stop the loader's worker processes now; the next draw opens a new loader at `pos`. Dropping
        the iterator stops them too while nothing else holds it, but a raised error's traceback does:
        the workers of a loader that raised were then left to a later garbage collection, which
        waited torch's 5 s timeout per worker in whatever ran then (a job of the same sweep)."""
        loader, self._loader, self._buffer, self._plan = self._loader, None, [], None
        shutdown = getattr(loader, "_shutdown_workers", None)  # what the iterator's __del__ calls
        if shutdown is not None:
            shutdown()

    def _open_loader(self) -> Iterator:
        subset = Subset(self.data.images("train"), self.perm[self.pos:].tolist())
        loader = DataLoader(subset, batch_size=self.batch_size, shuffle=False, num_workers=self.workers,
                            pin_memory=self.device.type == "cuda", drop_last=False,
                            persistent_workers=False, collate_fn=_stack_images)
        return iter(loader)

    # ------------------------------------------------------------ checkpoint state
    def state_dict(self) -> dict:
        return {
            "generator": self.generator.get_state(),
            "sampler": self.sampler_gen.get_state(),
            "perm": self.perm if self.perm is not None else torch.empty(0, dtype=torch.long),
            "has_perm": self.perm is not None,
            "pos": self.pos,
            "epoch": self.epoch,
        }

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.sampler_gen.set_state(state["sampler"])
        self._set_perm(state["perm"] if state["has_perm"] else None)
        self.pos = int(state["pos"])
        self.epoch = int(state["epoch"])
        self.close()


def _stack_images(items):
    """A loader's batch: the images and their labels (-1 where the set has none)."""
    return torch.stack([x for x, _ in items]), torch.tensor([int(y) for _, y in items], dtype=torch.long)


def _read(dataset, index: Tensor):
    return _stack_images([dataset[i] for i in index.tolist()])
