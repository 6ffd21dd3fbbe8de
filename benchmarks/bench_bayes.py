"""Benchmark: Bayesian Sun-law fit against the point fit with bootstrap, on the shipped runs.

Run from the repository root::

    .venv/bin/python benchmarks/bench_bayes.py [--repeats 3] [--n-boot 1000]

The Bayesian fit is 4 chains x (1000 tune + 1000 draws) with nutpie on 2 cores, complete pooling.
Each repeat is timed twice: "cold" after forgetting the compiled model (includes compilation,
as a first fit in a fresh process) and "warm" (compiled model reused, another seed). Prints a
Markdown table for docs/benchmarks.md.
"""

import argparse
import os
import platform
import statistics
import time
from importlib.resources import files

from bayesfp.bayes.io import fit_info
from bayesfp.bayes.models import model_for
from bayesfp.bayes.sample import clear_cache
from bayesfp.fit.point import fit_point
from bayesfp.runs import read_runs


def _bayes(runs, seed: int, cold: bool) -> dict:
    if cold:
        clear_cache()
    t = time.perf_counter()
    fit = model_for("sun", runs, sampler=dict(seed=seed)).fit()
    wall = time.perf_counter() - t
    g = fit_info(fit)["gate"]
    return {"wall": wall, "rhat": g["rhat_max"], "ess_bulk": g["ess_bulk_min"],
            "ess_tail": g["ess_tail_min"], "div": g["divergences"], "passed": g["passed"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--n-boot", type=int, default=1000)
    args = ap.parse_args()
    runs = read_runs(files("bayesfp") / "data" / "demo_runs.csv")
    n_ok = int((runs["status"] == "ok").sum())

    rows = []
    for i in range(args.repeats):
        rows.append(("cold", _bayes(runs, seed=10 + i, cold=True)))
        rows.append(("warm", _bayes(runs, seed=20 + i, cold=False)))
    t = time.perf_counter()
    fit_point(runs, "sun", n_boot=args.n_boot)
    point = time.perf_counter() - t

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"{len(runs)} runs ({n_ok} ok)")
    print("| fit | wall s | R-hat max | bulk ESS min | tail ESS min | divergences | gate |")
    print("|---|---|---|---|---|---|---|")
    for kind, r in rows:
        print(f"| Bayes ({kind}) | {r['wall']:.1f} | {r['rhat']:.4f} | {r['ess_bulk']:.0f} | "
              f"{r['ess_tail']:.0f} | {r['div']} | {'pass' if r['passed'] else 'FAIL'} |")
    for kind in ("cold", "warm"):
        walls = [r["wall"] for k, r in rows if k == kind]
        print(f"| Bayes ({kind}), median of {len(walls)} | {statistics.median(walls):.1f} "
              "| | | | | |")
    print(f"| point fit + {args.n_boot} bootstraps | {point:.1f} | | | | | |")


if __name__ == "__main__":
    main()
