#!/usr/bin/env bash
# One seed of the quality table of docs/results.md on CPU: train each method with the cpu-quick
# preset on the synthetic data, evaluate on both test splits (100k points per set), and write the
# table to runs/quality-cpu.md.
#
#   bash benchmarks/run_results.sh [OUTFIT] [METHOD ...]
#
# Data: $DATA, or $DATA_ROOT/synth-OUTFIT-default (DATA_ROOT defaults to data; made with 'invskin synth' if
# missing). Runs: runs/OUTFIT/METHOD (a finished run there is reused).
# snarf re-extracts a mesh per frame (slow on CPU): it is evaluated on the first SNARF_FRAMES frames
# of each split.
set -euo pipefail
cd "$(dirname "$0")/.."
OUTFIT=${1:-dress}
shift || true
METHODS=${*:-ins snarf-nc lbs-body snarf}
SNARF_FRAMES=${SNARF_FRAMES:-8}
DATA=${DATA:-${DATA_ROOT:-data}/synth-$OUTFIT-default}
BIN=.venv/bin/invskin
[ -f "$DATA/invskin-dataset.json" ] || $BIN synth --out "$DATA" --outfit "$OUTFIT"
for METHOD in $METHODS; do
  RUN=runs/$OUTFIT/$METHOD
  [ -f "$RUN/checkpoint/state.json" ] || $BIN train --data "$DATA" --out "$RUN" --method "$METHOD" --preset cpu-quick --device cpu
  LIMIT=()
  [ "$METHOD" = snarf ] && LIMIT=(--max-frames "$SNARF_FRAMES")
  for SPLIT in test-within test-out; do
    $BIN eval --run "$RUN" --split "$SPLIT" "${LIMIT[@]}"
  done
done
.venv/bin/python benchmarks/collect_results.py runs/*/*/eval/*/metrics.json > runs/quality-cpu.md
cat runs/quality-cpu.md
