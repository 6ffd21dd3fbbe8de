"""One call of each block-wise fake-quant case per kernel set, for a hardware-counter profiler.

    ncu --clock-control none --profile-from-start off --section SpeedOfLight \
        --section Occupancy --section WarpStateStats python3 benchmarks/profile_quant.py

Every case (a bf16 copy of the same tensor, e4m3 blocks of 128 along dim 1, along dim 0, and the
pair of both) runs once as warm-up, then once more per kernel set between
``torch.cuda.profiler.start()`` and ``stop()``, so a profiler started with profiling off sees
exactly those calls. It prints the order of the profiled calls (case, kernel set).
"""

import argparse
import sys
from pathlib import Path

import torch
from timing import block_cases

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a plain checkout
from training.quant.kernel import KERNELS, check_kernel, kernel_name, set_kernel  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=8192, help="rows and columns of the bf16 tensor")
    ap.add_argument("--kernels", default=",".join(KERNELS),
                    help="kernel sets to profile, comma-separated (default: both)")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("profile_quant needs a CUDA device")
    kernels = [check_kernel(k.strip()) for k in args.kernels.split(",") if k.strip()]
    x = torch.randn(args.size, args.size, device="cuda", dtype=torch.bfloat16)
    y = torch.empty_like(x)
    cases = {"copy": lambda: y.copy_(x), **block_cases(x)}
    before = kernel_name()
    for k in kernels:  # warm-up: build, first launches
        set_kernel(k)
        for fn in cases.values():
            fn()
    torch.cuda.synchronize()
    order = []
    torch.cuda.profiler.start()
    for i, k in enumerate(kernels):
        set_kernel(k)
        for name, fn in cases.items():
            if name == "copy" and i > 0:
                continue
            fn()
            order.append(f"{name} ({k})")
    torch.cuda.synchronize()
    torch.cuda.profiler.stop()
    set_kernel(before)
    print("profiled calls, in order:", "; ".join(order))


if __name__ == "__main__":
    main()
