"""Which rank this process is, from the environment a launcher sets: torchrun's RANK / WORLD_SIZE /
LOCAL_RANK, or SLURM's task variables (srun, submitit's tasks) where nothing else set them.
No torch here: the CLI reads it before deciding anything."""
from __future__ import annotations

import os
import re
from typing import Dict


def slurm_environment(env: Dict[str, str]) -> Dict[str, str]:
    """torchrun's variables from a SLURM job step of several tasks (srun; submitit starts its tasks
    with srun), where nothing set them: the rank is the task's, the master the step's first node, the
    port derived from the job id. The step's own task count, not the job's: a batch script of a job
    with --ntasks=8 is one process, and must not wait for 7 others."""
    if "RANK" in env or int(env.get("SLURM_STEP_NUM_TASKS", "1")) <= 1 or "SLURM_PROCID" not in env:
        return {}
    nodes = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST", "localhost")
    return {"RANK": env["SLURM_PROCID"], "WORLD_SIZE": env["SLURM_STEP_NUM_TASKS"],
            "LOCAL_RANK": env.get("SLURM_LOCALID", "0"), "MASTER_ADDR": first_host(nodes),
            "MASTER_PORT": env.get("MASTER_PORT", str(20000 + int(env.get("SLURM_JOB_ID", "0")) % 20000))}


def submitit_local_environment(env: Dict[str, str]) -> Dict[str, str]:
    """The same from submitit's local executor (hydra/launcher=submitit_local with tasks_per_node > 1):
    its tasks are processes of this machine that only its own variables tell apart."""
    if "RANK" in env or int(env.get("SUBMITIT_LOCAL_NTASKS", "1")) <= 1 or "SUBMITIT_LOCAL_GLOBALID" not in env:
        return {}
    job = int(re.sub(r"\D", "", env.get("SUBMITIT_LOCAL_JOB_ID", "")) or 0)
    return {"RANK": env["SUBMITIT_LOCAL_GLOBALID"], "WORLD_SIZE": env["SUBMITIT_LOCAL_NTASKS"],
            "LOCAL_RANK": env.get("SUBMITIT_LOCAL_LOCALID", "0"), "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": env.get("MASTER_PORT", str(20000 + job % 20000))}


def launcher_environment(env: Dict[str, str]) -> Dict[str, str]:
    """torchrun's variables as SLURM or submitit's local executor give them, where nothing set them."""
    return slurm_environment(env) or submitit_local_environment(env)


def first_host(nodelist: str) -> str:
    """The first host of a SLURM node list: "gpu[003-005,9],cpu1" -> "gpu003"."""
    m = re.match(r"([^,\[]+)(?:\[([^\]]+)\])?", nodelist.strip())
    if m is None:
        return "localhost"
    prefix, ranges = m.group(1), m.group(2)
    if not ranges:
        return prefix
    return prefix + ranges.split(",")[0].split("-")[0]


def _get(key: str, default: str) -> str:
    return os.environ.get(key) or launcher_environment(dict(os.environ)).get(key) or default


def world_size() -> int:
    return int(_get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(_get("RANK", "0"))


def local_rank() -> int:
    return int(_get("LOCAL_RANK", "0"))
