"""GPU timing helpers and the fake-quant cases the benchmarks share.

Imported by ``bench_quant.py``, ``bench_square.py`` and ``profile_quant.py`` (run as scripts from
``benchmarks/``). ``training.quant`` is imported inside the functions, so that a caller can put
another source tree first on ``sys.path`` and time that tree's kernel with the same code.
"""

import statistics

import torch

GRAPH_CALLS = 20  # calls per CUDA graph in the graph timings


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


def block_cases(x: torch.Tensor, fmt: str = "e4m3", block: int = 128) -> dict:
    """The block-wise cast cases of a 2-D ``x``: name -> function of no arguments.

    Groups of ``block`` along dim 1, along dim 0, and both in one call (the pair that
    ``QuantLinear`` uses for x / x_bwd, dy / dy2 and w / w_bwd).
    """
    from training.quant import quantize, quantize_pair
    from training.quant.config import OperandQuant

    pair = OperandQuant(fmt, block)
    return {
        f"block {block}, dim 1": lambda: quantize(x, fmt, block, backend="cuda"),
        f"block {block}, dim 0": lambda: quantize(x, fmt, block, dim=0, backend="cuda"),
        f"pair, block {block}": lambda: quantize_pair(x, pair, pair, backend="cuda"),
    }


def linear_steps(cfg, tokens: int, features: int, seed: int = 0):
    """A bf16 ``QuantLinear`` features -> features with config ``cfg`` on ``tokens`` tokens.

    Returns ``(step, accumulate)``: one forward + backward that first clears the gradients (for
    eager timing), and one that accumulates into gradients allocated by an earlier call (safe to
    capture in a CUDA graph).
    """
    from training.quant.linear import QuantLinear

    torch.manual_seed(seed)
    x = torch.randn(tokens, features, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    g = torch.randn(tokens, features, device="cuda", dtype=torch.bfloat16)
    layer = QuantLinear(features, features, qconfig=cfg, backend="cuda", seed=1, device="cuda",
                        dtype=torch.bfloat16)

    def step():
        x.grad, layer.weight.grad = None, None
        layer(x).backward(g)

    def accumulate():
        layer(x).backward(g)

    return step, accumulate
