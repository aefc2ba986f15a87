"""Divergence: a run whose losses or weights are no longer finite (or explode past a bound)
stops before it writes anything from them."""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Tuple

import torch

from .errors import GanzooError


class Diverged(GanzooError):
    exit_code = 3

    def __init__(self, message: str, step: int):
        super().__init__(message)
        self.step = step


def check_losses(step: int, values: Dict[str, float], max_loss: Optional[float]) -> None:
    """The logged losses (already on the host: no extra sync)."""
    for key, value in values.items():
        if "loss/" not in key:
            continue
        player = loss_player(key)
        if not math.isfinite(value):
            raise Diverged(f"diverged at step {step}: {key} = {value} (player {player})", step)
        if max_loss is not None and abs(value) > max_loss:
            raise Diverged(f"diverged at step {step}: |{key}| = {abs(value):.4g} > watchdog.max_loss={max_loss:g} "
                           f"(player {player})", step)


def loss_player(key: str) -> str:
    """The player a logged loss is of: loss/d -> D, loss/d_penalty -> D, local1/loss/g -> local1/G."""
    prefix, _, name = key.rpartition("loss/")
    base = name.split("_", 1)[0]
    return prefix + (base.upper() if base in ("d", "g") else base)


def _float_tensors(state, path: str, out: List[Tuple[str, torch.Tensor]]) -> None:
    if isinstance(state, torch.Tensor):
        if state.is_floating_point() and state.numel() > 0:
            out.append((path, state))
    elif isinstance(state, dict):
        for key, value in state.items():
            _float_tensors(value, f"{path}.{key}" if path else str(key), out)
    elif isinstance(state, (list, tuple)):
        for i, value in enumerate(state):
            _float_tensors(value, f"{path}[{i}]", out)


def check_state(step: int, method, losses: Optional[Dict[str, float]] = None) -> None:
    """Everything a checkpoint would save (weights, buffers, optimiser moments, betas) finite,
    with one device-to-host sync in all: what is non-finite must never reach ckpt/."""
    tensors: List[Tuple[str, torch.Tensor]] = []
    _float_tensors(method.state_dict(), "", tensors)
    if not tensors:
        return
    by_device: Dict[torch.device, List[int]] = {}
    for i, (_, t) in enumerate(tensors):
        by_device.setdefault(t.device, []).append(i)
    good = [True] * len(tensors)
    for indices in by_device.values():  # one transfer per device
        # min and max are finite iff every element is (NaN propagates through both): one reduction per
        # tensor, where isfinite().all() writes a whole mask first
        flags = torch.stack([torch.stack(torch.aminmax(tensors[i][1].detach())).float() for i in indices])
        flags = flags.isfinite().all(dim=1).cpu().tolist()
        for i, flag in zip(indices, flags):
            good[i] = flag
    bad = [name for (name, _), ok in zip(tensors, good) if not ok]
    if not bad:
        return
    more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
    shown = "  ".join(f"{k}={v:.4g}" for k, v in (losses or {}).items() if k.startswith("loss/"))
    raise Diverged(f"diverged at step {step}: player {player_of(bad[0])} has non-finite values ({bad[0]}{more})"
                   + (f"; last logged losses {shown}" if shown else ""), step)


def player_of(path: str) -> str:
    """The player a state entry belongs to: "opt_g.state.0.exp_avg" -> G, "pairs[1].D.net.0.weight"
    -> pairs[1].D."""
    parts = []
    for part in path.split("."):
        if part.startswith(("opt_", "sched_")):
            parts.append(part.split("_", 1)[1].upper())
            break
        parts.append(part)
        if part[:1].isupper() or part == "beta":
            break
    return ".".join(parts)
