"""Fake-quant timings on one GPU: copy floor, eager reference, torch.compile, CUDA kernel, Linear.

Usage::

    TORCH_CUDA_ARCH_LIST=9.0 python benchmarks/bench_quant.py --out quant_bench.json

Times are medians of repeated CUDA-event timings (milliseconds). Cast benchmark: an 8192 x 8192
bf16 tensor, E4M3, groups along the last dim. Linear benchmark: ``QuantLinear`` 4096 -> 4096 in
bf16, 16384 tokens, forward + backward, unquantized vs quantized operands: ``ms`` times five
steps back to back per CUDA-event pair (as a training loop runs them), ``ms_sync_each`` one step
per pair with a host sync after each (host launch latency included), ``quant_kernels_ms`` the
GPU time per step of the fake-quant kernels (torch profiler).
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a plain checkout
from training.quant import LinearQuantConfig, quantize, quantize_reference  # noqa: E402
from training.quant.linear import QuantLinear  # noqa: E402


def time_cuda(fn, reps: int, warmup: int = 3, inner: int = 1) -> float:
    """Median milliseconds of one call of ``fn`` over ``reps`` CUDA-event timings.

    Each timing covers ``inner`` back-to-back calls (no host sync between them, as in a
    training loop, so host-side launch work overlaps the previous call's GPU work).
    """
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(inner):
            fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / inner)
    return statistics.median(times)


def quant_kernel_ms(fn, steps: int = 5) -> float:
    """GPU milliseconds per call spent in the fake-quant extension's kernels (profiler)."""
    from torch.profiler import ProfilerActivity, profile

    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            fn()
        torch.cuda.synchronize()
    total = 0.0
    for ev in prof.key_averages():
        if "fq::" in ev.key or "_kernel" in ev.key and "fq" in ev.key:
            total += ev.device_time_total
    return total / steps / 1e3


def bench_cast(n: int, reps: int, compile_reference: bool) -> list:
    x = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    y = torch.empty_like(x)
    copy_ms = time_cuda(lambda: y.copy_(x), reps)
    gbytes = 2 * x.numel() * x.element_size() / 1e9
    rows = [dict(case="copy", granularity="-", ms=copy_ms, vs_copy=1.0,
                 tb_per_s=gbytes / copy_ms)]
    for gran in ("tensor", "channel", 128):
        variants = {
            "reference (eager)": lambda g=gran: quantize_reference(x, "e4m3", g),
            "cuda kernel": lambda g=gran: quantize(x, "e4m3", g, backend="cuda"),
        }
        if compile_reference:
            compiled = torch.compile(lambda t, g=gran: quantize_reference(t, "e4m3", g),
                                     dynamic=False)
            variants["reference (torch.compile)"] = lambda c=compiled: c(x)
        for name, fn in variants.items():
            t0 = time.perf_counter()
            try:
                ms = time_cuda(fn, reps)
            except Exception as err:  # compile failures are reported, not fatal
                print(f"{name} {gran}: failed: {err!r}"[:300])
                continue
            rows.append(dict(case=name, granularity=str(gran), ms=ms, vs_copy=ms / copy_ms,
                             tb_per_s=gbytes / ms, wall_s=time.perf_counter() - t0))
    return rows


def bench_linear(tokens: int, features: int, reps: int) -> list:
    torch.manual_seed(0)
    x = torch.randn(tokens, features, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    g = torch.randn(tokens, features, device="cuda", dtype=torch.bfloat16)
    configs = {
        "unquantized": LinearQuantConfig.none(),
        "all six, e4m3 block-128": LinearQuantConfig.from_spec("e4m3", 128, "all"),
        "all six, e4m3 channel": LinearQuantConfig.from_spec("e4m3", "channel", "all"),
        "all six, e4m3 tensor": LinearQuantConfig.from_spec("e4m3", "tensor", "all"),
        "w+w_bwd+x_bwd, e4m3 block-128": LinearQuantConfig.from_spec("e4m3", 128,
                                                                     "w+w_bwd+x_bwd"),
        "all six, e2m1:sr block-32": LinearQuantConfig.from_spec("e2m1:sr", 32, "all"),
    }
    rows = []
    base = None
    for name, cfg in configs.items():
        layer = QuantLinear(features, features, qconfig=cfg, backend="cuda", seed=1,
                            device="cuda", dtype=torch.bfloat16)

        def step():
            x.grad, layer.weight.grad = None, None
            layer(x).backward(g)

        try:
            ms = time_cuda(step, reps, inner=5)
            ms_sync = time_cuda(step, reps)
            quant_ms = quant_kernel_ms(step)
        except Exception as err:  # keep the other rows
            print(f"{name}: failed: {err!r}"[:300])
            continue
        if base is None:
            base, base_sync = ms, ms_sync
        flops = 3 * 2 * tokens * features * features
        rows.append(dict(case=name, ms=ms, vs_unquantized=ms / base, tflops=flops / ms / 1e9,
                         ms_sync_each=ms_sync, vs_unquantized_sync_each=ms_sync / base_sync,
                         quant_kernels_ms=quant_ms))
    return rows


def markdown(rows: list, keys: list) -> str:
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for r in rows:
        cells = [f"{r[k]:.4g}" if isinstance(r.get(k), float) else str(r.get(k, "")) for k in keys]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="JSON output path")
    parser.add_argument("--size", type=int, default=8192)
    parser.add_argument("--tokens", type=int, default=16384)
    parser.add_argument("--features", type=int, default=4096)
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("bench_quant needs a CUDA device")
    linear = bench_linear(args.tokens, args.features, max(10, args.reps // 2))
    cast = bench_cast(args.size, args.reps, not args.no_compile)
    device = torch.cuda.get_device_name()
    print(f"## Fake-quant cast, {args.size}x{args.size} bf16, e4m3 ({device})")
    print(markdown(cast, ["case", "granularity", "ms", "vs_copy", "tb_per_s"]))
    print(f"\n## QuantLinear {args.features}x{args.features}, {args.tokens} tokens, bf16 fwd+bwd")
    print(markdown(linear, ["case", "ms", "vs_unquantized", "tflops", "ms_sync_each",
                            "vs_unquantized_sync_each", "quant_kernels_ms"]))
    result = dict(device=torch.cuda.get_device_name(), torch=torch.__version__,
                  cuda=torch.version.cuda, args=vars(args), cast=cast, linear=linear)
    with open(args.out, "w") as fh:
        json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
