#!/usr/bin/env bash
# Check the fake-quant kernel on one GPU: build it, run its GPU tests for both kernel sets, and
# time the square kernel side by side with a baseline copy of an earlier revision.
#
#   scripts/gpu_kernel_check.sh OUTDIR [BASELINE] [SECONDS]
#
#   OUTDIR    receives four files: check.txt (summary: builds, pass counts, timing table),
#             tests.txt (the pytest logs), build.txt (the build logs), timing.json (every timing
#             record and their medians)
#   BASELINE  tree made by scripts/prepare_baseline.sh (default out/fq-baseline)
#   SECONDS   wall budget, start to end (default 235)
#
# Steps: both extensions built at once (each tree has its own build cache); the GPU tests
# (tests/test_quant_cuda.py, tests/test_quant_linear.py and the quantized training run of
# tests/test_train_gpu.py) for "square" and "generic", ten processes at once, stopped in time
# to leave the timing its share; then benchmarks/bench_square.py alternating baseline and this
# tree, three processes each, and their medians side by side.
set -uo pipefail

if [ $# -lt 1 ]; then
    sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
OUTDIR=$1; BASE=${2:-out/fq-baseline}; BUDGET=${3:-235}
PY=${PYTHON:-python3}
ROUNDS=3            # timing processes per tree
TIMING_S=70         # kept for the timing at the end
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0} PYTHONUNBUFFERED=1
unset BAYESFP_EXTENSIONS_DIR  # each tree builds into its own .torch_extensions
t0=$(date +%s)
elapsed() { echo $(( $(date +%s) - t0 )); }
mkdir -p "$OUTDIR" out/kernel-check
SUMMARY="$OUTDIR/check.txt"; TESTS="$OUTDIR/tests.txt"; BUILD="$OUTDIR/build.txt"
WORK=out/kernel-check
rm -f "$WORK"/*.json "$WORK"/*.log "$WORK"/*.rc
: > "$SUMMARY"
say() { echo "$*" | tee -a "$SUMMARY"; }

if [ ! -f "$BASE/training/quant/kernel.py" ]; then
    say "no baseline tree at $BASE (make it with scripts/prepare_baseline.sh REV)"
    exit 2
fi
say "$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader)"
say "$($PY -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)')"
say "baseline $BASE: revision $(cat "$BASE/REV" 2>/dev/null || echo unknown)"

# 1. both builds at once (8 compile jobs each)
build() {  # ROOT LOG
    MAX_JOBS=8 $PY -c "import sys; sys.path.insert(0, sys.argv[1])
from training.quant import kernel
kernel.load_extension(verbose=True)
print('built', kernel.__file__)" "$1" > "$2" 2>&1
}
build . "$WORK/build-new.log" & p_new=$!
build "$BASE" "$WORK/build-old.log" & p_old=$!
wait $p_new; rc_new=$?
wait $p_old; rc_old=$?
{ echo "== this tree"; cat "$WORK/build-new.log"; echo "== baseline"; cat "$WORK/build-old.log"; } \
    > "$BUILD"
say "builds: this tree rc=$rc_new, baseline rc=$rc_old at $(elapsed) s"
[ $rc_new -eq 0 ] || { say "this tree's kernel does not build: see build.txt"; exit 1; }

# 2. GPU tests: per kernel set, the two long reference comparisons in four processes (one per
#    dtype, and the pairs) and the other tests in a fifth (the CPU references bound them: ten
#    processes at once); the quantized training run uses the set of its process
left=$(( BUDGET - TIMING_S - $(elapsed) ))
[ $left -ge 30 ] || left=30
run_tests() {  # KERNEL LOG PYTEST-ARGS...
    local k=$1 log=$2; shift 2
    BAYESFP_FQ_KERNEL=$k BAYESFP_FQ_TEST_KERNELS=$k OMP_NUM_THREADS=2 timeout "$left" \
        $PY -m pytest "$@" -v -p no:cacheprovider > "$log" 2>&1
    echo $? > "$log.rc"
}
LONG="test_kernel_equals_reference or test_pair_equals_two_references"
PARTS="d0 d1 d2 pair rest"
pids=()
for k in square generic; do
    for d in 0 1 2; do
        run_tests $k "$WORK/tests-$k-d$d.log" tests/test_quant_cuda.py \
            -k "test_kernel_equals_reference and dtype$d" & pids+=($!)
    done
    run_tests $k "$WORK/tests-$k-pair.log" tests/test_quant_cuda.py \
        -k test_pair_equals_two_references & pids+=($!)
    run_tests $k "$WORK/tests-$k-rest.log" tests/test_quant_cuda.py tests/test_quant_linear.py \
        tests/test_train_gpu.py::test_quantized_graph_run -k "not ($LONG)" & pids+=($!)
done
wait "${pids[@]}"
: > "$TESTS"
for k in square generic; do
    passed=0; failed=0; skipped=0; rcs=""
    for part in $PARTS; do
        log="$WORK/tests-$k-$part.log"
        passed=$(( passed + $(grep -c " PASSED" "$log") ))
        failed=$(( failed + $(grep -c -E " (FAILED|ERROR)" "$log") ))
        skipped=$(( skipped + $(grep -c " SKIPPED" "$log") ))
        rcs="$rcs $(cat "$log.rc")"
        { echo "== kernel set $k, part $part (rc $(cat "$log.rc"); 124: stopped by the time limit)"
          grep -v " PASSED" "$log"; } >> "$TESTS"
    done
    say "GPU tests, kernel set $k: $passed passed, $failed failed, $skipped skipped (rc:$rcs)"
done
say "tests done at $(elapsed) s"

# 3. timing: baseline and this tree alternating, one process each, then the medians
if [ $rc_old -ne 0 ]; then
    say "the baseline does not build: no timing (see build.txt)"
    exit 1
fi
for i in $(seq 1 $ROUNDS); do
    [ $(( BUDGET - $(elapsed) )) -gt 30 ] || break
    timeout 40 $PY benchmarks/bench_square.py --root "$BASE" --label baseline --reps 20 \
        --out "$WORK/baseline-$i.json" >> "$WORK/timing.log" 2>&1
    timeout 40 $PY benchmarks/bench_square.py --label "this tree" --reps 20 \
        --out "$WORK/new-$i.json" >> "$WORK/timing.log" 2>&1
done
records=$(ls "$WORK"/baseline-*.json "$WORK"/new-*.json 2>/dev/null)
if [ -n "$records" ]; then
    $PY benchmarks/bench_square.py --table $records --out "$WORK/summary.json" 2>&1 \
        | tee -a "$SUMMARY"
    $PY -c 'import json, sys
out = {"summary": json.load(open(sys.argv[1])),
       "records": [json.load(open(p)) for p in sys.argv[2:]]}
json.dump(out, open(sys.argv[1], "w"), indent=1)' "$WORK/summary.json" $records
    cp "$WORK/summary.json" "$OUTDIR/timing.json"
else
    say "no timing record (see the timing log below)"
fi
tail -20 "$WORK/timing.log" >> "$BUILD"
say "total $(elapsed) s"
