"""The peak-LR rule of a size family from an LR sweep, and a throughput table for the sweep plan.

    python scripts/lr_rule.py sweeps/v2-lr.jsonl --fit f850k,f28m [--write-sizes training/model.py]
        [--throughput out/tp.json --per-gpu 8]

For each swept size, the optimum is the vertex of a parabola in log2(lr) through the best
finished run and its two neighbours on the LR ladder (the best run itself when it lies at an end
of the ladder: the rule then says so). The rule is the power law through the optima of the two
``--fit`` sizes, ``lr(N) = lr_a (N / N_a)^b``; every size of the family gets that value rounded
to two significant digits. Other swept sizes are checks: their own optimum is printed beside the
rule's value. ``--write-sizes`` puts the values into the family's entries of ``training.model``
(the ``("name", width, lr)`` tuples). ``--throughput`` writes the single-run tokens/s of each
family size for ``training sweep --throughput``, from the runs' measured tokens/s at ``--per-gpu``
runs per GPU (the sweep's estimator divides them by K / gain(K), gain = 2 for K >= 4), sizes not
swept interpolated log-linearly in N, quantized runs taken as 1.25x slower until measured.
"""

import argparse
import json
import math
import re
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.model import gpt_config, params_and_flops  # noqa: E402

FAMILY = ("f850k", "f3.4m", "f7.1m", "f13m", "f28m")
QUANT_SLOWER = 1.25


def optimum(points):
    """Return (lr*, interior) from [(lr, loss)] sorted by lr: the parabola vertex in log2 lr."""
    best = min(range(len(points)), key=lambda i: points[i][1])
    if best in (0, len(points) - 1):
        return points[best][0], False
    (x0, y0), (x1, y1), (x2, y2) = [(math.log2(lr), loss) for lr, loss in points[best - 1:best + 2]]
    # vertex of the parabola through three points
    denom = (x0 - x1) * (x0 - x2) * (x1 - x2)
    a = (x2 * (y1 - y0) + x1 * (y0 - y2) + x0 * (y2 - y1)) / denom
    b = (x2 * x2 * (y0 - y1) + x1 * x1 * (y2 - y0) + x0 * x0 * (y1 - y2)) / denom
    return 2 ** (-b / (2 * a)), True


def round2(x):
    """``x`` to two significant digits."""
    return float(f"{x:.2g}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("table")
    ap.add_argument("--fit", default="f850k,f28m")
    ap.add_argument("--write-sizes")
    ap.add_argument("--throughput")
    ap.add_argument("--per-gpu", type=int, default=8)
    args = ap.parse_args(argv)

    runs = defaultdict(list)
    rates = defaultdict(list)
    for line in Path(args.table).read_text().splitlines():
        r = json.loads(line)
        cfg = json.loads(r["config"])
        loss = r["loss"] if r["status"] == "ok" and r["loss"] is not None else math.inf
        runs[cfg["model"]].append((cfg["lr"], loss, r["status"]))
        if r["status"] == "ok" and r.get("tokens_per_s"):
            rates[cfg["model"]].append(r["tokens_per_s"])
    n_of = {k: params_and_flops(gpt_config(k, 8192, 256), 1)[0] for k in FAMILY}
    opt = {}
    for model in sorted(runs, key=n_of.get):
        pts = sorted((lr, loss) for lr, loss, _ in runs[model])
        print(f"{model} (N {n_of[model]:,}):")
        for lr, loss, status in sorted(runs[model]):
            print(f"  lr {lr:.3g}  {status:8s} loss {loss:.4f}")
        lr_star, interior = optimum(pts)
        opt[model] = lr_star
        print(f"  optimum {lr_star:.3g}" + ("" if interior else " (at the end of the ladder)"))
    a, b = args.fit.split(",")
    slope = math.log(opt[b] / opt[a]) / math.log(n_of[b] / n_of[a])
    print(f"rule: lr(N) = {opt[a]:.3g} (N / {n_of[a]:,})^{slope:.3f}")
    rule = {k: round2(opt[a] * (n_of[k] / n_of[a]) ** slope) for k in FAMILY}
    for k in FAMILY:
        check = f"  (sweep optimum {opt[k]:.3g})" if k in opt and k not in (a, b) else ""
        print(f"  {k}: {rule[k]:.2g}{check}")
    if args.write_sizes:
        path = Path(args.write_sizes)
        text = path.read_text()
        for k in FAMILY:
            pattern = rf'\("{re.escape(k)}", (\d+), [0-9.e-]+\)'
            text, n = re.subn(pattern, rf'("{k}", \1, {rule[k]!r})', text)
            if n != 1:
                raise SystemExit(f"error: {path}: no single entry for size {k}")
        path.write_text(text)
        print(f"wrote the rule's LRs into {path}")
    if args.throughput:
        k, gain = args.per_gpu, min(2.0, 1 + (args.per_gpu - 1) / 3)
        measured = {m: sorted(v)[len(v) // 2] * k / gain for m, v in rates.items()}
        known = sorted(measured, key=n_of.get)
        table = {}
        for m in FAMILY:
            if m in measured:
                tps = measured[m]
            else:  # log-linear in N between the nearest measured sizes (or the nearest one)
                lo = [s for s in known if n_of[s] < n_of[m]]
                hi = [s for s in known if n_of[s] > n_of[m]]
                if lo and hi:
                    s0, s1 = lo[-1], hi[0]
                    t = math.log(n_of[m] / n_of[s0]) / math.log(n_of[s1] / n_of[s0])
                    tps = math.exp((1 - t) * math.log(measured[s0]) + t * math.log(measured[s1]))
                else:
                    tps = measured[(lo or hi)[-1 if lo else 0]]
            table[m] = {"bf16": tps, "quant": tps / QUANT_SLOWER}
        Path(args.throughput).write_text(json.dumps({"tokens_per_s": table}, indent=1))
        print(f"wrote {args.throughput}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
