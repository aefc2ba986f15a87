"""Everything a run writes for a person to read: TensorBoard, metrics.jsonl, PNGs, progress.

The loop hands it plain numbers and pictures; methods never see it.
"""
from __future__ import annotations

import io
import json
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Dict, Optional

import numpy as np

from .checkpoint import atomic_write
from .metrics.registry import finite_or_none

log = logging.getLogger("ganzoo")


_clean = finite_or_none


def format_metrics(metrics: dict) -> str:
    """Scalars only (protocols and histograms stay in metrics.jsonl)."""
    return "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()
                     if v is None or isinstance(v, (int, float)))


def append_line(path: Path, line: str) -> None:
    """Append one line to a log such as metrics.jsonl in a single write() of the whole line, so a kill
    leaves all of it or none of it. Should an earlier writer have left a torn line (no newline at the
    end), that line is ended first: the torn part stays a line of its own, which readers skip, and is
    never glued to this one. A failed write (a full disk) cuts the file back to its old length and
    raises the OSError naming `path`."""
    data = (line.rstrip("\n") + "\n").encode()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data
        view = memoryview(data)
        try:
            while view:  # a regular file takes it in one write; a short write goes on or raises
                view = view[os.write(fd, view):]
        except OSError as exc:
            os.ftruncate(fd, size)
            exc.filename = exc.filename or str(path)
            raise
    finally:
        os.close(fd)


class RunLogger:
    def __init__(self, run_dir: Path, steps: int, start_step: int, log_every: int):
        self.run_dir = Path(run_dir)
        self.steps = steps
        self.start_step = start_step
        # purge_step hides events a killed run wrote after its last checkpoint
        from torch.utils.tensorboard import SummaryWriter  # here: sample and eval format metrics without it
        self.writer = SummaryWriter(str(self.run_dir), purge_step=start_step + 1 if start_step else None)
        self.metrics_path = self.run_dir / "metrics.jsonl"
        self._truncate_metrics(start_step)
        self.interactive = sys.stdout.isatty()
        self.line_every = max(log_every, steps // 20, 1)
        self.bar = None
        if self.interactive:
            from tqdm import tqdm
            self.bar = tqdm(total=steps, initial=start_step, file=sys.stdout, dynamic_ncols=True,
                            unit="it", smoothing=0.1)
        self.t0 = time.perf_counter()
        self.last_time = self.t0
        self.last_step = start_step

    # -------------------------------------------------------------- scalars and progress
    def scalars(self, step: int, values: Dict[str, float]) -> None:
        now = time.perf_counter()
        rate = (step - self.last_step) / max(now - self.last_time, 1e-9)
        self.last_time, self.last_step = now, step
        for k, v in values.items():
            self.writer.add_scalar(k, v, step)
        self.writer.add_scalar("speed/steps_per_s", rate, step)

    def progress(self, step: int, values: Optional[Dict[str, float]]) -> None:
        if self.bar is not None:
            self.bar.update(step - self.bar.n)
            if values:
                self.bar.set_postfix({k.split("/")[-1]: f"{v:.3g}" for k, v in values.items()
                                      if k.startswith("loss/")}, refresh=False)
        elif step % self.line_every == 0 or step == self.steps:
            elapsed = time.perf_counter() - self.t0
            done = step - self.start_step
            rate = done / max(elapsed, 1e-9)
            eta = (self.steps - step) / max(rate, 1e-9)
            losses = " ".join(f"{k.split('/')[-1]}={v:.4g}" for k, v in (values or {}).items()
                              if k.startswith("loss/"))
            log.info(f"step {step}/{self.steps}  {rate:.1f} it/s  eta {eta:.0f}s  {losses}")

    # -------------------------------------------------------------- evaluations
    def metrics(self, step: int, values: Dict[str, object], extra: Optional[dict] = None) -> None:
        """One line of metrics.jsonl (scores, their protocol, histograms) and the scalars to TensorBoard."""
        record = {"step": step, "time": round(time.time(), 3), **(extra or {}),
                  **{k: _clean(v) for k, v in values.items()}}
        append_line(self.metrics_path, json.dumps(record))
        for k, v in values.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                self.writer.add_scalar(f"metrics/{k}", v, step)
        self.write(f"eval @ {step}: {format_metrics(values)}")

    def _truncate_metrics(self, start_step: int) -> None:
        """On resume, drop evaluations a killed run recorded after its last checkpoint.

        A last line that is not JSON is one a kill cut short: it is dropped with a warning. A line that
        is not JSON before the last one is damage (or an old torn line an append was glued to): it is
        dropped too, with a warning naming its line number, rather than refusing the resume; the run
        does not depend on its own log, and every reader skips such a line anyway."""
        if not start_step or not self.metrics_path.exists():
            return
        text = self.metrics_path.read_bytes().decode("utf-8", errors="replace")
        lines = [(n, line) for n, line in enumerate(text.split("\n"), 1) if line.strip()]
        kept = []
        for i, (n, line) in enumerate(lines):
            try:
                record = json.loads(line)
                if not isinstance(record, dict) or not isinstance(record.get("step", 0), (int, float)):
                    raise ValueError("not a metrics record")
            except ValueError:
                where = "its last line, cut short by a kill" if i == len(lines) - 1 else f"line {n}, damaged"
                log.warning(f"{self.metrics_path}: dropping {where}, which is not a metrics record: {line[:60]!r}")
                continue
            if record.get("step", 0) <= start_step:
                kept.append(line)
        new = "".join(k + "\n" for k in kept)
        if new != text:
            atomic_write(self.metrics_path, lambda fh: fh.write(new.encode()))

    # -------------------------------------------------------------- pictures
    def image(self, tag: str, step: int, rgb: np.ndarray) -> Path:
        """Write an HWC uint8 picture to TensorBoard and to <run>/samples/<tag>_<step>.png."""
        from PIL import Image
        self.writer.add_image(tag, rgb, step, dataformats="HWC")
        path = self.run_dir / "samples" / f"{tag.replace('/', '_')}_{step:08d}.png"
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format="PNG")
        atomic_write(path, lambda fh: fh.write(buf.getvalue()))
        return path

    # -------------------------------------------------------------- end of run
    def hparams(self, config: Dict[str, object], final: Dict[str, Optional[float]], step: int) -> None:
        hp = {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in config.items()}
        metrics = {f"final/{k}": float(v) for k, v in final.items()
                   if isinstance(v, (int, float)) and v is not None and math.isfinite(v)}
        from torch.utils.tensorboard.summary import hparams as hparams_summary
        exp, ssi, sei = hparams_summary(hp, metrics)
        fw = self.writer._get_file_writer()
        for summary in (exp, ssi, sei):
            fw.add_summary(summary, step)
        for k, v in metrics.items():
            self.writer.add_scalar(k, v, step)

    def write(self, message: str) -> None:
        log.info(message)  # train.py routes logging through the bar while one is shown

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.writer.close()


class Silent:
    """The logger of a rank that writes nothing: under several ranks rank 0 alone logs."""
    bar = None

    def scalars(self, step: int, values: Dict[str, float]) -> None:
        pass

    def progress(self, step: int, values: Optional[Dict[str, float]]) -> None:
        pass

    def close(self) -> None:
        pass
