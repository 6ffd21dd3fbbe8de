"""Regenerate the figures and numbers of docs/dataset.md from a sweep's run table and log.

    python scripts/dataset_docs.py sweeps/fp-h100.jsonl --log sweeps/fp-h100.log --figures docs

Writes ``dataset-loss-vs-D.png`` and ``dataset-penalty.png`` into ``--figures`` and prints, as
Markdown: runs by status, what diverged or failed, the sweep calls with their wall time and runs
per GPU-hour (from the runner's log lines), and the coverage table of ``bayesfp runs
--coverage``.
"""

import argparse
import re
from pathlib import Path

START = re.compile(r"(\d+) runs in the grid, (\d+) finished, (\d+) to run \((\w+), (\d+) per GPU "
                   r"on (\d+) GPUs\)")
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path)
    ap.add_argument("--log", type=Path, help="The runner's output of every call, concatenated.")
    ap.add_argument("--figures", type=Path, help="Folder for the PNG figures.")
    args = ap.parse_args()

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
              "| runs per GPU-hour |")
        print("|---|---|---|---|---|---|---|")
        for i, c in enumerate(calls, 1):
            rate = c["written"] / (c["wall_s"] * c["gpus"] / 3600)
            names = sorted(set(gpu_names[c["finished_before"]:c["finished_before"] + c["written"]]))
            gpu = ", ".join(n.replace("NVIDIA ", "") for n in names if n)
            print(f"| {i} | {gpu} | {c['per_gpu']} | {c['gpus']} | {c['written']} "
                  f"| {c['wall_s']:.0f} | {rate:.0f} |")
        runs = sum(c["written"] for c in calls)
        gpu_h = sum(c["wall_s"] * c["gpus"] for c in calls) / 3600
        if gpu_h:
            print(f"| all | | | | {runs} | {gpu_h * 3600:.0f} | {runs / gpu_h:.0f} |")
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
