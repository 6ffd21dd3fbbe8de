"""Regenerate the figures and numbers of docs/dataset.md from a sweep's run table and log.

    python scripts/dataset_docs.py sweeps/fp-h100.jsonl --log sweeps/fp-h100.log --figures docs

Writes ``dataset-loss-vs-D.png`` and ``dataset-penalty.png`` into ``--figures`` and prints, as
Markdown: runs by status, what diverged or failed, the sweep calls with their wall time, runs
per GPU-hour, tokens per GPU-second and model-FLOPs utilisation (from the runner's log lines and
the records each call wrote), the same per model size, and the coverage table of ``bayesfp runs
--coverage``. With ``--grids`` (grid files, comma-separated, one per block) it also prints each
block's runs, tokens and GPU time, and what is still to run: the grid's runs not in the table,
timed at the per-GPU rates of the size table (sizes without runs interpolated in log N, log
rate between their measured neighbours).

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


def rate_at(rates: dict, N: float) -> float:
    """Tokens per GPU-second at model size ``N`` from ``rates`` ({N: rate} of measured sizes):
    the measured rate, else linear in (log N, log rate) between the nearest measured sizes on
    either side, else that of the nearest measured size."""
    import numpy as np

    xs = np.log(sorted(rates))
    ys = np.log([rates[n] for n in sorted(rates)])
    return float(np.exp(np.interp(np.log(N), xs, ys)))


def plan_rows(blocks: dict, done: set, rates: dict) -> list[dict]:
    """Per block (name -> runs with ``run_id``, ``N``, ``D`` and ``quantized``, in grid order;
    a run already in an earlier block counts there only): runs, tokens and GPU-seconds in all
    and still to run (runs whose id is not in ``done``), at ``rates`` ({"bf16" | "quantized":
    {N: tokens per GPU-second}}, :func:`rate_at`). The last row sums the blocks."""
    seen, rows = set(), []
    for name, runs in blocks.items():
        runs = [r for r in runs if r.run_id not in seen]
        seen |= {r.run_id for r in runs}
        left = [r for r in runs if r.run_id not in done]

        def secs(rr):
            return sum(r.D / rate_at(rates["quantized" if r.quantized else "bf16"], r.N)
                       for r in rr)

        rows.append(dict(block=name, runs=len(runs), tokens=sum(r.D for r in runs),
                         gpu_s=secs(runs), left=len(left), tokens_left=sum(r.D for r in left),
                         gpu_s_left=secs(left)))
    total = {k: sum(r[k] for r in rows) for k in rows[0] if k != "block"} if rows else {}
    return rows + ([dict(block="all", **total)] if rows else [])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path)
    ap.add_argument("--log", type=Path, help="The runner's output of every call, concatenated.")
    ap.add_argument("--figures", type=Path, help="Folder for the PNG figures.")
    ap.add_argument("--grids", help="Grid files of the run set, comma-separated (with --log): "
                    "what each still needs.")
    args = ap.parse_args()
    if args.grids and not args.log:
        ap.error("--grids needs --log (the rates come from the calls the log records)")

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
            sizes = size_throughput(df, per_gpu)
            for r in sizes:
                print(f"| {r['size']} | {r['kind']} | {r['runs']} | {r['run_tps'] / 1e6:.3f}M "
                      f"| {r['gpu_tps'] / 1e6:.2f}M | {r['mfu']:.1%} |")
            if args.grids:
                print_plan(args.grids.split(","), set(df["run_id"].astype(str)), sizes)
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


def print_plan(grids, done, sizes):
    """The plan table of :func:`plan_rows` for grid files, with calls of 8 minutes of sweeping."""
    from training.sweep.grid import expand, load_grid

    rates = {"bf16": {}, "quantized": {}}
    for r in sizes:
        rates[r["kind"]][r["N"]] = r["gpu_tps"]
    blocks = {Path(g).stem: expand(load_grid(g)).runs for g in grids}
    print("\n| block | runs | tokens | GPU time | still to run | tokens still | GPU time still "
          "| calls of 8 minutes of sweeping still |")
    print("|---|---|---|---|---|---|---|---|")
    for r in plan_rows(blocks, done, rates):
        print(f"| {r['block']} | {r['runs']} | {r['tokens'] / 1e9:.1f}B "
              f"| {r['gpu_s'] / 3600:.1f} h | {r['left']} | {r['tokens_left'] / 1e9:.1f}B "
              f"| {r['gpu_s_left'] / 3600:.1f} h | {r['gpu_s_left'] / 480:.0f} |")


if __name__ == "__main__":
    main()
