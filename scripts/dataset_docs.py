"""Regenerate the figures and numbers of docs/dataset.md from a sweep's run table and log.

    python scripts/dataset_docs.py sweeps/fp-h100.jsonl --log sweeps/fp-h100.log --figures docs

Writes ``dataset-loss-vs-D.png`` and ``dataset-penalty.png`` into ``--figures`` and prints, as
Markdown: runs by status, what diverged or failed, the sweep calls with their wall time, runs
per GPU-hour, tokens per GPU-second and model-FLOPs utilisation (from the runner's log lines and
the records each call wrote), the same per model size, and the coverage table of ``bayesfp runs
--coverage``.

Model FLOPs are ``6 x params_total x D`` per run (the tied LM head included, attention's dot
products not), against ``PEAK_FLOPS`` per GPU (dense BF16 of an H100 or H200 SXM).
"""

import argparse
import re
from pathlib import Path

START = re.compile(r"(\d+) runs in the grid, (\d+) finished, (\d+) to run \((\w+), (\d+) per GPU "
                   r"on (\d+) GPUs\)")
PEAK_FLOPS = 989e12
END = re.compile(r"wrote (\d+) records \(([^)]*)\); (\d+) runs left; ([\d.]+) s")


def sweep_calls(log_text: str) -> list[dict]:
    """One dict per runner invocation in a log: runs written, wall seconds, GPUs, runs per GPU."""
    calls, cur = [], None
    for line in log_text.splitlines():
        if m := START.search(line):
            cur = dict(per_gpu=int(m[5]), gpus=int(m[6]), finished_before=int(m[2]))
        elif (m := END.search(line)) and cur is not None:
            cur.update(written=int(m[1]), statuses=m[2], left=int(m[3]), wall_s=float(m[4]))
            calls.append(cur)
            cur = None
    return calls


def call_throughput(call: dict, written) -> dict:
    """Tokens, model FLOPs, tokens per GPU-second and MFU of one call from the records it wrote
    (a DataFrame with ``D`` and ``params_total``); ``nan`` where the records lack them."""
    gpu_s = call["wall_s"] * call["gpus"]
    tokens = float(written["D"].sum()) if "D" in written else float("nan")
    if "params_total" in written:
        flops = float((6.0 * written["params_total"] * written["D"]).sum())
    else:
        flops = float("nan")
    return dict(tokens=tokens, flops=flops, tokens_per_gpu_s=tokens / gpu_s,
                mfu=flops / (gpu_s * PEAK_FLOPS))


def size_throughput(df, per_gpu) -> list[dict]:
    """Per model size and kind (bf16 / quantized): runs, median tokens/s of a run, that times the
    runs sharing its GPU (``per_gpu``, a Series aligned with the DataFrame ``df``), and the MFU
    it gives."""
    import json

    import numpy as np

    ok = (df["status"] == "ok") & df["tokens_per_s"].notna() & per_gpu.notna()
    d = df[ok].assign(per_gpu=per_gpu[ok])
    d = d.assign(size=[json.loads(c).get("model", "") for c in d["config"]],
                 kind=np.where(d["format"].astype(str) == "bf16", "bf16", "quantized"))
    rows = []
    for (size, kind), g in d.groupby(["size", "kind"], sort=False):
        run_tps = float(g["tokens_per_s"].median())
        gpu_tps = float((g["tokens_per_s"] * g["per_gpu"]).median())
        mfu = float((g["tokens_per_s"] * g["per_gpu"] * 6.0 * g["params_total"]).median())
        rows.append(dict(size=size, kind=kind, runs=len(g), run_tps=run_tps, gpu_tps=gpu_tps,
                         mfu=mfu / PEAK_FLOPS, N=float(g["N"].iloc[0])))
    return sorted(rows, key=lambda r: (r["N"], r["kind"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path)
    ap.add_argument("--log", type=Path, help="The runner's output of every call, concatenated.")
    ap.add_argument("--figures", type=Path, help="Folder for the PNG figures.")
    args = ap.parse_args()

    import numpy as np
    import pandas as pd

    from bayesfp.report.data_figures import loss_vs_tokens, penalty_vs_bits
    from bayesfp.runs import read_runs, validate_runs
    from bayesfp.runs.coverage import coverage

    df, report = validate_runs(read_runs(args.runs))
    print(f"runs: {report.n_runs} ({', '.join(f'{s} {k}' for s, k in report.counts.items())})")
    for kind, ids in (("diverged", report.diverged), ("failed", report.failed)):
        if len(ids):
            print(f"{kind}: {', '.join(map(str, ids))}")
    if args.log:
        calls = sweep_calls(args.log.read_text())
        # the table is appended to in call order: call i wrote the records after those before it
        gpu_names = (df["gpu"].astype(str).tolist() if "gpu" in df
                     else [""] * len(df))
        print("\n| call | GPU | runs per GPU | GPUs | runs written | wall (s) "
              "| runs per GPU-hour | tokens per GPU-second | MFU |")
        print("|---|---|---|---|---|---|---|---|---|")
        per_gpu = pd.Series(np.nan, index=df.index)
        tokens = flops = 0.0
        start = 0
        for i, c in enumerate(calls, 1):
            rate = c["written"] / (c["wall_s"] * c["gpus"] / 3600)
            # a call may run a sub-grid, so its records follow all those written before it
            rows = slice(start, start + c["written"])
            start += c["written"]
            names = sorted(set(gpu_names[rows]))
            gpu = ", ".join(n.replace("NVIDIA ", "") for n in names if n)
            tp = call_throughput(c, df.iloc[rows])
            per_gpu.iloc[rows] = c["per_gpu"]
            tokens += tp["tokens"]
            flops += tp["flops"]
            print(f"| {i} | {gpu} | {c['per_gpu']} | {c['gpus']} | {c['written']} "
                  f"| {c['wall_s']:.0f} | {rate:.0f} | {tp['tokens_per_gpu_s'] / 1e6:.2f}M "
                  f"| {tp['mfu']:.1%} |")
        runs = sum(c["written"] for c in calls)
        gpu_s = sum(c["wall_s"] * c["gpus"] for c in calls)
        if gpu_s:
            print(f"| all | | | | {runs} | {gpu_s:.0f} | {runs / gpu_s * 3600:.0f} "
                  f"| {tokens / gpu_s / 1e6:.2f}M | {flops / gpu_s / PEAK_FLOPS:.1%} |")
        if "tokens_per_s" in df and "params_total" in df and "config" in df:
            print("\n| size | kind | runs | tokens/s of a run (median) | x runs per GPU "
                  "| MFU |")
            print("|---|---|---|---|---|---|")
            for r in size_throughput(df, per_gpu):
                print(f"| {r['size']} | {r['kind']} | {r['runs']} | {r['run_tps'] / 1e6:.3f}M "
                      f"| {r['gpu_tps'] / 1e6:.2f}M | {r['mfu']:.1%} |")
    print("\n| requirement | required | found | met | missing |")
    print("|---|---|---|---|---|")
    for c in coverage(df):
        missing = ", ".join(map(str, c.missing[:8])) + (" ..." if len(c.missing) > 8 else "")
        print(f"| {c.name} | {c.required} | {c.found} | {'yes' if c.met else 'no'} | {missing} |")
    if args.figures:
        args.figures.mkdir(parents=True, exist_ok=True)
        for name, fig in (("dataset-loss-vs-D.png", loss_vs_tokens(df)),
                          ("dataset-penalty.png", penalty_vs_bits(df))):
            fig.savefig(args.figures / name, dpi=90)
            print(f"wrote {args.figures / name}")


if __name__ == "__main__":
    main()
