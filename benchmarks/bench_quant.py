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

``--kernels square,generic`` times every block-wise kernel case and every block-wise quantized
Linear once per kernel set (``training/quant/kernel.py``), side by side in the same run.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from timing import GRAPH_CALLS, block_cases, linear_steps, profile_ms, time_cuda, time_graph

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a plain checkout
from training.quant import LinearQuantConfig, quantize, quantize_reference  # noqa: E402
from training.quant.kernel import KERNELS, check_kernel, kernel_name, set_kernel  # noqa: E402


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


def with_kernel(name, fn):
    """``fn`` run with kernel set ``name`` (None: the one in use), which is then restored."""
    if name is None:
        return fn()
    before = kernel_name()
    set_kernel(name)
    try:
        return fn()
    finally:
        set_kernel(before)


def bench_cast(n: int, reps: int, compile_reference: bool, kernels=KERNELS[:1]) -> list:
    x = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    y = torch.empty_like(x)
    gbytes = 2 * x.numel() * x.element_size() / 1e9
    copy = time_three(lambda: y.copy_(x), reps)
    rows = [dict(case="copy", granularity="-", **copy)]
    # kernel cases first: a failed graph capture of a reference case cannot disturb them. Tensor-
    # and channel-wise run the same kernels in both sets: timed once, with the set in use
    cases = [("cuda kernel", str(gran), lambda g=gran: quantize(x, "e4m3", g, backend="cuda"),
              None) for gran in ("tensor", "channel")]
    cases.append(("cuda kernel, dim 0", "channel",
                  lambda: quantize(x, "e4m3", "channel", dim=0, backend="cuda"), None))
    # groups of 128 along dim 1, along dim 0 (x_bwd / dy2 of a Linear) and both in one call
    for name, fn in block_cases(x).items():
        cases += [(f"cuda kernel, {name}", "128", fn, k) for k in kernels]
    for gran in ("tensor", "channel", 128):
        cases.append(("reference (eager)", str(gran),
                      lambda g=gran: quantize_reference(x, "e4m3", g), None))
        if compile_reference:
            compiled = torch.compile(lambda t, g=gran: quantize_reference(t, "e4m3", g),
                                     dynamic=False)
            cases.append(("reference (torch.compile)", str(gran), lambda c=compiled: c(x), None))
    for name, gran, fn, kernel in cases:
        t0 = time.perf_counter()
        try:
            res = with_kernel(kernel, lambda f=fn: time_three(f, reps))
        except Exception as err:  # compile failures are reported, not fatal
            print(f"{name} {gran}: failed: {err!r}"[:300])
            continue
        res["wall_s"] = time.perf_counter() - t0
        used = kernel or (kernel_name() if name.startswith("cuda") else None)
        rows.append(dict(case=name, granularity=gran, kernel=used, **res))
    for r in rows:
        # bytes moved: one read + one write of the tensor (two writes for the pair)
        moved = gbytes * (1.5 if "pair" in r["case"] else 1.0)
        for m in METHODS:
            ms, base = r.get(f"{m}_ms"), copy.get(f"{m}_ms")
            r[f"{m}_vs_copy"] = ms / base if ms and base else None
            r[f"{m}_tb_per_s"] = moved / ms if ms else None
    return rows


def time_linear(cfg, tokens: int, features: int, reps: int) -> dict:
    """Eager, synced and graph timings of one QuantLinear forward + backward step."""
    step, accumulate = linear_steps(cfg, tokens, features)
    out = dict(ms=time_cuda(step, reps, inner=5), ms_sync_each=time_cuda(step, reps),
               quant_kernels_ms=quant_kernel_ms(step), gpu_ms=profile_ms(step),
               graph_ms=None, note="")
    try:
        step()  # allocate the gradients outside the graph
        out["graph_ms"] = time_graph(accumulate, reps, calls=1)
    except Exception as err:
        out["note"] = f"graph: {type(err).__name__}: {err}"[:160]
        torch.cuda.synchronize()
    return out


def bench_linear(tokens: int, features: int, reps: int, kernels=KERNELS[:1]) -> list:
    configs = {
        "unquantized": LinearQuantConfig.none(),
        "all six, e4m3 block-128": LinearQuantConfig.from_spec("e4m3", 128, "all"),
        "all six, e4m3 channel": LinearQuantConfig.from_spec("e4m3", "channel", "all"),
        "all six, e4m3 tensor": LinearQuantConfig.from_spec("e4m3", "tensor", "all"),
        "w+w_bwd+x_bwd, e4m3 block-128": LinearQuantConfig.from_spec("e4m3", 128,
                                                                     "w+w_bwd+x_bwd"),
        "all six, e2m1:sr block-32": LinearQuantConfig.from_spec("e2m1:sr", 32, "all"),
    }
    # the kernel sets differ in block-wise kernels only: the other rows with the set in use
    same = ("unquantized", "all six, e4m3 channel", "all six, e4m3 tensor")
    runs = [(name, cfg, None if name in same else k)
            for name, cfg in configs.items() for k in (kernels if name not in same else [None])]
    rows, base = [], None
    flops = 3 * 2 * tokens * features * features
    for name, cfg, kernel in runs:
        try:
            res = with_kernel(kernel, lambda c=cfg: time_linear(c, tokens, features, reps))
        except Exception as err:  # keep the other rows
            print(f"{name}: failed: {err!r}"[:300])
            continue
        if base is None:
            base = res
        graph, base_graph = res["graph_ms"], base["graph_ms"]
        rows.append(dict(case=name, kernel=None if name == "unquantized" else kernel or
                         kernel_name(), vs_unquantized=res["ms"] / base["ms"],
                         tflops=flops / res["ms"] / 1e9,
                         vs_unquantized_sync_each=res["ms_sync_each"] / base["ms_sync_each"],
                         vs_unquantized_graph=graph / base_graph if graph and base_graph else None,
                         **res))
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
    parser.add_argument("--kernels", default=KERNELS[0],
                        help="kernel sets to time side by side, comma-separated "
                             "(e.g. square,generic)")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("bench_quant needs a CUDA device")
    try:
        kernels = [check_kernel(k.strip()) for k in args.kernels.split(",") if k.strip()]
    except ValueError as err:
        raise SystemExit(f"--kernels: {err}") from None
    linear = bench_linear(args.tokens, args.features, max(10, args.reps // 2), kernels)
    cast = bench_cast(args.size, args.reps, not args.no_compile, kernels)
    device = torch.cuda.get_device_name()
    print(f"## Fake-quant cast, {args.size}x{args.size} bf16, e4m3 ({device})")
    print(f"(event: one call per event pair; graph: {GRAPH_CALLS} calls per CUDA graph replay; "
          "gpu: profiler kernel time per call)")
    print(markdown(cast, ["case", "granularity", "kernel", "event_ms", "event_vs_copy", "graph_ms",
                          "graph_vs_copy", "gpu_ms", "gpu_vs_copy", "graph_tb_per_s", "note"]))
    print(f"\n## QuantLinear {args.features}x{args.features}, {args.tokens} tokens, bf16 fwd+bwd")
    print(markdown(linear, ["case", "kernel", "ms", "vs_unquantized", "ms_sync_each",
                            "vs_unquantized_sync_each", "graph_ms", "vs_unquantized_graph",
                            "quant_kernels_ms", "gpu_ms", "tflops", "note"]))
    result = dict(device=torch.cuda.get_device_name(), torch=torch.__version__,
                  cuda=torch.version.cuda, args=vars(args), graph_calls=GRAPH_CALLS,
                  cast=cast, linear=linear)
    with open(args.out, "w") as fh:
        json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
