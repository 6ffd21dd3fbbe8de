"""One call of each fake-quant kernel case per kernel variant, for a hardware-counter profiler.

    ncu --clock-control none --profile-from-start off --section SpeedOfLight \
        --section Occupancy --section WarpStateStats python3 benchmarks/profile_quant.py

Every case (a bf16 copy of the same tensor, e4m3 blocks of 128 along dim 1, along dim 0, and the
pair of both) runs once as warm-up, then once more per variant between
``torch.cuda.profiler.start()`` and ``stop()``, so a profiler started with profiling off sees
exactly those calls. It prints the order of the profiled calls (case, variant).
"""

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a plain checkout
from training.quant import quantize, quantize_pair  # noqa: E402
from training.quant.config import OperandQuant  # noqa: E402
from training.quant.kernel import num_kernel_variants, set_kernel_variant  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=8192, help="rows and columns of the bf16 tensor")
    ap.add_argument("--variants", default=None,
                    help="kernel variants to profile, comma-separated (default: all)")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("profile_quant needs a CUDA device")
    x = torch.randn(args.size, args.size, device="cuda", dtype=torch.bfloat16)
    y = torch.empty_like(x)
    pair = OperandQuant("e4m3", 128)
    cases = {
        "copy": lambda: y.copy_(x),
        "block 128, dim 1": lambda: quantize(x, "e4m3", 128, backend="cuda"),
        "block 128, dim 0": lambda: quantize(x, "e4m3", 128, dim=0, backend="cuda"),
        "pair, block 128": lambda: quantize_pair(x, pair, pair, backend="cuda"),
    }
    variants = (range(num_kernel_variants()) if args.variants is None
                else [int(v) for v in args.variants.split(",") if v.strip()])
    for v in variants:  # warm-up: build, first launches, occupancy queries
        set_kernel_variant(v)
        for fn in cases.values():
            fn()
    torch.cuda.synchronize()
    order = []
    torch.cuda.profiler.start()
    for v in variants:
        set_kernel_variant(v)
        for name, fn in cases.items():
            if name == "copy" and v > 0:
                continue
            fn()
            order.append(f"{name} (variant {v})")
    torch.cuda.synchronize()
    torch.cuda.profiler.stop()
    set_kernel_variant(0)
    print("profiled calls, in order:", "; ".join(order))


if __name__ == "__main__":
    main()
