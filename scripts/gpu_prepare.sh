#!/usr/bin/env bash
# Prepare what the GPU checks need, here (PyPI is reachable here, not from the device machine):
# gpu-carry/wheels: Python 3.12 wheels of invskin's dependencies that the device image lacks
# (its python3 is 3.12 with torch, numpy, scipy, scikit-image, safetensors, jaxtyping, tqdm, pillow,
# pytest, hypothesis; .library/device/KINDS.md), and gpu-carry/dress-small, a 40-frame synthetic
# dataset (anny, which makes it, is not carried). About 45 MB: carry it with the call, e.g.
#   run(command="bash scripts/gpu_checks.sh", carry=["gpu-carry"], timeout_s=590)
set -euo pipefail
cd "$(dirname "$0")/.."
CARRY=gpu-carry
rm -rf "$CARRY"
mkdir -p "$CARRY/wheels"
.venv/bin/python -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
  -d "$CARRY/wheels" trimesh point-cloud-utils tyro docstring-parser typeguard beartype
.venv/bin/invskin synth --preset small --out "$CARRY/dress-small" --no-progress
du -sh "$CARRY/wheels" "$CARRY/dress-small" "$CARRY"
