#!/usr/bin/env bash
# Create .venv with Python >= 3.12 (PyMC 6 needs it) and install bayesfp with the given extras.
# Usage: bash scripts/venv.sh [EXTRAS]      e.g. bash scripts/venv.sh train,test
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
if [ ! -x .venv/bin/python ]; then
    py=""
    for cand in python3.12 python3.13 python3; do
        if command -v "$cand" >/dev/null 2>&1 \
           && "$cand" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then
            py="$cand"; break
        fi
    done
    if [ -z "$py" ] && command -v pyenv >/dev/null 2>&1; then
        for v in $(pyenv versions --bare | grep -E '^3\.1[2-9]' || true); do py="$(PYENV_VERSION=$v pyenv which python3)"; break; done
    fi
    if [ -z "$py" ]; then echo "error: Python >= 3.12 not found (PyMC 6 requires it)" >&2; exit 2; fi
    "$py" -m venv .venv
fi
spec="."
[ -n "$extras" ] && spec=".[${extras}]"
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e "$spec"
