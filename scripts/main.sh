#!/usr/bin/env bash
# Install bayesfp (no torch) and run the main job on the shipped default run data.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/venv.sh
exec .venv/bin/bayesfp pipeline "$@"
