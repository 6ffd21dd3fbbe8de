#!/usr/bin/env bash
# One call on the GPU machine: unpack the corpus, build the fake-quant kernel, measure training
# throughput per size, run the GPU training tests, and train one full run per size.
# Usage (repo root, on the GPU machine, with data/corpus.tar.xz present and OUT set):
#   bash benchmarks/gpu_check.sh
set -uo pipefail
export TORCH_CUDA_ARCH_LIST=9.0 MAX_JOBS=16 PYTHONUNBUFFERED=1
OUT="${OUT:-out/gpu}"; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version --format=csv | tee "$OUT/env.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$OUT/env.txt"
[ -d data/corpus ] || python3 -m training.corpus unpack data/corpus.tar.xz --out data/corpus
python3 -c "from training.quant.kernel import load_extension; load_extension()"
timeout 200 python3 benchmarks/bench_train.py --out "$OUT/train.json" 2>&1 | tee "$OUT/bench_train.log"
[ -n "${SKIP_GPU_TESTS:-}" ] || timeout 90 python3 -m pytest tests/test_train_gpu.py -q -p no:cacheprovider --noconftest 2>&1 \
    | tail -20 | tee "$OUT/gpu_tests.log"
# The sweep keeps per-run files beside its table: keep them out of $OUT, copy the table back.
mkdir -p out/gpu-sweep
python3 -m training sweep grids/gpu-check.toml --out out/gpu-sweep/runs.jsonl --per-gpu 4 \
    --max-minutes "${SWEEP_MINUTES:-3}" --throughput "$OUT/train.json" --quiet 2>&1 \
    | tail -20 | tee "$OUT/sweep.log"
cp out/gpu-sweep/runs.jsonl "$OUT/runs.jsonl"
