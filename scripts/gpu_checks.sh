#!/usr/bin/env bash
# The GPU checks in one call, on the device machine (fits in about 10 minutes on one H200):
# the CUDA tests, then benchmarks/bench_gpu.py (matmul rate, batched reposing, a stretch of the gpu
# preset's training; float32 and TF32). Needs gpu-carry/ from scripts/gpu_prepare.sh. Results and
# logs go to $OUT if set, else benchmarks/results/gpu. Each step has its own
# time limit, and a failing step does not stop the others.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results/gpu}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
{ nvidia-smi; "$PY" -c "import sys, torch; print(sys.version); print(torch.__version__, torch.cuda.get_device_name())"; } \
  > "$OUT/device.txt" 2>&1
SITE=$PWD/gpu-carry/site
"$PY" -m pip install --quiet --no-index --no-deps --target "$SITE" gpu-carry/wheels/*.whl \
  > "$OUT/install.log" 2>&1 || echo "wheel install failed (see install.log)"
export PYTHONPATH=$PWD/src:$SITE:$PWD/benchmarks
export INVSKIN_CACHE=$PWD/gpu-carry/cache
timeout 180 "$PY" -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_native.py \
  > "$OUT/pytest-cuda.log" 2>&1
echo "CUDA tests: exit $? ($(tail -n 1 "$OUT/pytest-cuda.log"))"
timeout 360 "$PY" benchmarks/bench_gpu.py --data gpu-carry/dress-small --out "$OUT/gpu.json" \
  > "$OUT/bench-gpu.log" 2>&1
echo "bench_gpu: exit $?"
grep -E "frames/s|steps/s|tf32=|failed" "$OUT/bench-gpu.log" | tail -n 20
