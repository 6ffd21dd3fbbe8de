"""Final losses of the same runs in two run tables, joined on run_id.

    python scripts/compare_tables.py sweeps/fp-h100.jsonl sweeps/repeat-h200.jsonl

The same config has the same run id (a hash of the resolved config and the corpus), so a run made
again (for example on another GPU model, with grids/repeat-gpu.toml) appears in both tables under
one id. Prints, as Markdown, each common finished run with its loss and GPU in both tables and the
difference (second minus first), then the median and largest absolute difference, next to the
seed-to-seed spread of the first table (standard deviation over seeds of each configuration run
with several seeds, median over configurations) for scale. Losses in nats/token.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a plain checkout


def model_name(r) -> str:
    """The model size name from a record's config (``"3.4m-w512 "``), or "" when absent."""
    try:
        return json.loads(r["config"])["model"] + " "
    except (KeyError, TypeError, ValueError):
        return ""


def join(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Finished runs present in both validated tables, one row per run id.

    Columns: ``run_id``, ``label``, ``loss_a``, ``gpu_a``, ``loss_b``, ``gpu_b``, ``diff``
    (``loss_b - loss_a``).
    """
    def ok(t):
        t = t[t["status"].astype(str) == "ok"]
        return t.drop_duplicates("run_id", keep="last").set_index("run_id")

    ta, tb = ok(a), ok(b)
    ids = [i for i in ta.index if i in tb.index]

    def gpu(t, i):
        return str(t.at[i, "gpu"]) if "gpu" in t else ""

    rows = []
    for i in ids:
        r = ta.loc[i]
        label = (f"{model_name(r)}N={float(r['N']):.3g} D={float(r['D']):.3g} {r['format']} "
                 f"B={r['B']} {r['operands']} s{r['seed']}")
        rows.append(dict(run_id=i, label=label, loss_a=float(r["loss"]), gpu_a=gpu(ta, i),
                         loss_b=float(tb.at[i, "loss"]), gpu_b=gpu(tb, i)))
    out = pd.DataFrame(rows, columns=["run_id", "label", "loss_a", "gpu_a", "loss_b", "gpu_b"])
    out["diff"] = out["loss_b"] - out["loss_a"]
    return out


def seed_spread(table: pd.DataFrame) -> float:
    """Median over configurations run with >= 2 seeds of the sd of their final losses (NaN if
    none)."""
    from bayesfp.runs.coverage import config_key

    ok = table[table["status"].astype(str) == "ok"]
    sd = ok.groupby(config_key(ok))["loss"].agg(["count", "std"])
    sd = sd[sd["count"] >= 2]["std"]
    return float(sd.median()) if len(sd) else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("first", type=Path, help="run table (its losses are the reference)")
    ap.add_argument("second", type=Path, help="run table with some of the same runs made again")
    args = ap.parse_args()
    from bayesfp.errors import RunTableError
    from bayesfp.runs import read_runs

    try:
        a, b = read_runs(args.first), read_runs(args.second)
    except RunTableError as exc:
        sys.exit(f"error: {str(exc).splitlines()[0]}")
    j = join(a, b)
    if j.empty:
        sys.exit("error: the two tables have no finished run in common (no shared run_id)")
    print("| run | first | GPU | second | GPU | second - first |")
    print("|---|---|---|---|---|---|")
    for r in j.itertuples():
        print(f"| {r.label} | {r.loss_a:.4f} | {r.gpu_a} | {r.loss_b:.4f} | {r.gpu_b} "
              f"| {r.diff:+.4f} |")
    ad = np.abs(j["diff"].to_numpy())
    print(f"\n{len(j)} runs in both; |difference| median {np.median(ad):.4f}, largest "
          f"{ad.max():.4f}, exactly equal {int((ad == 0).sum())}; seed-to-seed sd in the first "
          f"table (median over configurations with several seeds): {seed_spread(a):.4f}")


if __name__ == "__main__":
    main()
