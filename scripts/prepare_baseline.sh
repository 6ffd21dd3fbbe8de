#!/usr/bin/env bash
# Copy the fake-quant package of an earlier revision into an ignored folder, so that a GPU
# machine without .git can time that revision's kernel next to the working tree's
# (benchmarks/bench_square.py --root DEST; scripts/gpu_kernel_check.sh).
#
#   scripts/prepare_baseline.sh REV [DEST]
#
#   REV   a git revision of this repository
#   DEST  folder to (re)create (default out/fq-baseline; carry it to the GPU machine)
#
# The copy holds training/__init__.py, training/quant/ and the two bayesfp modules it imports
# (bayesfp/__init__.py, bayesfp/dims.py), plus REV in a file of that name.
set -euo pipefail

if [ $# -lt 1 ]; then
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
REV=$1
DEST=${2:-out/fq-baseline}
cd "$(git rev-parse --show-toplevel)"
commit=$(git rev-parse --verify "$REV^{commit}")
rm -rf "$DEST"
mkdir -p "$DEST"
git archive "$commit" training/__init__.py training/quant bayesfp/__init__.py bayesfp/dims.py \
    | tar -x -C "$DEST"
echo "$commit" > "$DEST/REV"
echo "$DEST: training/quant of $commit ($(find "$DEST" -type f | wc -l) files)"
