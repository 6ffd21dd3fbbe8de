"""Calibration on misspecified simulated runs (docs/bayes.md, "On misspecified simulated runs").

Draws data sets for the design of the shipped core runs (their N, D, formats, blocks, operand
sets and seeds) from a known Sun law with the structure real runs have (cell effects, a
batch-size-like confound, seed effects shared by the formats of a seed, noise falling with D),
fits each with a model and reports

- per cut (top20_N, top20_D, top2_N): the held-out runs' coverage by the central 50% and 90%
  predictive intervals (mean and median over data sets, and the share of sets in [0.85, 0.95]);
- on the full table: whether each true coefficient, D_crit of E2M1 and E4M3 (N = 1e6, B = 128)
  and the true best split at 6 and 8 bits lie in their central 50% / 90% intervals (for the
  splits: in the smallest set of splits holding 90% of P(best)).

Usage (the models are compiled once and the data swapped between sets)::

    .venv/bin/python benchmarks/calibrate_simulated.py --sets 30 --model default \\
        --out benchmarks/results/calibrate-sim-default.csv
    .venv/bin/python benchmarks/calibrate_simulated.py --sets 30 --model plain ...

Writes one row per data set and cut (``cut`` = ``full`` for the truth checks) and prints the
Markdown summary tables.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bayesfp.bayes import derived as dv  # noqa: E402
from bayesfp.bayes.calibrate import (  # noqa: E402
    CUTS,
    calibrate,
    make_model,
    markdown_table,  # noqa: E402
)
from bayesfp.bayes.structured import structure_options  # noqa: E402
from bayesfp.laws import derived as law_derived  # noqa: E402
from bayesfp.pipeline import keep_where, load_runs  # noqa: E402
from bayesfp.simulate_misspec import simulate_misspecified  # noqa: E402

# the point fit of the real runs, rounded (natural units)
TRUTH = dict(n=70.0, alpha=0.39, d=1.2e5, beta=0.73, eps=2.97, gamma=9200.0, delta=2.9,
             nu=1.25)
MISSPEC = dict(cell_sd=0.02, confound=0.03, confound_N=1.7e6, seed_sd=0.01, sigma=0.006,
               sd_slope=-0.9)
MODELS = {
    # the library's default likelihood (bayesfp.defaults.STRUCTURE), gamma pooled over operands
    "default": {"pool": {"gamma": "operands"}, **structure_options(None)},
    "no-discrepancy": {"pool": {"gamma": "operands"}, "cell": True, "seed_effect": True,
                       "sigma_d": True, "log2b_power": True, "format_effect": "flex"},
    "sun-form": {"pool": {"gamma": "operands"}, "cell": True, "seed_effect": True,
                 "sigma_d": True},
    "plain": {"pool_by": "operands"},
}
COEFS = {"alpha": "alpha", "beta": "beta", "eps": "eps", "log n": "log_n", "log d": "log_d",
         "delta": "delta", "nu": "nu", "log gamma": "log_gamma"}
DCRIT = {"D_crit E2M1": (2, 1), "D_crit E4M3": (4, 3)}
SPLIT_BITS = (6, 8)


def truth_values() -> dict:
    out = {k: (np.log(TRUTH[v[4:]]) if v.startswith("log_") else TRUTH[v])
           for k, v in COEFS.items()}
    for name, (e, m) in DCRIT.items():
        out[name] = float(law_derived.critical_data_size(TRUTH, 1e6, e, m, 7.0, "sun"))
    for bits in SPLIT_BITS:
        cands, logpen = law_derived.split_log_penalty(TRUTH, bits, "sun")
        out[f"best split {bits} bits"] = cands[int(np.argmin(logpen))]
    return out


def truth_checks(fit, truth: dict) -> dict:
    post = fit["posterior"]
    row = {}

    def inside(draws, true, tag):
        for lv in (0.5, 0.9):
            q = (1 - lv) / 2
            lo, hi = np.quantile(np.asarray(draws, dtype=float).ravel(), [q, 1 - q])
            row[f"in{int(lv * 100)}_{tag}"] = bool(lo <= true <= hi)

    for k, v in COEFS.items():
        inside(post[v].values, truth[k], k)
    dc = dv.d_crit(fit, [1e6], list(DCRIT.values()), log2B=7.0)
    for j, name in enumerate(DCRIT):
        inside(np.log(dc.isel(N=0, format=j).values), np.log(truth[name]), name)
    probs = dv.split_probabilities(fit, P=SPLIT_BITS)
    for bits in SPLIT_BITS:
        p = probs.sel(P=bits).to_series().dropna().sort_values(ascending=False)
        cum = p.cumsum()
        credible = list(p.index[: int(np.searchsorted(cum.values, 0.9)) + 1])
        e_true = truth[f"best split {bits} bits"][0]
        row[f"in90_best split {bits} bits"] = bool(e_true in credible)
        row[f"pbest_true_{bits}"] = float(p.get(e_true, 0.0))
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", type=int, default=30)
    ap.add_argument("--first", type=int, default=0, help="seed of the first data set")
    ap.add_argument("--model", choices=sorted(MODELS), default="default")
    ap.add_argument("--cuts", default=",".join(CUTS))
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--tune", type=int, default=500)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--confound", type=float, default=MISSPEC["confound"],
                    help="size of the batch-size-like step in log-loss at 5M tokens (0: none, "
                         "the control without the size confound)")
    ap.add_argument("--out", type=Path, required=True, help="CSV of the per-set rows")
    a = ap.parse_args(argv)
    misspec = MISSPEC | {"confound": a.confound}

    table, _ = load_runs(None)
    design = keep_where(table, ["group=core"])
    # the 480 runs the fits use: tensor-wise runs have no block size the law can place
    design = design[design["B"].astype(str) != "tensor"].reset_index(drop=True)
    truth = truth_values()
    model_kw = MODELS[a.model]
    cuts = tuple(c for c in a.cuts.split(",") if c)
    cache, full_model, rows = {}, None, []
    t_all = time.perf_counter()
    for s in range(a.first, a.first + a.sets):
        sampler = {"draws": a.draws, "tune": a.tune, "chains": a.chains, "seed": s}
        sim = simulate_misspecified(design, TRUTH, seed=s, **misspec)
        t0 = time.perf_counter()
        if full_model is None:
            full_model = make_model(sim, "sun", model_kw, sampler)
            fit = full_model.fit()
        else:
            fit = full_model.fit(y=np.log(sim["loss"].to_numpy(float)[full_model.in_fit]),
                                 seed=s)
        row = {"set": s, "cut": "full", "seconds": time.perf_counter() - t0,
               "divergences": int(fit["sample_stats"]["diverging"].sum())}
        row.update(truth_checks(fit, truth))
        rows.append(row)
        cal = calibrate(sim, "sun", model_kw, cuts=cuts, sampler=sampler, seed=s,
                        models=cache)
        for r in cal.to_dict("records"):
            rows.append({"set": s} | r)
        pd.DataFrame(rows).to_csv(a.out, index=False)
        done = s - a.first + 1
        print(f"set {s}: {done}/{a.sets} done, {time.perf_counter() - t_all:.0f} s", flush=True)
    df = pd.DataFrame(rows)
    print(summary(df, cuts))
    return 0


def summary(df: pd.DataFrame, cuts) -> str:
    """The Markdown tables of docs/bayes.md from the per-set rows."""
    out = []
    cov = []
    for cut in cuts:
        d = df[df["cut"] == cut]
        if d.empty:
            continue
        cov.append({"cut": cut, "held-out runs (cells)": f"{int(d['n_held'].iloc[0])} "
                    f"({int(d['cells_held'].iloc[0])})", "factor": float(d["factor"].iloc[0]),
                    "mean 50%": d["cov50"].mean(), "median 50%": d["cov50"].median(),
                    "mean 90%": d["cov90"].mean(), "median 90%": d["cov90"].median(),
                    "sets with 90% in [0.85, 0.95]": d["cov90"].between(0.85, 0.95).mean()})
    out.append(markdown_table(pd.DataFrame(cov)))
    full = df[df["cut"] == "full"]
    names = [c[5:] for c in full.columns if c.startswith("in90_")]
    tr = [{"quantity": n, "true value in 90% interval": full[f"in90_{n}"].mean(),
           "in 50% interval": (full[f"in50_{n}"].mean() if f"in50_{n}" in full else np.nan)}
          for n in names]
    intervals = [n for n in names if not n.startswith("best split")]
    tr.append({"quantity": "all of the above (intervals)",
               "true value in 90% interval": full[[f"in90_{n}" for n in intervals]].stack().mean(),
               "in 50% interval": full[[f"in50_{n}" for n in intervals]].stack().mean()})
    out.append(markdown_table(pd.DataFrame(tr)))
    out.append(f"{len(full)} data sets; divergences in full fits: {int(full['divergences'].sum())}")
    return "\n\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
