"""``python -m benchmarks NAME [ARGS ...]``; ``python -m benchmarks --list`` describes each."""

import sys

from benchmarks import run

run(sys.argv[1:])
