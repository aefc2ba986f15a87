"""Hydra callback that ends a sweep with one line per job: status and final metrics."""
from __future__ import annotations

import json
from pathlib import Path

from hydra.experimental.callback import Callback


class SweepSummary(Callback):
    def on_multirun_end(self, config, **kwargs) -> None:
        sweep = Path(str(config.hydra.sweep.dir))
        rows = []
        failed = []
        for status in sorted(sweep.glob("*/status.json"), key=lambda p: p.parent.name):
            info = json.loads(status.read_text())
            metrics = info.get("metrics") or {}
            shown = " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items())
            rows.append(f"  {status.parent.name:<36} {info['status']:<8} {shown or info.get('error', '')}")
            if info["status"] == "failed":
                failed.append(str(status.parent.resolve()))
        print(f"sweep {sweep}: {len(rows)} job(s)\n" + "\n".join(rows), flush=True)
        # jobs run in other processes under the joblib launcher: their failures are known from
        # status.json here, in the process that sets ganzoo's exit code
        from . import cli
        cli._sweep_failures.extend(f for f in failed if f not in cli._sweep_failures)
