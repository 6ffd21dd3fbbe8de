"""Training throughput (tokens/s) per model size: bf16 eager, bf16 CUDA graph, and CUDA graph with
all six GEMM operands fake-quantized to e4m3 in blocks of 128.

    python3 benchmarks/bench_train.py --out $OUT/train.json
    python3 benchmarks/bench_train.py --sizes 100k,2m --target-s 0.5

Each row times whole training steps (batch gather, forward, backward, clip, AdamW) of the trainer
itself, after warm-up, on random tokens (vocabulary 8192; throughput does not depend on the data),
with each size's default batch size and sequence length 256. The quantized rows run the fake-quant
kernel set named by ``--kernel`` (default ``$BAYESFP_FQ_KERNEL``, else ``square``), recorded in the
output. It prints a markdown table and writes the rows as JSON.
"""

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a plain checkout

import numpy as np  # noqa: E402
import torch  # noqa: E402

from training.config import TrainConfig, resolve  # noqa: E402
from training.model import SIZES, params_and_flops  # noqa: E402
from training.train import Trainer  # noqa: E402

MODES = {
    "bf16 eager": dict(format="bf16", cuda_graph=False),
    "bf16 graph": dict(format="bf16", cuda_graph=True),
    "e4m3 B128 all graph": dict(format="e4m3", granularity="128", operands="all",
                                 cuda_graph=True),
}
VOCAB = 8192
MAX_STEPS = 300


def time_mode(size, mode, data, seq_len, target_s):
    """Return one result row: steps/s and tokens/s of ``size`` in ``mode``."""
    base = TrainConfig(model=size, seq_len=seq_len, tokens=1, eval_tokens=seq_len, device="cuda",
                       ptq_formats="", **{k: v for k, v in MODES[mode].items()
                                          if k != "cuda_graph"})
    cfg = resolve(base, True)
    tpstep = cfg.batch_size * cfg.seq_len
    cfg = replace(cfg, tokens=(MAX_STEPS + 20) * tpstep)
    t0 = time.perf_counter()
    tr = Trainer(cfg, data)
    if MODES[mode]["cuda_graph"]:
        tr.capture()
    setup_s = time.perf_counter() - t0
    tr.run(5)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    tr.run(5)
    torch.cuda.synchronize()
    probe = (time.perf_counter() - t0) / 5
    n = int(min(max(target_s / probe, 10), MAX_STEPS))
    t0 = time.perf_counter()
    tr.run(n)
    torch.cuda.synchronize()
    step_s = (time.perf_counter() - t0) / n
    loss = float(tr.loss_log[: 10 + n].float().mean())
    n_params, flops = params_and_flops(tr.gpt_config, tpstep)
    del tr
    torch.cuda.empty_cache()
    return {"size": size, "mode": mode, "N": n_params, "batch_size": cfg.batch_size,
            "seq_len": seq_len, "steps_timed": n, "step_ms": 1e3 * step_s,
            "tokens_per_s": tpstep / step_s, "model_tflops": flops / step_s / 1e12,
            "setup_s": setup_s, "mean_loss": loss}


def markdown(rows, sizes):
    """Return the result table: tokens/s per size and mode, and the graph's speed-up."""
    by = {(r["size"], r["mode"]): r for r in rows}
    head = ["size", "N", "batch x seq"] + [f"{m} (tok/s)" for m in MODES] + ["graph / eager"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in sizes:
        any_row = next((by[(s, m)] for m in MODES if (s, m) in by), None)
        if any_row is None:
            continue
        cells = [s, f"{any_row['N'] / 1e6:.2f}M", f"{any_row['batch_size']} x {any_row['seq_len']}"]
        for m in MODES:
            r = by.get((s, m))
            if r is None:
                cells.append("-")
            elif "does not divide" in r.get("error", ""):
                cells.append("n/a (block > width)")
            else:
                cells.append("error" if "error" in r else f"{r['tokens_per_s']:,.0f}")
        e, g = by.get((s, "bf16 eager")), by.get((s, "bf16 graph"))
        ok = e and g and "error" not in e and "error" not in g
        cells.append(f"{g['tokens_per_s'] / e['tokens_per_s']:.2f}x" if ok else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="", help="write the rows as JSON here")
    p.add_argument("--sizes", default=",".join(s for s in SIZES if s != "test"))
    p.add_argument("--modes", default=",".join(MODES), help="comma-separated subset of modes")
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--target-s", type=float, default=1.0, help="seconds timed per row")
    p.add_argument("--kernel", default=None,
                   help="fake-quant kernel set, square or generic (default: $BAYESFP_FQ_KERNEL, "
                        "else square)")
    args = p.parse_args()
    if not torch.cuda.is_available():
        sys.exit("error: bench_train needs a CUDA GPU")
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for s in sizes:
        if s not in SIZES:
            sys.exit(f"error: sizes: unknown size '{s}'")
    for m in modes:
        if m not in MODES:
            sys.exit(f"error: modes: unknown mode '{m}' (known: {', '.join(MODES)})")
    if args.kernel:
        from training.quant.kernel import check_kernel

        try:
            check_kernel(args.kernel)
        except ValueError as exc:
            sys.exit(f"error: kernel: {exc}")
    rng = np.random.default_rng(0)
    data = SimpleNamespace(train=rng.integers(0, VOCAB, 4_000_000).astype(np.uint16),
                           val=rng.integers(0, VOCAB, 10_000).astype(np.uint16),
                           vocab_size=VOCAB, corpus_hash="random")
    torch.backends.cuda.matmul.allow_tf32 = True
    t_start = time.perf_counter()
    build_s, fq_kernel = None, None
    if any(MODES[m]["format"] != "bf16" for m in modes):
        # build (or load the cached build of) the fake-quant kernel for this GPU only, untimed
        major, minor = torch.cuda.get_device_capability()
        os.environ.setdefault("TORCH_CUDA_ARCH_LIST", f"{major}.{minor}")
        from training.quant import kernel

        t0 = time.perf_counter()
        try:
            kernel.load_extension()
            build_s = time.perf_counter() - t0
            if args.kernel:
                kernel.set_kernel(args.kernel)
            fq_kernel = kernel.kernel_name()
            print(f"fake-quant kernel ready in {build_s:.1f} s ({fq_kernel})", file=sys.stderr,
                  flush=True)
        except Exception as exc:  # the quantized rows then run on the torch reference
            print(f"fake-quant kernel unavailable: {exc}", file=sys.stderr, flush=True)
    rows = []
    for s in sizes:
        for m in modes:
            try:
                row = time_mode(s, m, data, args.seq_len, args.target_s)
            except Exception as exc:  # one failed row (e.g. out of memory) must not end the run
                row = {"size": s, "mode": m, "error": f"{type(exc).__name__}: {exc}"[:300]}
                torch.cuda.empty_cache()
            rows.append(row)
            msg = row.get("error") or f"{row['tokens_per_s']:,.0f} tok/s, {row['step_ms']:.2f} ms"
            print(f"{s:>5} {m:<22} {msg}", file=sys.stderr, flush=True)
    table = markdown(rows, sizes)
    print(table)
    result = {
        "benchmark": "train_throughput",
        "gpu": torch.cuda.get_device_name(),
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda,
        "seq_len": args.seq_len,
        "vocab_size": VOCAB,
        "wall_s": time.perf_counter() - t_start,
        "kernel_build_s": build_s,
        "fq_kernel": fq_kernel,
        "rows": rows,
        "table_md": table,
    }
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
