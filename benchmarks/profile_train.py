"""Where a training step's GPU time goes: the CUDA kernels of whole trainer steps, by total time.

    python3 benchmarks/profile_train.py --sizes f850k,f28m --format bf16 --top 15

For each size, builds the trainer (the size's default batch, sequence length 256, random tokens),
times the CUDA-graph step alone, then profiles ``--steps`` eager steps with ``torch.profiler`` and
prints the kernels with the most CUDA time, each as a share of the profiled steps' CUDA time.
"""

import argparse
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a plain checkout

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from training.config import TrainConfig, resolve  # noqa: E402
from training.train import Trainer  # noqa: E402

VOCAB = 8192


def graph_step_ms(cfg, data, steps=50):
    """Milliseconds per CUDA-graph step of ``cfg``, after warm-up."""
    tr = Trainer(cfg, data)
    tr.capture()
    tr.run(5)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    tr.run(steps)
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps * 1e3


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="f850k,f28m")
    p.add_argument("--format", default="bf16")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--top", type=int, default=15)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    data = SimpleNamespace(train=rng.integers(0, VOCAB, 2_000_000).astype(np.uint16),
                           val=rng.integers(0, VOCAB, 100_000).astype(np.uint16),
                           vocab_size=VOCAB, corpus_hash="random")
    print(f"GPU: {torch.cuda.get_device_name()}")
    for size in args.sizes.split(","):
        quant = {} if args.format == "bf16" else {"granularity": "128"}
        cfg = resolve(TrainConfig(model=size, tokens=16384 * 200, eval_tokens=256, device="cuda",
                                  ptq_formats="", format=args.format, **quant), True)
        tokens = cfg.batch_size * cfg.seq_len
        ms = graph_step_ms(cfg, data)
        print(f"\n## {size} {args.format}: {tokens} tokens per step, CUDA graph {ms:.2f} ms per "
              f"step, {tokens / ms / 1e3:.2f} Mtok/s (one run alone)")
        tr = Trainer(cfg, data)
        tr.run(3)
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            tr.run(args.steps)
            torch.cuda.synchronize()
        events = [e for e in prof.key_averages() if e.device_type.name == "CUDA"]
        total = sum(e.self_device_time_total for e in events)
        print(f"eager: {total / args.steps / 1e3:.2f} ms of CUDA time per step in "
              f"{sum(e.count for e in events) // args.steps} kernels")
        for e in sorted(events, key=lambda e: -e.self_device_time_total)[:args.top]:
            print(f"  {e.self_device_time_total / total:6.1%}  {e.count // args.steps:4d}/step  "
                  f"{e.key[:100]}")


if __name__ == "__main__":
    main()
