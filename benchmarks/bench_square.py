"""Time the cases the square kernel serves for one source tree; compare trees side by side.

    python3 benchmarks/bench_square.py --label new --out new-1.json
    python3 benchmarks/bench_square.py --root OTHER_TREE --label old --out old-1.json
    python3 benchmarks/bench_square.py --table new-*.json old-*.json --out compare.json

One record per process, all timed in CUDA graphs (medians of ``--reps`` replays): a bf16 copy of
an 8192 x 8192 tensor (the memory floor), e4m3 blocks of 128 along dim 1, along dim 0 and the
pair of both (``GRAPH_CALLS`` calls per replay, ms per call); ``QuantLinear`` 4096 -> 4096 on
16384 tokens, bf16 forward + backward, unquantized and with all six operands e4m3 in blocks of
128 (one step per replay, ms per step). ``--root`` imports ``training.quant`` from another tree
(its own build cache, its default kernel), so two kernel versions run the same timing code. A
fake-quant extension is process-wide: run one process per tree, alternating trees, and let
``--table`` take each label's median over its records (ms per case, and each label's ratio to
the first label's).
"""

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def measure(reps: int) -> dict:
    """ms per case (see the module docstring) with the ``training`` package on ``sys.path``."""
    import torch
    from timing import block_cases, linear_steps, time_graph

    from training.quant import LinearQuantConfig

    x = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    y = torch.empty_like(x)
    ms = {"copy": time_graph(lambda: y.copy_(x), reps)}
    for name, fn in block_cases(x).items():
        ms[name] = time_graph(fn, reps)
    for name, cfg in [("linear, unquantized", LinearQuantConfig.none()),
                      ("linear, all six e4m3 block 128",
                       LinearQuantConfig.from_spec("e4m3", 128, "all"))]:
        step, accumulate = linear_steps(cfg, 16384, 4096)
        step()  # the gradients exist before the capture
        ms[name] = time_graph(accumulate, reps, calls=1)
        del step, accumulate
        torch.cuda.empty_cache()
    return ms


def baseline_case(case: str) -> str:
    """The case a case is measured against in the same process: the copy, or the plain Linear."""
    return "linear, unquantized" if case.startswith("linear") else "copy"


def table(records: list) -> dict:
    """Per label and case: median ms, median ratio to the same process's copy (or unquantized
    Linear), and the ratio of each label's median ms to the first label's."""
    labels = list(dict.fromkeys(r["label"] for r in records))
    cases = list(records[0]["ms"])
    mine = {lb: [r["ms"] for r in records if r["label"] == lb] for lb in labels}
    med = {lb: {c: statistics.median(ms[c] for ms in mine[lb]) for c in cases} for lb in labels}
    rel = {lb: {c: statistics.median(ms[c] / ms[baseline_case(c)] for ms in mine[lb])
                for c in cases} for lb in labels}
    first = labels[0]
    ratio = {lb: {c: med[lb][c] / med[first][c] for c in cases} for lb in labels[1:]}
    return dict(device=records[0]["device"], labels=labels,
                runs={lb: len(mine[lb]) for lb in labels}, median_ms=med,
                median_vs_copy_or_unquantized=rel, ratio_to_first=ratio)


def markdown(summary: dict) -> str:
    labels, med = summary["labels"], summary["median_ms"]
    rel = summary["median_vs_copy_or_unquantized"]
    head = ["case"] + [f"{lb} ms ({summary['runs'][lb]} runs)" for lb in labels] + \
        [f"{lb} vs copy / unquantized" for lb in labels] + \
        [f"{lb} / {labels[0]}" for lb in labels[1:]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in med[labels[0]]:
        cells = [c] + [f"{med[lb][c]:.4f}" for lb in labels] + \
            [f"{rel[lb][c]:.3f}" for lb in labels] + \
            [f"{summary['ratio_to_first'][lb][c]:.3f}" for lb in labels[1:]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=str(HERE.parent),
                    help="source tree whose training.quant is timed (default: this one)")
    ap.add_argument("--label", default="this tree")
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--table", nargs="+", metavar="JSON", help="compare records instead")
    ap.add_argument("--out", required=True, help="JSON output path")
    args = ap.parse_args()
    if args.table:
        summary = table([json.loads(Path(p).read_text()) for p in args.table])
        print(f"{summary['device']}: CUDA-graph medians\n\n{markdown(summary)}")
        Path(args.out).write_text(json.dumps(summary, indent=1) + "\n")
        return
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("bench_square needs a CUDA device")
    major, minor = torch.cuda.get_device_capability()
    os.environ.setdefault("TORCH_CUDA_ARCH_LIST", f"{major}.{minor}")
    sys.path.insert(0, str(Path(args.root).resolve()))
    ms = measure(args.reps)
    from training.quant import kernel

    record = dict(label=args.label, root=str(Path(args.root).resolve()),
                  device=torch.cuda.get_device_name(), torch=torch.__version__,
                  kernel_file=kernel.__file__, ms=ms)
    Path(args.out).write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(record))


if __name__ == "__main__":
    main()
