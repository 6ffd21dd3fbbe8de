"""Fake-quant timings on one GPU: copy floor, eager reference, torch.compile, CUDA kernel, Linear.

Usage::

    TORCH_CUDA_ARCH_LIST=9.0 python benchmarks/bench_quant.py --out quant_bench.json

Times are medians of repeated CUDA-event timings (milliseconds). Cast benchmark: an 8192 x 8192
bf16 tensor, E4M3, groups along the last dim (and, for the kernel, along dim 0 and the pair of
both). Each cast case is timed three ways, side by side with a bf16 copy of the same tensor:

``event_ms`` ("event, one call")
    one call per CUDA-event pair: includes the host time of the Python dispatch, during which the
    GPU idles inside the timed window (the method of earlier runs, kept for comparison);
``graph_ms``
    ``GRAPH_CALLS`` back-to-back calls captured in one CUDA graph, replayed between two events,
    divided by ``GRAPH_CALLS`` (how training runs the kernel: the whole step is one graph);
``gpu_ms``
    GPU time per call of all kernels and copies the call launches (torch profiler).

Each has its ratio to the copy timed the same way (``*_vs_copy``). Linear benchmark:
``QuantLinear`` 4096 -> 4096 in bf16, 16384 tokens, forward + backward, unquantized vs quantized
operands: ``ms`` times five steps back to back per CUDA-event pair (as an eager training loop runs
them), ``ms_sync_each`` one step per pair with a host sync after each (host launch latency
included), ``graph_ms`` one step (forward + backward, gradients accumulated into preallocated
buffers) captured in a CUDA graph as the trainer does, ``quant_kernels_ms`` the GPU time per step
of the fake-quant kernels and ``gpu_ms`` of all kernels (torch profiler).

``--variants 0,1`` times every kernel case and every quantized Linear once per kernel variant
(``training/quant/kernel.py``), side by side in the same run.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a plain checkout
from training.quant import (  # noqa: E402
    LinearQuantConfig,
    quantize,
    quantize_pair,
    quantize_reference,
)
from training.quant.config import OperandQuant  # noqa: E402
from training.quant.kernel import num_kernel_variants, set_kernel_variant  # noqa: E402
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


GRAPH_CALLS = 20  # calls per CUDA graph in the graph timings


def time_graph(fn, reps: int, calls: int = GRAPH_CALLS, warmup: int = 3) -> float:
    """Median milliseconds of one call of ``fn`` from replays of a CUDA graph of ``calls`` calls.

    The warm-up runs on a side stream (as for any capture); the graph holds ``calls`` back-to-back
    calls on the same static input, so host dispatch is not in the timed window.
    """
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(warmup):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(calls):
            fn()
    graph.replay()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        graph.replay()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / calls)
    del graph
    torch.cuda.synchronize()
    return statistics.median(times)


def profile_ms(fn, steps: int = 5, name_filter=None) -> float:
    """GPU milliseconds per call of the kernels (and device copies) that ``fn`` launches.

    ``name_filter``: keep only device activities whose name contains it (e.g. ``"fq::"``).
    """
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            fn()
        torch.cuda.synchronize()
    total_us = 0.0
    for ev in prof.events():
        if ev.device_type != DeviceType.CUDA:
            continue
        if name_filter is not None and name_filter not in ev.name:
            continue
        total_us += ev.time_range.elapsed_us()
    return total_us / steps / 1e3


def quant_kernel_ms(fn, steps: int = 5) -> float:
    """GPU milliseconds per call spent in the fake-quant extension's kernels (profiler)."""
    return profile_ms(fn, steps, name_filter="fq::")


METHODS = ("event", "graph", "gpu")


def time_three(fn, reps: int) -> dict:
    """``event_ms``, ``graph_ms`` and ``gpu_ms`` of ``fn``; a failing method gives None + a note."""
    out, notes = {}, []
    timers = {"event": lambda: time_cuda(fn, reps), "graph": lambda: time_graph(fn, reps),
              "gpu": lambda: profile_ms(fn)}
    for method, timer in timers.items():
        try:
            out[f"{method}_ms"] = timer()
        except Exception as err:  # e.g. an op that cannot be captured in a CUDA graph
            out[f"{method}_ms"] = None
            notes.append(f"{method}: {type(err).__name__}: {err}"[:160])
            torch.cuda.synchronize()
    out["note"] = "; ".join(notes)
    return out


def bench_cast(n: int, reps: int, compile_reference: bool, variants=(0,)) -> list:
    x = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    y = torch.empty_like(x)
    gbytes = 2 * x.numel() * x.element_size() / 1e9
    copy = time_three(lambda: y.copy_(x), reps)
    rows = [dict(case="copy", granularity="-", **copy)]
    # kernel cases first: a failed graph capture of a reference case cannot disturb them
    kernel_cases = []
    for gran in ("tensor", "channel", 128):
        kernel_cases.append(("cuda kernel", str(gran), lambda g=gran: quantize(x, "e4m3", g,
                                                                               backend="cuda")))
    # groups along dim 0 (x_bwd / dy2 of a Linear) and both groupings in one call (the pair)
    for gran in ("channel", 128):
        kernel_cases.append(("cuda kernel, dim 0", str(gran),
                             lambda g=gran: quantize(x, "e4m3", g, dim=0, backend="cuda")))
    pair = OperandQuant("e4m3", 128)
    kernel_cases.append(("cuda pair (dim 1 + dim 0)", "128",
                         lambda: quantize_pair(x, pair, pair, backend="cuda")))
    # each kernel case once per variant, side by side; tensor- and channel-wise use the same
    # kernels in every variant, so only variant 0 times them
    cases = [(name, gran, fn, v) for name, gran, fn in kernel_cases for v in variants
             if v == 0 or gran not in ("tensor", "channel")]
    for gran in ("tensor", "channel", 128):
        cases.append(("reference (eager)", str(gran),
                      lambda g=gran: quantize_reference(x, "e4m3", g), None))
        if compile_reference:
            compiled = torch.compile(lambda t, g=gran: quantize_reference(t, "e4m3", g),
                                     dynamic=False)
            cases.append(("reference (torch.compile)", str(gran), lambda c=compiled: c(x), None))
    for name, gran, fn, variant in cases:
        t0 = time.perf_counter()
        try:
            if variant is not None:
                set_kernel_variant(variant)
            res = time_three(fn, reps)
        except Exception as err:  # compile failures are reported, not fatal
            print(f"{name} {gran}: failed: {err!r}"[:300])
            continue
        finally:
            if variant is not None:
                set_kernel_variant(0)
        res["wall_s"] = time.perf_counter() - t0
        rows.append(dict(case=name, granularity=gran, variant=variant, **res))
    for r in rows:
        # bytes moved: one read + one write of the tensor (two writes for the pair)
        moved = gbytes * (1.5 if r["case"].startswith("cuda pair") else 1.0)
        for m in METHODS:
            ms, base = r.get(f"{m}_ms"), copy.get(f"{m}_ms")
            r[f"{m}_vs_copy"] = ms / base if ms and base else None
            r[f"{m}_tb_per_s"] = moved / ms if ms else None
        # the fields of earlier runs (event timing)
        r["ms"], r["vs_copy"], r["tb_per_s"] = r["event_ms"], r["event_vs_copy"], \
            r["event_tb_per_s"]
    return rows


def bench_linear(tokens: int, features: int, reps: int, variants=(0,)) -> list:
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
    # the variants differ in block-wise kernels only: channel and tensor rows for variant 0 alone
    same = ("unquantized", "all six, e4m3 channel", "all six, e4m3 tensor")
    runs = [(name, cfg, None if name == "unquantized" else v)
            for name, cfg in configs.items() for v in (variants if name not in same else [0])]
    for name, cfg, variant in runs:
        set_kernel_variant(variant or 0)
        layer = QuantLinear(features, features, qconfig=cfg, backend="cuda", seed=1,
                            device="cuda", dtype=torch.bfloat16)

        def step():
            x.grad, layer.weight.grad = None, None
            layer(x).backward(g)

        def accumulate():
            # graph-safe step: gradients accumulate into buffers allocated before the capture
            layer(x).backward(g)

        try:
            ms = time_cuda(step, reps, inner=5)
            ms_sync = time_cuda(step, reps)
            quant_ms = quant_kernel_ms(step)
            gpu_ms = profile_ms(step)
        except Exception as err:  # keep the other rows
            print(f"{name}: failed: {err!r}"[:300])
            continue
        graph_ms, note = None, ""
        try:
            step()  # allocate x.grad and weight.grad outside the graph
            graph_ms = time_graph(accumulate, reps, calls=1)
        except Exception as err:
            note = f"graph: {type(err).__name__}: {err}"[:160]
            torch.cuda.synchronize()
        x.grad, layer.weight.grad = None, None
        if base is None:
            base, base_sync, base_graph = ms, ms_sync, graph_ms
        flops = 3 * 2 * tokens * features * features
        rows.append(dict(case=name, variant=variant, ms=ms, vs_unquantized=ms / base,
                         tflops=flops / ms / 1e9,
                         ms_sync_each=ms_sync, vs_unquantized_sync_each=ms_sync / base_sync,
                         graph_ms=graph_ms,
                         vs_unquantized_graph=(graph_ms / base_graph
                                               if graph_ms and base_graph else None),
                         quant_kernels_ms=quant_ms, gpu_ms=gpu_ms, note=note))
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
    parser.add_argument("--variants", default="0",
                        help="kernel variants to time side by side, comma-separated (e.g. 0,1)")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("bench_quant needs a CUDA device")
    variants = [int(v) for v in args.variants.split(",") if v.strip()]
    bad = [v for v in variants if not 0 <= v < num_kernel_variants()]
    if bad or not variants:
        raise SystemExit(f"--variants: each must be in 0..{num_kernel_variants() - 1}")
    linear = bench_linear(args.tokens, args.features, max(10, args.reps // 2), variants)
    set_kernel_variant(0)
    cast = bench_cast(args.size, args.reps, not args.no_compile, variants)
    device = torch.cuda.get_device_name()
    print(f"## Fake-quant cast, {args.size}x{args.size} bf16, e4m3 ({device})")
    print(f"(event: one call per event pair; graph: {GRAPH_CALLS} calls per CUDA graph replay; "
          "gpu: profiler kernel time per call)")
    print(markdown(cast, ["case", "granularity", "variant", "event_ms", "event_vs_copy", "graph_ms",
                          "graph_vs_copy", "gpu_ms", "gpu_vs_copy", "graph_tb_per_s", "note"]))
    print(f"\n## QuantLinear {args.features}x{args.features}, {args.tokens} tokens, bf16 fwd+bwd")
    print(markdown(linear, ["case", "variant", "ms", "vs_unquantized", "ms_sync_each",
                            "vs_unquantized_sync_each", "graph_ms", "vs_unquantized_graph",
                            "quant_kernels_ms", "gpu_ms", "tflops", "note"]))
    result = dict(device=torch.cuda.get_device_name(), torch=torch.__version__,
                  cuda=torch.version.cuda, args=vars(args), graph_calls=GRAPH_CALLS,
                  cast=cast, linear=linear)
    with open(args.out, "w") as fh:
        json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
