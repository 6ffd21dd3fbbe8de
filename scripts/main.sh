#!/usr/bin/env bash
# Install bayesfp (no torch) and run the main job on the shipped default run data.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/venv.sh
# the core size family: the one-layer shape variant (3.4m-w512) is not on the same N curve
exec .venv/bin/bayesfp pipeline --where group=core --calibrate "$@"
