#!/usr/bin/env bash
# Wheels for scripts/gpu_check.py on a machine that has PyTorch (and numpy, scipy, PyYAML, tqdm,
# TensorBoard, matplotlib, Pillow) but no package registry: ganzoo itself and its pure-Python
# dependencies that such a machine lacks. Writes them to .whl/ (git-ignored); docs/CLUSTERS.md "The GPU
# check" (under "Running on a GPU") shows how to install them there and run the check.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-.whl}
rm -rf "$out" && mkdir -p "$out"
version() { python -c "import importlib.metadata as m; print(m.version('$1'))"; }
# setuptools builds through ./build/lib and reuses what is there: a stale copy would ship modules since
# deleted and hide a package missing from pyproject's list
rm -rf build/lib build/bdist.*
python -m pip wheel -q --no-deps -w "$out" .
# the versions this machine's tests ran with; all are pure Python (py3-none-any), any platform
python -m pip download -q --no-deps -d "$out" "hydra-core==$(version hydra-core)" \
  "omegaconf==$(version omegaconf)" "torch-fidelity==$(version torch-fidelity)"
python -m pip wheel -q --no-deps -w "$out" "antlr4-python3-runtime==$(version antlr4-python3-runtime)"
ls "$out"
