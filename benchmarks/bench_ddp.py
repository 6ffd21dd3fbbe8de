"""Data-parallel training throughput (tokens/s) per model size at one world size, and the scaling
efficiency table over several world sizes.

    python3 benchmarks/bench_ddp.py --out $OUT/ddp_w1.json                # 1 GPU, no torchrun
    torchrun --nproc_per_node 2 benchmarks/bench_ddp.py --out $OUT/ddp_w2.json
    torchrun --nproc_per_node 8 benchmarks/bench_ddp.py --out $OUT/ddp_w8.json
    python3 benchmarks/bench_ddp.py --table $OUT/ddp_w*.json             # efficiency table

Each row times whole training steps of the trainer itself (``training.train.Trainer`` under DDP:
batch gather, forward, backward with the gradient all-reduce, clip, AdamW) after warm-up, on
random tokens (vocabulary 8192), with each size's default global batch split over the processes
(strong scaling: the run is the same at every world size) and sequence length 256. Steps are
eager (``eager`` rows); at world size 1 on a GPU the whole-step CUDA graph is timed too
(``graph`` rows), which DDP runs do not use. Efficiency at K processes is tokens/s at K over K
times tokens/s of the eager row at 1. ``--device cpu`` runs the same on the CPU with gloo, to
check the script without GPUs. Set NCCL_NVLS_ENABLE=0 (``training.ddp`` does so when unset).
"""

import argparse
import glob
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a plain checkout

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.distributed as tdist  # noqa: E402

from training import ddp  # noqa: E402
from training.config import TrainConfig, resolve  # noqa: E402
from training.model import SIZES, params_and_flops  # noqa: E402
from training.train import Trainer  # noqa: E402

VOCAB = 8192
MAX_STEPS = 300
DEFAULT_SIZES = "6.8m,11m,26m,51m,85m"


def sync(tr):
    """Wait for this rank's device, then for every rank."""
    if tr.device.type == "cuda":
        torch.cuda.synchronize(tr.device)
    if tr.dist.world_size > 1:
        tdist.barrier()


def agree(n, tr):
    """Return rank 0's ``n`` on every rank (each must run the same number of steps)."""
    if tr.dist.world_size == 1:
        return n
    t = torch.tensor([n], dtype=torch.long, device=tr.device)
    tdist.broadcast(t, 0)
    return int(t.item())


def time_size(size, mode, data, args, dist, device):
    """Return one result row: step time and tokens/s of ``size`` at this world size."""
    base = TrainConfig(model=size, seq_len=args.seq_len, tokens=1, eval_tokens=args.seq_len,
                       device=device.split(":")[0], ptq_formats="")
    cfg = resolve(base, device != "cpu")
    tpstep = cfg.batch_size * cfg.seq_len  # global
    cfg = replace(cfg, tokens=(MAX_STEPS + 20) * tpstep, device=device)
    t0 = time.perf_counter()
    tr = Trainer(cfg, data, dist)
    if mode == "graph":
        tr.capture()
    setup_s = time.perf_counter() - t0
    tr.run(5)
    sync(tr)
    t0 = time.perf_counter()
    tr.run(5)
    sync(tr)
    probe = (time.perf_counter() - t0) / 5
    n = agree(int(min(max(args.target_s / probe, 10), MAX_STEPS)), tr)
    sync(tr)
    t0 = time.perf_counter()
    tr.run(n)
    sync(tr)
    step_s = (time.perf_counter() - t0) / n
    loss = float(tr.losses(0, 10 + n).mean())
    n_params, flops = params_and_flops(tr.gpt_config, tpstep)
    del tr
    if device != "cpu":
        torch.cuda.empty_cache()
    k = dist.world_size
    return {"size": size, "mode": mode, "world_size": k, "N": n_params,
            "batch_size": cfg.batch_size, "batch_per_rank": cfg.batch_size // k,
            "seq_len": cfg.seq_len, "steps_timed": n, "step_ms": 1e3 * step_s,
            "tokens_per_s": tpstep / step_s, "tokens_per_s_per_rank": tpstep / step_s / k,
            "model_tflops": flops / step_s / 1e12, "setup_s": setup_s, "mean_loss": loss}


def load(patterns):
    """Return the result dicts of the files (or glob patterns) ``patterns``."""
    paths = [p for pat in patterns for p in (sorted(glob.glob(pat)) or [pat])]
    return [json.loads(Path(p).read_text()) for p in paths]


def table(results):
    """Return the markdown table of tokens/s per world size and the scaling efficiency."""
    rows = [r | {"device": res["device"]} for res in results for r in res["rows"]
            if "error" not in r]
    worlds = sorted({r["world_size"] for r in rows})
    multi = [k for k in worlds if k > 1]
    by = {(r["device"], r["size"], r["mode"], r["world_size"]): r for r in rows}
    head = (["device", "size", "mode"] + [f"K={k} tok/s" for k in worlds]
            + [f"eff K={k}" for k in multi])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    order = list(SIZES)
    for dev, size, mode in sorted({key[:3] for key in by}, key=lambda x: (
            x[0], order.index(x[1]) if x[1] in order else len(order), x[2])):
        cells = [dev, size, mode]
        for k in worlds:
            r = by.get((dev, size, mode, k))
            cells.append(f"{r['tokens_per_s']:,.0f}" if r else "-")
        one = by.get((dev, size, "eager", 1))
        for k in multi:
            r = by.get((dev, size, mode, k))
            cells.append(f"{r['tokens_per_s'] / (k * one['tokens_per_s']):.2f}" if r and one
                         else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def bench(args):
    """Time every size at this process's world size; rank 0 prints and writes the rows."""
    cuda = torch.cuda.is_available() and args.device != "cpu"
    dist, device, owned = ddp.setup("cuda" if cuda else "cpu")
    try:
        sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
        for s in sizes:
            if s not in SIZES:
                raise ValueError(f"sizes: unknown size '{s}'")
        rng = np.random.default_rng(0)
        data = SimpleNamespace(train=rng.integers(0, VOCAB, 4_000_000).astype(np.uint16),
                               val=rng.integers(0, VOCAB, 10_000).astype(np.uint16),
                               vocab_size=VOCAB, corpus_hash="random")
        if cuda:
            torch.backends.cuda.matmul.allow_tf32 = True
        modes = ["eager"] + (["graph"] if cuda and dist.world_size == 1 else [])
        t_start, rows = time.perf_counter(), []
        for s in sizes:
            for mode in modes:
                try:
                    row = time_size(s, mode, data, args, dist, device)
                except (ValueError, torch.cuda.OutOfMemoryError) as exc:
                    # the same on every rank (a config refused, or too big at this split)
                    row = {"size": s, "mode": mode, "world_size": dist.world_size,
                           "error": f"{type(exc).__name__}: {exc}"[:300]}
                    if cuda:
                        torch.cuda.empty_cache()
                rows.append(row)
                if dist.main:
                    msg = row.get("error") or (f"{row['tokens_per_s']:,.0f} tok/s, "
                                               f"{row['step_ms']:.2f} ms/step")
                    print(f"K={dist.world_size} {s:>5} {mode:<6} {msg}", file=sys.stderr,
                          flush=True)
        name = torch.cuda.get_device_name(device) if cuda else "cpu"
        result = {"benchmark": "ddp_throughput", "device": name, "world_size": dist.world_size,
                  "backend": tdist.get_backend() if dist.world_size > 1 else "none",
                  "torch_version": torch.__version__, "cuda_version": torch.version.cuda,
                  "seq_len": args.seq_len, "vocab_size": VOCAB,
                  "wall_s": time.perf_counter() - t_start, "rows": rows}
        if dist.main:
            print(table([result]))
            if args.out:
                Path(args.out).parent.mkdir(parents=True, exist_ok=True)
                Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    finally:
        ddp.teardown(owned)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="", help="write the rows as JSON here (rank 0)")
    p.add_argument("--sizes", default=DEFAULT_SIZES)
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--target-s", type=float, default=2.0, help="seconds timed per row")
    p.add_argument("--device", default="auto", choices=("auto", "cpu"),
                   help="cpu: gloo on the CPU (a check of the script, not a benchmark)")
    p.add_argument("--table", nargs="+", metavar="JSON",
                   help="print the efficiency table of these result files and exit")
    args = p.parse_args()
    if args.table:
        print(table(load(args.table)))
        return
    if args.device == "auto" and not torch.cuda.is_available():
        sys.exit("error: bench_ddp needs CUDA GPUs (or --device cpu to check the script)")
    try:
        bench(args)
    except ValueError as exc:
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()
