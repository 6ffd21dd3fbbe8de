#!/usr/bin/env bash
# One timed session of a sweep on a fresh GPU machine: unpack the corpus, build the fake-quant
# kernel, check it against the reference on the GPU, then sweep until the time budget ends and
# copy the run table to an output folder. Stops before sweeping if the kernel fails its tests.
#
#   scripts/gpu_sweep.sh GRID TABLE OUTDIR [SECONDS] [PER_GPU]
#
#   GRID     grid file (grids/fp-h100.toml)
#   TABLE    the run table in the tree (sweeps/fp-h100.jsonl); read, never written
#   OUTDIR   folder that receives the updated table (same file name) and the sweep log
#   SECONDS  wall budget of the whole script, start to end (default 560)
#   PER_GPU  runs packed per GPU, under MPS (default 8)
#
# The sweep itself writes to out/sweep/<table name> (kept between calls on a warm machine) and
# resumes from TABLE on a fresh one. Set BAYESFP_CODE_REV to the tree's git revision when the
# copy has no .git (docs/sweeps.md). BENCH=1 also runs benchmarks/bench_quant.py and
# bench_train.py for both fake-quant kernel sets (square, generic) into OUTDIR before the sweep:
# at most seven files come back (checks.txt, bench.txt, quant_bench.json, train.json with the
# training rows of each kernel set, ncu.txt from benchmarks/profile_quant.py under Nsight Compute,
# the table and its log). The GPU tests that gate the sweep check the kernel set it uses
# ($BAYESFP_FQ_KERNEL, default square).
set -uo pipefail

if [ $# -lt 3 ]; then
    sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
GRID=$1; TABLE=$2; OUTDIR=$3; BUDGET=${4:-560}; PER_GPU=${5:-8}
NAME=$(basename "$TABLE" .jsonl)
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0} MAX_JOBS=${MAX_JOBS:-16}
t0=$(date +%s)
elapsed() { echo $(( $(date +%s) - t0 )); }
PY=${PYTHON:-python3}

mkdir -p "$OUTDIR" out/sweep
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader || exit 1
if [ ! -d data/corpus ]; then
    $PY -m training.corpus unpack data/corpus.tar.xz --out data/corpus || exit 1
fi
CHECKS="$OUTDIR/checks.txt"
$PY -c "from training.quant.kernel import load_extension; load_extension()" > "$CHECKS" 2>&1
echo "kernel build rc=$? at $(elapsed) s"
BAYESFP_FQ_TEST_KERNELS=${BAYESFP_FQ_KERNEL:-square} $PY -m pytest tests/test_quant_cuda.py \
    tests/test_quant_linear.py -q -p no:cacheprovider --noconftest >> "$CHECKS" 2>&1
rc=$?
tail -1 "$CHECKS"
echo "GPU tests (kernel set ${BAYESFP_FQ_KERNEL:-square}) rc=$rc at $(elapsed) s"
if [ $rc -ne 0 ]; then
    echo "the kernel fails its GPU tests: no sweep (see $CHECKS)"
    exit 1
fi
if [ "${BENCH:-0}" = 1 ]; then
    # each kernel set against the reference, in a process of its own (a fault in one leaves
    # the CUDA context of the other intact); only those that pass are timed
    passed=()
    for k in square generic; do
        echo "== GPU tests, kernel set $k" >> "$CHECKS"
        BAYESFP_FQ_TEST_KERNELS=$k $PY -m pytest tests/test_quant_cuda.py -q \
            -p no:cacheprovider --noconftest >> "$CHECKS" 2>&1
        rc=$?
        echo "GPU tests (kernel set $k) rc=$rc: $(tail -1 "$CHECKS") at $(elapsed) s"
        [ $rc -eq 0 ] && passed+=("$k")
    done
    kernels=$(IFS=,; echo "${passed[*]}")
    BENCH_LOG="$OUTDIR/bench.txt"
    $PY benchmarks/bench_quant.py --kernels "$kernels" --out "$OUTDIR/quant_bench.json" \
        --reps 30 > "$BENCH_LOG" 2>&1
    echo "kernel benchmark (kernel sets $kernels) done at $(elapsed) s"
    mkdir -p out/bench
    # square (the default): every size and mode; generic: the quantized mode on four sizes
    for k in "${passed[@]}"; do
        args=(--modes "e4m3 B128 all graph" --sizes 1.7m,3.4m,11m,26m)
        [ $k = square ] && args=(--modes "bf16 eager,bf16 graph,e4m3 B128 all graph")
        echo "== bench_train, kernel set $k" >> "$BENCH_LOG"
        $PY benchmarks/bench_train.py --kernel $k "${args[@]}" \
            --out "out/bench/train_$k.json" >> "$BENCH_LOG" 2>&1
    done
    echo "training benchmark done at $(elapsed) s"
    # one file for both kernel sets: {"square": rows, "generic": rows}
    $PY -c 'import json, pathlib, sys
rows = {p.stem.split("_", 1)[-1]: json.loads(p.read_text())
        for p in sorted(pathlib.Path("out/bench").glob("train_*.json"))}
pathlib.Path(sys.argv[1]).write_text(json.dumps(rows, indent=1))' "$OUTDIR/train.json"
    # where the time goes inside each kernel (hardware counters, where the machine allows them)
    t_ncu=$(( BUDGET - $(elapsed) - 20 ))
    [ $t_ncu -gt 180 ] && t_ncu=180
    if command -v ncu >/dev/null && [ $t_ncu -gt 60 ]; then
        timeout $t_ncu ncu --clock-control none --profile-from-start off --section SpeedOfLight \
            --section Occupancy --section WarpStateStats --section MemoryWorkloadAnalysis \
            $PY benchmarks/profile_quant.py --kernels "$kernels" > "$OUTDIR/ncu.txt" 2>&1
        echo "ncu rc=$? at $(elapsed) s"
    fi
    echo "benchmarks done at $(elapsed) s"
fi
[ -f "out/sweep/$NAME.jsonl" ] || cp "$TABLE" "out/sweep/$NAME.jsonl"
left=$(( BUDGET - $(elapsed) - 15 ))
if [ $left -lt 60 ]; then
    echo "no time left to sweep (${left} s)"
else
    minutes=$($PY -c "print(round($left / 60, 2))")
    timeout $(( left + 10 )) $PY -m training sweep "$GRID" --out "out/sweep/$NAME.jsonl" \
        --per-gpu "$PER_GPU" --mps --max-minutes "$minutes" \
        --throughput benchmarks/results/h100-train.json --quiet > "$OUTDIR/$NAME.log" 2>&1
    tail -3 "$OUTDIR/$NAME.log"
fi
cp "out/sweep/$NAME.jsonl" "$OUTDIR/$NAME.jsonl"
echo "total $(elapsed) s"
