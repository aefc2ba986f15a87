"""Hydra callback that ends a sweep with one line per job (status and final metrics), and with a
non-zero exit when any job failed."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from hydra.experimental.callback import Callback


class SweepSummary(Callback):
    def on_multirun_end(self, config, **kwargs) -> None:
        sweep = Path(str(config.hydra.sweep.dir))
        rows = []
        failed = []
        # every launcher's jobs leave a status.json, whatever process or machine ran them
        for status in sorted(sweep.glob("*/status.json"), key=lambda p: p.parent.name):
            info = json.loads(status.read_text())
            metrics = info.get("metrics") or {}
            # numbers only: per-class lists, histograms and the protocol record stay in metrics.jsonl
            shown = " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()
                             if isinstance(v, (int, float)) and not isinstance(v, bool))
            rows.append(f"  {status.parent.name:<36} {info['status']:<8} {shown or info.get('error', '')}")
            if info["status"] in ("failed", "diverged"):
                failed.append(str(status.parent.resolve()))
        print(f"sweep {sweep}: {len(rows)} job(s)\n" + "\n".join(rows), flush=True)
        if failed:
            print(f"ganzoo: error: {len(failed)} job(s) of the sweep failed or diverged: " + ", ".join(failed),
                  file=sys.stderr, flush=True)
            sys.exit(1)
