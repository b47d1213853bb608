#!/usr/bin/env bash
# Make a virtual environment in .venv with everything invskin needs.
#
# torch comes first and pinned: an already installed torch >= 2.4 (e.g. a CUDA build on a GPU machine)
# is reused through --system-site-packages; otherwise torch==2.13.0 (the CPU build) is installed.
# A constraints file then pins torch to the installed version so no other package can pull another.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv --system-site-packages .venv
fi
VPY=.venv/bin/python
if ! "$VPY" - <<'PYEOF'
import sys
try:
    import torch
except ImportError:
    sys.exit(1)
major, minor = (int(p) for p in torch.__version__.split(".")[:2])
sys.exit(0 if (major, minor) >= (2, 4) else 1)
PYEOF
then
  "$VPY" -m pip install --quiet torch==2.13.0
fi
TORCH_VERSION=$("$VPY" -c "import torch; print(torch.__version__.split('+')[0])")
CONSTRAINTS=$(mktemp)
echo "torch==${TORCH_VERSION}" > "$CONSTRAINTS"
"$VPY" -m pip install --quiet -c "$CONSTRAINTS" -e ".[anny,dev]"
rm -f "$CONSTRAINTS"
echo "invskin installed in .venv (torch ${TORCH_VERSION})"
